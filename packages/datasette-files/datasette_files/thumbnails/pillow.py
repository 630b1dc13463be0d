"""The built-in generator: common raster formats, with Pillow in a child process."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from . import worker
from .generators import Thumbnail, ThumbnailFailed, ThumbnailSkipped
from .process import run_limited
from .worker import EXIT_FAILED, EXIT_SKIPPED

CONTENT_TYPES = {
    "image/jpeg",
    "image/pjpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/x-ms-bmp",
    "image/tiff",
}
EXTENSIONS = {"jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "tif", "tiff"}


class PillowGenerator:
    """JPEG, PNG, GIF, WebP, BMP and TIFF (first frame), honouring EXIF rotation."""

    name = "pillow"
    version = "1"
    # The child's command; the policy is appended as JSON. The worker runs as
    # a script, not with -m, so the child does not import Datasette.
    command = [sys.executable, worker.__file__]

    def accepts(self, file) -> bool:
        content_type = (file.content_type or "").split(";")[0].strip().lower()
        if content_type in CONTENT_TYPES:
            return True
        extension = file.filename.rpartition(".")[2].lower()
        return content_type in ("", "application/octet-stream") and (
            extension in EXTENSIONS
        )

    async def generate(self, data: bytes, file, policy) -> Thumbnail:
        finished = await run_limited(
            [*self.command, json.dumps(asdict(policy))],
            data,
            timeout=policy.timeout,
            memory_limit=policy.memory_limit,
            # A thumbnail is at most size x size pixels; even uncompressed
            # RGBA it is far below this.
            max_output=policy.size * policy.size * 4 + 64 * 1024,
        )
        if finished.returncode == 0 and finished.stdout:
            return Thumbnail(finished.stdout, policy.content_type)
        if finished.returncode == EXIT_SKIPPED:
            raise ThumbnailSkipped(finished.message)
        if finished.returncode == EXIT_FAILED:
            raise ThumbnailFailed(finished.message)
        # Killed by a signal (e.g. SIGXCPU, the OOM killer) or Python itself
        # failed to start: worth another try later.
        raise ThumbnailFailed(
            f"thumbnail process ended with status {finished.returncode}: "
            f"{finished.message}",
            transient=True,
        )
