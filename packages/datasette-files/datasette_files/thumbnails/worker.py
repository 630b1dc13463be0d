"""The child process that turns one image into a thumbnail with Pillow.

``python path/to/worker.py POLICY_JSON``: the image on
stdin, the thumbnail on stdout, and the exit status says what happened
(``EXIT_SKIPPED``, ``EXIT_FAILED``; anything else unexpected is treated as a
transient failure by the parent). ``run_limited`` starts it with a capped
address space and CPU time, so a hostile image can exhaust only this process.
"""

from __future__ import annotations

import io
import json
import math
import sys
import warnings

EXIT_SKIPPED = 3
EXIT_FAILED = 4
# Only these decoders are tried, whatever the file claims to be.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
SAVE_FORMATS = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}
EXIF_ORIENTATION = 0x0112
TRANSPOSING = {5, 6, 7, 8}  # orientations that swap width and height


class Outcome(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        "transparency" in image.info
    )


def cover(image, width: int, height: int):
    """``image`` scaled to fill ``width`` x ``height``, the overflow cropped."""
    from PIL import Image, ImageOps

    scale = max(width / image.width, height / image.height)
    # JPEG can decode at 1/2, 1/4 or 1/8 scale: far quicker for a photo.
    image.draft(
        image.mode,
        (math.ceil(image.width * scale), math.ceil(image.height * scale)),
    )
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def thumbnail(data: bytes, policy: dict) -> bytes:
    from PIL import Image, ImageFile, ImageOps

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = policy["max_pixels"]
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Outcome(EXIT_SKIPPED, "too many pixels") from None
    except Image.UnidentifiedImageError:
        raise Outcome(EXIT_SKIPPED, "not a supported image format") from None
    if image.width * image.height > policy["max_pixels"]:
        raise Outcome(EXIT_SKIPPED, "too many pixels")
    alpha = has_alpha(image) and policy["format"] != "jpeg"
    if image.mode not in ("RGB", "RGBA", "L", "LA", "CMYK", "YCbCr"):
        # Palette, 1-bit and 16-bit images: convert first so resizing can
        # interpolate (Pillow resizes palette images with nearest-neighbour).
        image = image.convert("RGBA" if has_alpha(image) else "RGB")
    width = policy.get("width") or policy["size"]
    height = policy.get("height") or policy["size"]
    if image.getexif().get(EXIF_ORIENTATION, 1) in TRANSPOSING:
        # Rotated a quarter turn once EXIF is applied: size the stored image
        # for the turned box. (Rotating after the resize is cheaper, and a
        # centred crop turns with the image, so the result is the same.)
        width, height = height, width
    if policy.get("fit") == "cover":
        image = cover(image, width, height)
    else:
        image.thumbnail((width, height), Image.Resampling.LANCZOS)
    image = ImageOps.exif_transpose(image)
    if alpha:
        image = image.convert("RGBA")
    elif has_alpha(image):
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    else:
        image = image.convert("RGB")
    output = io.BytesIO()
    options = {"quality": policy["quality"]} if policy["format"] != "png" else {}
    image.save(output, SAVE_FORMATS[policy["format"]], **options)
    return output.getvalue()


def main(argv: list[str]) -> int:
    policy = json.loads(argv[1])
    data = sys.stdin.buffer.read(policy["max_bytes"] + 1)
    try:
        if len(data) > policy["max_bytes"]:
            raise Outcome(EXIT_SKIPPED, "larger than the byte limit")
        try:
            result = thumbnail(data, policy)
        except MemoryError:
            raise Outcome(EXIT_SKIPPED, "needs more than the memory limit") from None
        except Outcome:
            raise
        except Exception as ex:  # noqa: BLE001 - any decoder error: a bad image
            raise Outcome(EXIT_FAILED, f"cannot decode: {ex}") from None
    except Outcome as outcome:
        sys.stderr.write(f"{outcome}\n")
        return outcome.status
    sys.stdout.buffer.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
