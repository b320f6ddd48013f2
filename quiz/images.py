"""An uploaded photo checked and re-encoded, before it is stored as a photo answer.

A photo is decoded (never trusted by its name or the client's content type), only JPEG, PNG or
WebP, with a pixel limit against decompression bombs; it is stored re-encoded as JPEG, at most
MAX_SIDE pixels on its longest side, turned upright, with EXIF (GPS!) and every other metadata
dropped.
"""
import io
import warnings

from gevent import get_hub
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import QuizError
from .extensions import under_gevent

FORMATS = ("JPEG", "PNG", "WEBP")
MAX_SIDE = 2048
# 50 megapixels: any phone camera's full resolution, far below what a small file can inflate to.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85


class PhotoError(QuizError):
    """An upload that is not a photo Knockout can take; the message says what to do instead."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message, code="bad_photo", status=status)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def prepare_photo(data: bytes, max_bytes: int) -> bytes:
    """The upload as a clean JPEG: decoded, upright, bounded in size, without metadata; PhotoError
    otherwise."""
    if len(data) > max_bytes:
        raise PhotoError(f"that photo is larger than {megabytes(max_bytes)}, the limit. "
                         "Take it again at a lower resolution, or send a smaller one.", status=413)
    if not data:
        raise PhotoError("that file is empty. Take the photo again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                # JPEG: decode at a reduced scale, much faster.
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))
                image.load()
                return _reencode(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError("that image has too many pixels "
                         f"(more than {MAX_PIXELS // 1_000_000} million). "
                         "Send a normal photo from your phone's camera.")
    except UnidentifiedImageError:
        raise PhotoError("that file isn't a photo we can read. Send a JPEG, PNG or WebP image "
                         "(the camera's own photos are fine).")
    except (OSError, SyntaxError, ValueError, EOFError):
        raise PhotoError("that photo arrived damaged or incomplete. "
                         "Take it again, or pick it again and resend.")


def _reencode(image: Image.Image) -> bytes:
    """Upright, RGB on white, longest side at most MAX_SIDE, saved as a JPEG that carries no
    metadata."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    clean = image.convert("RGB")
    clean.thumbnail((MAX_SIDE, MAX_SIDE))
    clean.info = {}  # nothing of the original's metadata (EXIF, XMP, ICC, comments) travels on
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def off_the_loop(func, *args):
    """Run CPU-heavy work on gevent's thread pool when gevent runs the server: Pillow releases the
    GIL while it decodes and encodes, so the worker's other requests go on meanwhile (a 12 MP photo
    takes ~0.2 s)."""
    if not under_gevent():
        return func(*args)
    return get_hub().threadpool.apply(func, args)
