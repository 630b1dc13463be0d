"""The baseline: the same server stack (uvicorn) without Datasette.

POST /upload writes the request body to a file in $BASELINE_DIR and fsyncs
it once at the end before answering, so it is as durable as a datasette-files
upload (which fsyncs its temp file before the rename);
GET /download streams $BASELINE_DIR/<name> back in 1 MiB chunks.
Run: uvicorn bench.baseline_app:app
"""

import os

CHUNK = 1024 * 1024
ROOT = os.environ.get("BASELINE_DIR", "/tmp/baseline")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        path = os.path.join(ROOT, "upload.bin")
        with open(path, "wb") as fp:
            while True:
                message = await receive()
                fp.write(message.get("body", b""))
                if not message.get("more_body"):
                    break
            fp.flush()
            os.fsync(fp.fileno())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    path = os.path.join(ROOT, scope["path"].rsplit("/", 1)[-1])
    size = os.path.getsize(path)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [[b"content-length", str(size).encode()]],
        }
    )
    with open(path, "rb") as fp:
        while chunk := fp.read(CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
