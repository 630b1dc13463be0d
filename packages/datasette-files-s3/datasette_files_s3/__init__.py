"""S3 storage for datasette-files: registers the ``s3`` storage type."""

from datasette import hookimpl


@hookimpl
def register_files_storage_types(datasette):
    return [S3Storage]


# Imported after the hook on purpose: importing datasette_files makes
# Datasette load its plugins, this package included. If that happens while
# this module is still half-imported, pluggy must already see the hook above.
from .storage import S3Storage  # noqa: E402

__all__ = ["S3Storage", "register_files_storage_types"]
