"""0.1a3-style thumbnail generators, run under the current protocol.

datasette-files 0.1a3 documented generators with ``async can_generate(
content_type, filename)`` and ``async generate(file_bytes, content_type,
filename, max_width, max_height) -> ThumbnailResult | None`` (base classes
in ``datasette_files.base``). ``discover_generators`` wraps each one in a
``LegacyGenerator``, so it gets the same byte limit (the service skips larger
files before any generator runs), a timeout, the pixel limit on its input
and its output, and the same cache as every other generator.

Unlike the built-in generator, these run in the Datasette process: the
memory limit does not apply to them, and one that blocks the event loop
blocks Datasette.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import warnings

from datasette.utils import await_me_maybe

from ..base import ThumbnailGenerationError, ThumbnailGenerator
from .generators import Thumbnail, ThumbnailFailed, ThumbnailSkipped

# Image formats whose dimensions are read from the header before a legacy
# generator is called (the decoders the built-in generator allows).
HEADER_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
LEGACY_PARAMETERS = {"file_bytes", "content_type", "filename"}


def is_legacy(generator) -> bool:
    """Whether ``generator`` has the 0.1a3 shape rather than the current one."""
    if isinstance(generator, ThumbnailGenerator):
        return True
    if not callable(getattr(generator, "can_generate", None)):
        return False
    try:
        parameters = inspect.signature(generator.generate).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return LEGACY_PARAMETERS <= set(parameters)


def header_pixels(data: bytes) -> int | None:
    """Width x height from an image's header, without decoding it.

    None when ``data`` is not an image of ``HEADER_FORMATS``. Runs in a
    worker thread: Pillow's ``Image.open`` only parses the header.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=HEADER_FORMATS) as image:
                return image.width * image.height
    except Image.DecompressionBombError:
        # Pillow's own process-wide bomb check: more than twice its limit.
        return 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
    except Exception:  # noqa: BLE001 - not an image we can measure
        return None


class LegacyGenerator:
    """Adapts a 0.1a3-style generator to ``accepts`` / ``generate``."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.name = str(getattr(wrapped, "name", None) or type(wrapped).__name__)
        self.version = str(getattr(wrapped, "version", None) or "1")

    def __repr__(self) -> str:
        return f"<LegacyGenerator {self.name!r} for {self.wrapped!r}>"

    async def accepts(self, file) -> bool:
        return bool(
            await await_me_maybe(
                self.wrapped.can_generate(file.content_type, file.filename)
            )
        )

    async def generate(self, data: bytes, file, policy) -> Thumbnail:
        pixels = await asyncio.to_thread(header_pixels, data)
        if pixels is not None and pixels > policy.max_pixels:
            raise ThumbnailSkipped("too many pixels")
        try:
            result = await asyncio.wait_for(
                await_me_maybe(
                    self.wrapped.generate(
                        data,
                        file.content_type,
                        file.filename,
                        max_width=policy.box[0],
                        max_height=policy.box[1],
                    )
                ),
                policy.timeout,
            )
        except asyncio.TimeoutError:
            raise ThumbnailFailed(
                f"timed out after {policy.timeout:g}s", transient=True
            ) from None
        except ThumbnailGenerationError as ex:
            if ex.skipped:
                raise ThumbnailSkipped(ex.reason) from None
            raise ThumbnailFailed(ex.reason) from None
        if result is None:
            raise ThumbnailSkipped("the generator returned no thumbnail")
        return await self._checked(result, policy)

    async def _checked(self, result, policy) -> Thumbnail:
        data = getattr(result, "thumb_bytes", None)
        content_type = getattr(result, "content_type", None)
        if not isinstance(data, bytes) or not isinstance(content_type, str):
            raise ThumbnailFailed("generator returned no image")
        # The image's own header, else what the generator declared.
        pixels = await asyncio.to_thread(header_pixels, data)
        if pixels is None:
            width = getattr(result, "width", None)
            height = getattr(result, "height", None)
            if isinstance(width, int) and isinstance(height, int):
                pixels = width * height
        if pixels is not None and pixels > policy.max_pixels:
            raise ThumbnailFailed(f"generator returned {pixels} pixels, over the limit")
        return Thumbnail(data, content_type)
