"""Pictures in the question bank: a question's `image:` (or a choice's, `{text, image}`) read from
the bank's folder, checked like a photo answer and drawn at two sizes, as WebP.

The path is relative to the bank file's folder and may not leave it (no `..`, no absolute path, no
symlink out). The file is decoded, never trusted by its name: JPEG, PNG, WebP or GIF (its first
frame), refused past `max_pixels` from its header before any pixel is decoded, with Pillow's own
decompression-bomb check as a backstop (as images.py does for photo answers). Every problem is a
BankError naming the line of the `image:`.

Each picture is drawn twice: for phones (at most PHONE_SIDE px wide, within PHONE_BUDGET bytes: a
phone's data budget) and for the projector (within 1920 × 1080). Pure: no database, no storage.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from .bank_yaml import BankError, line_of, mapping, scalar

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
SIZES = {"phone": (800, 1200), "stage": (1920, 1080)}  # the box each size is fitted into
PHONE_BUDGET = 300_000  # bytes: the phone size is made smaller in quality until it fits
QUALITIES = (80, 68, 55, 40, 25)
# Part of every hash: a change to how pictures are drawn gives them new keys (caches never serve
# an old drawing under a key that says "immutable").
VERSION = b"knockout question image 1\0"
CHOICE_KEYS = {"text", "image", "alt"}


@dataclass(frozen=True)
class ImageRef:
    """An `image:` as the bank wrote it, before its file is read."""

    path: str
    line: int
    where: str
    alt: str | None = None

    def refuse(self, problem: str) -> BankError:
        return BankError(self.line, f"{self.where} image '{self.path}' {problem}")


def image_ref(spec: dict, where: str) -> ImageRef | None:
    """The `image:` (and `alt:`) of a question's or choice's mapping (key → node), if any."""
    if "image" not in spec:
        if "alt" in spec:
            raise BankError(line_of(spec["alt"]), f"{where} has an 'alt' but no 'image'.")
        return None
    path = scalar(spec["image"], f"{where} image", str, lambda v: v.strip(),
                  "should be a path to a picture, relative to the bank's folder")
    alt = None
    if "alt" in spec:
        alt = scalar(spec["alt"], f"{where} alt", str, lambda v: 0 < len(v.strip()) <= 300,
                     "should be 1 to 300 characters").strip()
    return ImageRef(path.strip(), line_of(spec["image"]), where, alt)


def choice_node(node, where: str) -> tuple[object, ImageRef | None]:
    """A choice: plain text, or a mapping `{text: …, image: …, alt: …}`; its text node and
    picture."""
    if not isinstance(node, yaml.MappingNode):
        return node, None
    spec = mapping(node, where, CHOICE_KEYS)
    if "text" not in spec:
        raise BankError(line_of(node), f"{where} has no 'text' (a choice with a picture still "
                                       "needs its text: the answer names it).")
    return spec["text"], image_ref(spec, where)


def resolve(ref: ImageRef, folder: Path | None) -> Path:
    """The file an `image:` names, inside `folder`; BankError when it leaves it or is missing."""
    if folder is None:
        raise ref.refuse("cannot be read: pictures load with a bank file "
                         "(flask --app quiz questions load FILE), relative to its folder.")
    written = PurePosixPath(ref.path.replace("\\", "/"))
    if written.is_absolute() or Path(ref.path).is_absolute() or ".." in written.parts:
        raise ref.refuse("must be a path inside the bank's folder (no absolute path, no '..').")
    root = folder.resolve()
    path = (root / written).resolve()
    if not path.is_relative_to(root):
        raise ref.refuse("leaves the bank's folder (a link to outside it); copy the picture "
                         "into the folder instead.")
    if not path.is_file():
        raise ref.refuse(f"is not there (looked for {path}).")
    return path


def content_hash(data: bytes) -> str:
    """The picture's name in storage: the same file gives the same name, for every player."""
    return hashlib.sha256(VERSION + data).hexdigest()[:32]


def render(ref: ImageRef, data: bytes, max_pixels: int) -> tuple[dict, dict[str, bytes]]:
    """The picture checked and drawn: ({size: [width, height]}, {size: WebP bytes})."""
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        with image:
            if image.width * image.height > max_pixels:
                raise ref.refuse(f"has too many pixels ({image.width} × {image.height}; the limit "
                                 f"is {max_pixels / 1_000_000:g} million, PHOTO_MAX_PIXELS). "
                                 "Make it smaller.")
            image.draft("RGB", SIZES["stage"])  # JPEG: decode at a smaller scale when it can
            image.seek(0)  # a GIF's first frame
            image.load()
            return _drawn(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ref.refuse(f"has too many pixels (more than {max_pixels / 1_000_000:g} million, "
                         "PHOTO_MAX_PIXELS). Make it smaller.")
    except UnidentifiedImageError:
        raise ref.refuse("is not a picture we can read: use a JPEG, PNG, WebP or GIF.")
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ref.refuse("is damaged or incomplete: save it again as a JPEG, PNG, WebP or GIF.")


def _drawn(image) -> tuple[dict, dict[str, bytes]]:
    from PIL import ImageOps
    image = ImageOps.exif_transpose(image)
    image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    sizes, bodies = {}, {}
    for size, box in SIZES.items():
        copy = image.copy()
        copy.thumbnail(box)  # never grown
        copy.info = {}  # no metadata travels on
        for quality in QUALITIES:
            out = io.BytesIO()
            copy.save(out, "WEBP", quality=quality, method=4)
            if size != "phone" or out.tell() <= PHONE_BUDGET:
                break
        sizes[size], bodies[size] = list(copy.size), out.getvalue()
    return sizes, bodies
