"""Importing datasette_files before Datasette must not break plugin loading.

Importing ``datasette.plugins`` loads every installed plugin; if that happened
while datasette_files was half-imported, its hooks would never register.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_import_datasette_files_first(tmp_path):
    script = textwrap.dedent(
        f"""
        import datasette_files  # first, before anything else from Datasette
        import asyncio
        from datasette.app import Datasette

        async def main():
            ds = Datasette(config={{
                "permissions": {{"files-browse": True}},
                "plugins": {{"datasette-files": {{"sources": {{
                    "docs": {{"storage": "filesystem",
                              "config": {{"root": {str(tmp_path)!r}}}}}
                }}}}}},
            }})
            await ds.invoke_startup()
            response = await ds.client.get("/-/files/sources.json")
            print(response.status_code, [s["slug"] for s in response.json()["sources"]])

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "200 ['docs']", result.stderr
