"""The wheels users install contain everything the plugins need at runtime."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[3]
PACKAGES = {
    "datasette-files": "datasette_files",
    "datasette-files-s3": "datasette_files_s3",
}


def build_wheel(package: str, out_dir: Path) -> Path:
    """``uv build --wheel`` (works offline once hatchling is cached)."""
    if shutil.which("uv"):
        command = ["uv", "build", "--wheel", "--package", package, "-o", str(out_dir)]
    else:
        command = [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out_dir),
            str(WORKSPACE / "packages" / package),
        ]
    result = subprocess.run(
        command, cwd=WORKSPACE, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out_dir.glob("*.whl")
    return wheel


def runtime_files(module_dir: Path) -> set[str]:
    """Every template and static file in the source tree, as wheel paths."""
    found = set()
    for folder in ("templates", "static"):
        for path in (module_dir / folder).rglob("*"):
            if path.is_file():
                found.add(path.relative_to(module_dir.parent).as_posix())
    return found


def check_wheel(package: str, tmp_path: Path) -> set[str]:
    module = PACKAGES[package]
    module_dir = WORKSPACE / "packages" / package / module
    wheel = build_wheel(package, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [
            n for n in names if n.endswith(".dist-info/entry_points.txt")
        ]
        entry_points_text = archive.read(entry_points).decode()
    missing = runtime_files(module_dir) - names
    assert not missing, f"{wheel.name} lacks {sorted(missing)}"
    python_files = {
        path.relative_to(module_dir.parent).as_posix()
        for path in module_dir.rglob("*.py")
    }
    assert python_files <= names
    # Datasette finds plugins through this entry point group.
    assert "[datasette]" in entry_points_text
    assert module in entry_points_text
    assert not any(name.split("/")[0] == "tests" for name in names)
    return names


def test_core_wheel_has_templates_and_static(tmp_path):
    names = check_wheel("datasette-files", tmp_path)
    templates = {n for n in names if n.startswith("datasette_files/templates/")}
    static = {n for n in names if n.startswith("datasette_files/static/")}
    for page in ("files_index", "files_source", "files_file", "files_upload"):
        assert f"datasette_files/templates/{page}.html" in templates
    assert any(n.endswith(".js") for n in static)
    assert any(n.endswith(".css") for n in static)
    assert "datasette_files/base.py" in names
    # PEP 561: type checkers read the package's own annotations.
    assert "datasette_files/py.typed" in names


def test_s3_wheel(tmp_path):
    module_dir = WORKSPACE / "packages" / "datasette-files-s3" / "datasette_files_s3"
    if not (module_dir / "storage.py").exists():
        pytest.skip("datasette-files-s3 has no storage.py yet")
    names = check_wheel("datasette-files-s3", tmp_path)
    assert "datasette_files_s3/storage.py" in names
    assert "datasette_files_s3/py.typed" in names
