"""Logos for the event's look: decoded with Pillow (never trusted by name), bounded in bytes and
pixels, stored re-encoded as PNG under `brand/<hash>.png` in object storage, and served with long
cache headers (a new logo is a new key)."""
import hashlib
import io

from .errors import QuizError
from .images import decode_slots, megabytes, off_the_loop
from .storage import get_storage

LOGO_SIDE = 1024
LOGO_MAX_PIXELS = 16_000_000


class LogoError(QuizError):
    """An upload that is not a logo Knockout can take; the message says what to send instead."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message, code="bad_logo", status=status)


def prepare_logo(upload: bytes, max_bytes: int) -> bytes:
    """The upload as a clean PNG (transparency kept, no metadata, at most LOGO_SIDE a side);
    LogoError otherwise."""
    if len(upload) > max_bytes:
        raise LogoError(f"that logo is larger than {megabytes(max_bytes)}, the limit. Send a "
                        "smaller file (a PNG or SVG export at 1024 px is plenty).", status=413)
    if not upload:
        raise LogoError("that logo file is empty. Pick the file again.")
    from PIL import Image, UnidentifiedImageError
    try:
        image = Image.open(io.BytesIO(upload), formats=("PNG", "JPEG", "WEBP"))
        if image.width * image.height > LOGO_MAX_PIXELS:
            raise LogoError(f"that logo has too many pixels (more than "
                            f"{LOGO_MAX_PIXELS / 1_000_000:g} million). Export it at 1024 px.")
        with decode_slots(1):
            return off_the_loop(_reencode, image)
    except UnidentifiedImageError:
        raise LogoError("that file isn't an image we can read. Send a PNG, JPEG or WebP logo.")
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise LogoError("that logo arrived damaged or incomplete. Export it again and resend.")


def _reencode(image) -> bytes:
    image.load()
    image = image.convert("RGBA")
    image.thumbnail((LOGO_SIDE, LOGO_SIDE))
    image.info = {}
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def store_logo(png: bytes) -> str:
    """Put a prepared logo in storage; its key (under brand/, named by its content)."""
    key = f"{hashlib.sha256(png).hexdigest()[:32]}.png"
    get_storage().put(f"brand/{key}", png, content_type="image/png")
    return key


def read_logo(key: str) -> bytes | None:
    return get_storage().get(f"brand/{key}")
