"""An uploaded photo checked and re-encoded, before it is stored as a photo answer.

A photo is decoded (never trusted by its name or the client's content type), only JPEG, PNG or
WebP; it is stored re-encoded as JPEG, at most MAX_SIDE pixels on its longest side, turned upright,
with EXIF (GPS!) and every other metadata dropped.

Decoding is what costs memory (4 bytes a pixel, more while it is resized), so it is bounded: the
size in the file's header is checked before any pixel is decoded, a JPEG decoding at 1/2, 1/4 or 1/8
scale when that still gives MAX_SIDE (Image.draft); at most `max_pixels` are decoded; a process
decodes `decodes` photos at once, the others wait their turn; and what a decode freed is handed back
to the system at once.
"""
from __future__ import annotations  # Image.Image in signatures: Pillow is imported where used

import ctypes
import io
import threading
import warnings
from contextlib import contextmanager
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from gevent import get_hub
from gevent.lock import BoundedSemaphore

from .errors import QuizError
from .extensions import under_gevent

FORMATS = ("JPEG", "PNG", "WEBP")
MAX_SIDE = 2048
JPEG_QUALITY = 85
# glibc keeps what a pool thread freed in that thread's arena (a large photo: hundreds of MB, for
# good); malloc_trim(3) gives it back. Other C libraries return large blocks by themselves.
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


class PhotoError(QuizError):
    """An upload that is not a photo Knockout can take; the message says what to do instead."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message, code="bad_photo", status=status)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def prepare_photo(upload: bytes | BinaryIO, max_bytes: int, max_pixels: int,
                  decodes: int = 1) -> bytes:
    """The upload (bytes, or a file at its start) as a clean JPEG: decoded, upright, bounded in
    size, without metadata; PhotoError otherwise. At most `max_pixels` are decoded, and at most
    `decodes` photos at once in this process."""
    stream = io.BytesIO(upload) if isinstance(upload, bytes) else upload
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size > max_bytes:
        raise PhotoError(_l("that photo is larger than %(size)s, the limit. Take it again at a "
                            "lower resolution, or send a smaller one.", size=megabytes(max_bytes)),
                         status=413)
    if not size:
        raise PhotoError(_l("that file is empty. Take the photo again."))
    with _refusals(max_pixels), _opened(stream, max_pixels) as image, decode_slots(decodes):
        return off_the_loop(_reencode_and_give_back, image)


@contextmanager
def _opened(stream: BinaryIO, max_pixels: int):
    """The photo opened from its header, set to decode at the smallest scale that still gives
    MAX_SIDE, and refused past `max_pixels`: nothing decoded yet."""
    # Pillow only once a photo comes: a process starts without it (as without boto3 or Alembic).
    from PIL import Image
    # Pillow's own check (past Image.MAX_IMAGE_PIXELS, before any scaling), as an error: a backstop
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(stream, formats=FORMATS)
    with image:
        image.draft("RGB", fitted(image.size))  # JPEG only; the others decode whole
        if image.width * image.height > max_pixels:
            raise Image.DecompressionBombError("too many pixels")
        yield image


@contextmanager
def _refusals(max_pixels: int):
    """Pillow's errors as what the player can do about them."""
    from PIL import Image, UnidentifiedImageError
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(_l("that image has too many pixels (more than %(millions)s million). "
                            "Send a normal photo from your phone's camera.",
                            millions=f"{max_pixels / 1_000_000:g}"))
    except UnidentifiedImageError:
        raise PhotoError(_l("that file isn't a photo we can read. Send a JPEG, PNG or WebP image "
                            "(the camera's own photos are fine)."))
    except (OSError, SyntaxError, ValueError, EOFError):
        raise PhotoError(_l("that photo arrived damaged or incomplete. Take it again, or pick it "
                            "again and resend."))


def fitted(size: tuple[int, int]) -> tuple[int, int]:
    """`size` shrunk to fit MAX_SIDE × MAX_SIDE, its aspect kept (never grown)."""
    scale = min(1.0, MAX_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _reencode(image: Image.Image) -> bytes:
    """Decoded and shrunk to MAX_SIDE before anything else (no full-size copy but what resizing
    needs), upright, RGB on white, saved as a JPEG that carries no metadata."""
    from PIL import Image, ImageOps
    image.load()
    if image.mode not in ("RGB", "RGBA", "L", "LA"):  # P, 1, CMYK, I;16: they resize badly
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))  # in place; its EXIF (orientation) stays on it
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    clean = image.convert("RGB")
    clean.info = {}  # nothing of the original's metadata (EXIF, XMP, ICC, comments) travels on
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def _reencode_and_give_back(image: Image.Image) -> bytes:
    """_reencode, then the memory it used handed back to the system."""
    try:
        return _reencode(image)
    finally:
        image.close()  # the decoded pixels (a converted copy went with _reencode's frame)
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)


_SLOTS: dict[tuple[bool, int], object] = {}


def decode_slots(decodes: int):
    """This process's semaphore for `decodes` photos at once: gevent's when gevent runs the server
    (a request waiting its turn lets the others go on), made on first use."""
    key = (under_gevent(), decodes)
    if key not in _SLOTS:
        _SLOTS[key] = (BoundedSemaphore if key[0] else threading.BoundedSemaphore)(decodes)
    return _SLOTS[key]


def off_the_loop(func, *args):
    """Run CPU-heavy work on gevent's thread pool when gevent runs the server: Pillow releases the
    GIL while it decodes and encodes, so the worker's other requests go on meanwhile (a 12 MP photo
    takes ~0.2 s)."""
    if not under_gevent():
        return func(*args)
    return get_hub().threadpool.apply(func, args)
