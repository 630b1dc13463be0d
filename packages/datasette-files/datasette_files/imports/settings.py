"""Import settings under ``plugins: datasette-files:``."""

from __future__ import annotations

from dataclasses import dataclass

from datasette.utils import StartupError

from ..settings import int_setting, plugin_settings

DEFAULT_MAX_CONCURRENT = 2


@dataclass
class ImportSettings:
    enabled: bool = True
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    @classmethod
    @plugin_settings
    def from_config(cls, plugin_config: dict) -> ImportSettings:
        enabled = plugin_config.get("csv_import", True)
        if isinstance(enabled, str) and enabled.lower() in ("true", "false"):
            enabled = enabled.lower() == "true"
        if not isinstance(enabled, bool):
            raise StartupError("datasette-files: 'csv_import' must be true or false")
        return cls(
            enabled=enabled,
            max_concurrent=int_setting(
                plugin_config, "import_max_concurrent", DEFAULT_MAX_CONCURRENT, 1
            ),
        )
