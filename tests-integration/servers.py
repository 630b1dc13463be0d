"""Real servers for the integration tests: ``datasette serve`` processes and a
byte-counting TCP relay. The fixtures that start them are in conftest.py;
this folder is on pytest's ``pythonpath``, so tests import from here too."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from datasette.app import Datasette
from testkit import ALICE, stop_process

MB = 1024 * 1024
DATASETTE = str(Path(sys.executable).parent / "datasette")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# uvicorn closes a connection idle for 5 s; a client that keeps it longer
# races that close and, now and then, sends a request into a dead socket
# (httpx.ReadError). Clients here forget idle connections sooner.
KEEPALIVE_EXPIRY = 2.0


def client_limits(max_connections: int = 100) -> httpx.Limits:
    """Connection limits for a client of ``datasette serve`` (uvicorn)."""
    return httpx.Limits(
        max_connections=max_connections, keepalive_expiry=KEEPALIVE_EXPIRY
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        while block := fp.read(4 * MB):
            digest.update(block)
    return digest.hexdigest()


class DatasetteServer:
    """One ``datasette serve`` process and what a test needs to check on it."""

    def __init__(self, directory: Path, config: dict, settings: dict, databases=()):
        self.directory = directory
        self.databases = [str(path) for path in databases]
        self.config = config
        self.secret = secrets.token_hex(16)
        self.port = free_port()
        self.internal_db = directory / "internal.db"
        self.config_path = directory / "datasette.yaml"
        self.log_path = directory / "datasette.log"
        self.base_url = settings.get("base_url", "/")
        self.settings = settings
        # The ``datasette`` to run: ours, or another venv's.
        self.executable = DATASETTE
        # Extra ``datasette serve`` arguments and environment variables.
        self.extra_args: list[str] = []
        self.env: dict[str, str] = {}
        self.process: subprocess.Popen | None = None
        # Database files to serve (``datasette serve a.db ...``); set before start().
        self.database_files: list[Path] = []
        # Signs cookies with the server's secret; never started.
        self._signer = Datasette(secret=self.secret)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """``/-/files`` → the absolute URL under this server's base_url."""
        return self.origin + self.base_url.rstrip("/") + path

    def cookie(self, actor: dict) -> str:
        return self._signer.sign({"a": actor}, "actor")

    def log_in(self, context, actor: dict) -> None:
        """Sign a browser context in as ``actor`` (replacing any login)."""
        cookie = {"name": "ds_actor", "value": self.cookie(actor), "url": self.origin}
        context.add_cookies([cookie])

    def client(self, actor: dict | None = ALICE) -> httpx.Client:
        """An HTTP client logged in as ``actor`` with the same cookie."""
        cookies = {"ds_actor": self.cookie(actor)} if actor else {}
        return httpx.Client(
            base_url=self.url(""), cookies=cookies, timeout=60, limits=client_limits()
        )

    def upload(
        self,
        slug: str,
        filename: str,
        data: bytes,
        actor: dict = ALICE,
        content_type: str = "application/octet-stream",
    ) -> dict:
        """Put a file in a source through the HTTP API: the file object."""
        with self.client(actor) as client:
            prepared = client.post(
                f"/-/files/upload/{slug}/-/prepare",
                json={
                    "filename": filename,
                    "content_type": content_type,
                    "size": len(data),
                    "direct": False,
                },
            )
            assert prepared.status_code == 200, prepared.text
            prepared = prepared.json()
            upload = prepared["upload"]
            sent = client.post(
                self.origin + upload["url"], content=data, headers=upload["headers"]
            )
            assert sent.status_code == 200, sent.text
            completed = client.post(
                self.origin + prepared["complete_url"],
                json={"upload_token": prepared["upload_token"]},
            )
            assert completed.status_code == 201, completed.text
            return completed.json()["file"]

    def source_root(self, slug: str) -> Path:
        return Path(self.sources()[slug]["config"]["root"])

    def sources(self) -> dict:
        return self.config["plugins"]["datasette-files"]["sources"]

    def query(self, sql: str, params=()) -> list[dict]:
        """Read Datasette's internal database directly, as an operator would."""
        conn = sqlite3.connect(f"file:{self.internal_db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute(sql, params)]
        finally:
            conn.close()

    def pending_uploads(self) -> list[dict]:
        return self.query("select * from files_pending")

    def files(self, slug: str | None = None) -> list[dict]:
        if slug is None:
            return self.query("select * from files_files order by created_at")
        return self.query(
            "select * from files_files where source_slug = ? order by created_at",
            [slug],
        )

    def start(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))
        command = [
            self.executable,
            "serve",
            *self.databases,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--internal",
            str(self.internal_db),
            "--secret",
            self.secret,
            "-c",
            str(self.config_path),
            *[str(path) for path in self.database_files],
        ]
        for name, value in self.settings.items():
            command += ["--setting", name, str(value)]
        command += self.extra_args
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Datasette exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url("/-/versions.json"), timeout=2).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Datasette did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: this process only, by its PID."""
        process, self.process = self.process, None
        stop_process(process, STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown hooks run."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
