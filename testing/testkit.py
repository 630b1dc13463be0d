"""Helpers shared by every test suite in the workspace (importable by name:
the root ``pyproject.toml`` puts this folder on pytest's ``pythonpath``).

- ``ALICE``: the actor most tests act as.
- ``stop_process(process)``: SIGTERM, then SIGKILL after a grace period.
- ``LoopbackBroker``: a credentials broker on 127.0.0.1 a test can switch
  between answering, failing and hanging.
- ``CountingRelay``: a TCP relay in front of a server that counts the bytes
  clients send through it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

ALICE = {"id": "alice"}
STOP_TIMEOUT = 5.0


def stop_process(process: subprocess.Popen | None, timeout: float = STOP_TIMEOUT):
    """SIGTERM, then SIGKILL after ``timeout``: this process only, by its PID."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


class LoopbackBroker:
    """A credentials broker on 127.0.0.1 whose behaviour a test switches.

    ``mode`` is "up", "error" (HTTP ``error_status``) or "hang" (answers
    after ``hang_seconds``, past the client's timeout). Credentials live
    ``lifetime`` seconds and alternate between the SeaweedFS identities in
    ``key_pairs``; ``S3Folder`` is ``folder``. ``delay`` holds every call
    open a moment, widening the window for overlapping calls.

    ``calls`` lists ``(monotonic time, mode)`` per call, ``issued`` the
    access keys handed out, ``most_active`` the most calls in flight at once
    (hung calls, which the client gave up on, are not counted).
    """

    def __init__(
        self,
        key_pairs,
        folder: str,
        lifetime: float = 3.0,
        *,
        secret: str = "loopback-broker-secret",  # noqa: S107 - a test value
        error_status: int = 500,
        delay: float = 0.0,
    ):
        self.key_pairs = key_pairs
        self.folder = folder
        self.lifetime = lifetime
        self.secret = secret
        self.error_status = error_status
        self.delay = delay
        self.mode = "up"
        self.hang_seconds = 12.0
        self.calls: list[tuple[float, str]] = []
        self.issued: list[str] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()
        broker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                mode = broker.mode
                counted = mode != "hang"
                with broker._lock:
                    broker.calls.append((time.monotonic(), mode))
                    broker.active += counted
                    broker.most_active = max(broker.most_active, broker.active)
                    number = len(broker.calls)
                try:
                    if broker.delay:
                        time.sleep(broker.delay)
                    if mode == "hang":
                        time.sleep(broker.hang_seconds)
                    if mode == "error":
                        self._answer(broker.error_status, {"error": "broker failure"})
                    elif form.get("secret") != [broker.secret]:
                        self._answer(403, {"error": "bad secret"})
                    else:
                        self._answer(200, broker.credentials(number))
                except OSError:
                    pass  # the client gave up on a hanging call
                finally:
                    with broker._lock:
                        broker.active -= counted

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/credentials"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def failing(self) -> bool:
        return self.mode == "error"

    @failing.setter
    def failing(self, value: bool) -> None:
        self.mode = "error" if value else "up"

    def credentials(self, number: int) -> dict:
        access_key, secret_key = self.key_pairs[number % len(self.key_pairs)]
        self.issued.append(access_key)
        expires = datetime.now(timezone.utc) + timedelta(seconds=self.lifetime)
        return {
            "AccessKeyId": access_key,
            "SecretAccessKey": secret_key,
            # SeaweedFS refuses session tokens it did not mint, and these are
            # long-lived keys: the broker sends an empty token.
            "SessionToken": "",
            "Expiration": expires.isoformat(timespec="milliseconds"),
            "S3Folder": self.folder,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LoopbackBroker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CountingRelay:
    """A TCP relay in front of a server on ``upstream_port`` that counts the
    bytes each way (``to_server``, ``from_server``): proof of what did (not)
    pass through Datasette. Used by the tests and by ``bench/``.

    (``/proc/<pid>/io`` cannot tell: ``rchar`` counts ``read()`` but not the
    ``recv()`` that asyncio reads sockets with.)

    Given the Datasette ``server`` it fronts, it has the server's ``url()``,
    ``origin``, ``log_in()``, so ``open_page`` can browse through it.
    """

    def __init__(self, upstream_port: int, server=None):
        self.upstream_port = upstream_port
        self.server = server
        self.to_server = 0
        self.from_server = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + self.server.base_url.rstrip("/") + path

    def log_in(self, context, actor: dict) -> None:
        cookie = {
            "name": "ds_actor",
            "value": self.server.cookie(actor),
            "url": self.origin,
        }
        context.add_cookies([cookie])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(
                target=self._pump, args=(client, upstream, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, False), daemon=True
            ).start()

    def _pump(self, source, target, to_server: bool) -> None:
        try:
            while data := source.recv(256 * 1024):
                with self._lock:
                    if to_server:
                        self.to_server += len(data)
                    else:
                        self.from_server += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


# The registry tables of datasette-files 0.1a3, as its public docs describe
# them: what adopt.py adopts (tests and bench/adopt.py build databases of it).
REGISTRY_0_1A3 = """
CREATE TABLE datasette_files_sources (
    id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, storage_type TEXT NOT NULL,
    config TEXT, created_at TEXT
);
CREATE TABLE datasette_files (
    id TEXT PRIMARY KEY, source_id INTEGER NOT NULL, path TEXT NOT NULL,
    filename TEXT NOT NULL, content_type TEXT, content_hash TEXT, size INTEGER,
    width INTEGER, height INTEGER, uploaded_by TEXT, created_at TEXT NOT NULL,
    metadata TEXT, search_text TEXT, UNIQUE (source_id, path)
);
CREATE TABLE datasette_files_thumbnails (
    file_id TEXT PRIMARY KEY, thumbnail BLOB NOT NULL, content_type TEXT NOT NULL,
    width INTEGER, height INTEGER, generator TEXT, created_at TEXT
);
"""
