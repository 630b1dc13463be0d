"""Shared pieces of the benchmark: servers as subprocesses, RSS sampling, curl."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

BIN = Path(sys.executable).parent
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class RssSampler:
    """Samples a process's RSS every 20 ms; reports peak growth over a baseline."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / MIB


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(args: list[str], url_probe: str, env: dict | None = None, log=None):
    """Start a server subprocess, yield it, then stop that PID only."""
    process = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    try:
        wait_for_http(url_probe)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_file(path: Path, size: int) -> Path:
    """``size`` bytes of incompressible data, written once and reused."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = os.urandom(MIB)
    with open(path, "wb") as fp:
        remaining = size
        while remaining:
            n = min(remaining, MIB)
            fp.write(block[:n])
            remaining -= n
    return path


def curl(args: list[str]) -> dict:
    """Run curl; return its -w timings as numbers."""
    fmt = '{"time": %{time_total}, "up": %{speed_upload}, "down": %{speed_download}, "code": %{http_code}}'
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", fmt, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def size_label(size: int) -> str:
    """ "1 GiB", "256 MiB": how a file size appears in result names."""
    gib = size / (1024 * MIB)
    return f"{gib:g} GiB" if gib >= 1 else f"{size // MIB} MiB"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    passed: bool | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def require(tool: str) -> str:
    path = shutil.which(tool) or str(BIN / tool)
    if not Path(path).exists():
        raise SystemExit(f"{tool} is required for the benchmark")
    return path
