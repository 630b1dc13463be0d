"""Run the benchmarks, print a table, write docs/benchmarks.md.

    uv run python -m bench.run                      # everything, 1 GiB files
    uv run python -m bench.run --size-mib 256 --only filesystem
    uv run python -m bench.run --only filesystem --tmpfs --rounds 5 --no-write
    uv run python -m bench.run --only filesystem --tmpfs-only --no-write
    uv run python -m bench.run --no-write           # print only
    uv run python -m bench.run --only csv --csv-mib 100 --no-write
    uv run python -m bench.run --only latency --no-write
    uv run python -m bench.run --only adopt --no-write
    uv run python -m bench.run --only variants --no-write
    uv run python -m bench.run --only sync --rows 100000 --no-write
    uv run python -m bench.run --only sync --sync-storage fs --no-write

Each figure is measured in the same run as its baseline and reported as a
ratio, so a busy machine slows both sides alike.

``--tmpfs`` measures the filesystem transfers a second time with both
servers' storage (and the file curl sends) on /dev/shm, removed afterwards:
without a disk to wait for, what is left is the software path.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path

from .harness import MIB, Result, make_file

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "filesystem": ("bench.filesystem", "bench_transfers"),
    "startup": ("bench.filesystem", "bench_startup"),
    "s3": ("bench.s3", "bench_s3"),
    "latency": ("bench.latency", "bench_latency"),
    "search": ("bench.search", "bench_search"),
    "csv": ("bench.csv_import", "bench_csv_import"),
    "adopt": ("bench.adopt", "bench_adopt"),
    "variants": ("bench.variants", "bench_variants"),
    "sync": ("bench.sync", "bench_sync"),
}


def format_table(results: list[Result]) -> str:
    lines = [
        "| measurement | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        baseline = f"{r.baseline:,.2f} {r.unit}" if r.baseline is not None else ""
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[r.passed]
        target = r.target + (f" ({r.notes})" if r.notes else "")
        lines.append(
            f"| {r.name} | {r.value:,.2f} {r.unit} | {baseline} | {ratio} | {target} | {met} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpus = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1024**3)
    return f"{platform.system()} {platform.machine()}, {cpus} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}"


def write_doc(results: list[Result], size: int, sections: list[str]) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Benchmarks

Produced by `uv run python -m bench.run` (see `bench/`). Every figure is
measured in the same run as its baseline; the ratio is what the targets are
about, since absolute numbers depend on the machine.

- Run: {stamp}
- Machine: {machine()}
- File size for transfers: {size // MIB} MiB
- Sections: {", ".join(sections)}

Baselines: for the filesystem source, a minimal ASGI app under the same
uvicorn that writes the request body to a file / streams a file back in 1 MiB
chunks (`bench/baseline_app.py`), fsyncing an upload once at the end as
datasette-files does before its rename; clients are `curl` in both cases. For S3,
aioboto3 uploading the same bytes straight to the same SeaweedFS. RSS growth
is the Datasette process's peak resident memory during the transfer minus its
resident memory just before, sampled every 20 ms.

{format_table(results)}
"""
    path.write_text(text)
    print(f"\nwrote {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--csv-mib", type=int, default=100)
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds of the transfers"
    )
    parser.add_argument(
        "--tmpfs",
        action="store_true",
        help="measure the filesystem transfers on /dev/shm too",
    )
    parser.add_argument(
        "--tmpfs-only",
        action="store_true",
        help="measure the filesystem transfers on /dev/shm only",
    )
    parser.add_argument("--work", default=None, help="scratch directory")
    parser.add_argument(
        "--sync-storage",
        choices=("fs", "s3", "both"),
        default="both",
        help="which storages the sync section measures",
    )
    args = parser.parse_args()
    sections = [s for s in args.only.split(",") if s]
    work = Path(args.work or tempfile.mkdtemp(prefix="datasette-files-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_sections(args, sections, work)
    finally:
        # A scratch directory of our own holds gigabytes; --work is kept.
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run_sections(args, sections: list[str], work: Path) -> None:
    size = args.size_mib * MIB
    results: list[Result] = []
    for name in sections:
        module_name, function_name = SECTIONS[name]
        function = getattr(import_module(module_name), function_name)
        print(f"running {name}…", flush=True)
        if name == "sync":
            section = function(work, args.rows, args.sync_storage)
        elif name in ("startup", "search", "adopt"):
            section = function(work, args.rows)
        elif name == "variants":
            section = function(work)
        elif name == "csv":
            section = function(work, args.csv_mib * MIB)
        elif name == "filesystem":
            section = filesystem_transfers(args, function, work, size)
        else:
            section = function(work, make_file(work / "big.bin", size))
        results += section
        print(format_table(section), flush=True)
    print("\n" + format_table(results))
    if not args.no_write:
        write_doc(results, size, sections)


def filesystem_transfers(args, function, work: Path, size: int) -> list[Result]:
    """On the scratch directory's disk, and/or on tmpfs beside it."""
    results: list[Result] = []
    if not args.tmpfs_only:
        big = make_file(work / "big.bin", size)
        results += function(work, big, args.rounds)
    if args.tmpfs or args.tmpfs_only:
        shm = Path(tempfile.mkdtemp(prefix="datasette-files-bench-", dir="/dev/shm"))
        try:
            big = make_file(shm / "big.bin", size)
            results += function(shm, big, args.rounds, tmpfs=True)
        finally:
            # Gigabytes of memory until removed.
            shutil.rmtree(shm, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
