"""Pictures in questions: read with the bank (quiz/bank_images.py), stored in object storage under
content-hashed keys, and shown on phones, in stored forms and on the projector.

A question's `images` column holds {"question": image or None, "choices": {choice text: image}},
an image being {"hash", "alt", "phone": [w, h], "stage": [w, h]}. Its drawings are stored as
`question-images/<hash>.<size>.webp` and served by /q/img/<hash>.<size>.webp with a year's cache
(the key changes whenever the picture does). The file as the bank gave it is kept too, unserved
(it may carry metadata), as `question-images/<hash>.original`: `questions export FILE` writes it
next to the exported bank, so that loading the export gives the same hash (quiz/bank_edit.py).

Fairness: a picture's URL is its content hash, the same for every player and saying nothing about
which choice is right (the choice values of quiz/deal.py are what differ per player).
"""
from pathlib import Path

from flask import current_app

from .bank_images import SIZES, ImageRef, content_hash, render, resolve
from .errors import QuizError
from .storage import StorageError, get_storage

PREFIX = "question-images"
WEBP = "image/webp"
HASH_LENGTH = 32


def image_key(digest: str, size: str) -> str:
    return f"{PREFIX}/{digest}.{size}.webp"


def original_key(digest: str) -> str:
    return f"{PREFIX}/{digest}.original"


def prepare(questions: list[dict], folder: Path | None) -> dict[str, bytes]:
    """Read, check and draw every picture the parsed `questions` name (their refs become images);
    the drawings to store, by key. A BankError names the line of a missing or broken picture:
    nothing is stored or changed before every picture of the bank passed."""
    if not any(question.get("images") for question in questions):
        return {}
    config = current_app.config
    drawn: dict[str, dict] = {}  # the same file named twice is drawn once
    bodies: dict[str, bytes] = {}
    for question in questions:
        images = question.get("images")
        if not images:
            continue
        if images["question"] is not None:
            images["question"] = _image(images["question"], folder, config, drawn, bodies)
        images["choices"] = {text: _image(ref, folder, config, drawn, bodies)
                             for text, ref in images["choices"].items()}
    return bodies


def _image(ref: ImageRef, folder: Path | None, config, drawn: dict, bodies: dict) -> dict:
    path = resolve(ref, folder)
    if path.stat().st_size > config["PHOTO_MAX_BYTES"]:
        raise ref.refuse(f"is larger than {config['PHOTO_MAX_BYTES'] / 1_000_000:g} MB "
                         "(PHOTO_MAX_BYTES). Make it smaller.")
    data = path.read_bytes()
    digest = content_hash(data)
    if digest not in drawn:
        sizes, drawings = render(ref, data, config["PHOTO_MAX_PIXELS"])
        drawn[digest] = sizes
        bodies.update({image_key(digest, size): body for size, body in drawings.items()})
        bodies[original_key(digest)] = data
    return {"hash": digest, "alt": ref.alt, **drawn[digest]}


def store(bodies: dict[str, bytes]) -> int:
    """Put each drawing not stored yet (a key names its content: one there is the same); how many
    were new. Storage down: a QuizError, and the bank is not loaded."""
    store_, new = get_storage(), 0
    try:
        for key, body in sorted(bodies.items()):
            if not store_.exists(key):
                new += store_.put_once(key, body, content_type=WEBP if key.endswith(".webp")
                                       else "application/octet-stream")
    except (StorageError, OSError) as error:
        current_app.logger.warning("question image not stored: %s", error)
        raise QuizError(f"The question pictures could not be stored just now ({error}). "
                        "Nothing was changed: load the bank again in a moment.",
                        code="storage_unavailable", status=503)
    return new


def read(digest: str, size: str) -> bytes | None:
    """A stored drawing, or None (not a picture of any bank, or not stored)."""
    if size not in SIZES or len(digest) != HASH_LENGTH or not digest.isalnum():
        return None
    return get_storage().get(image_key(digest, size))


def original(digest: str) -> bytes | None:
    """The file a bank named for a picture, as it was loaded; None when not kept (loaded before
    originals were kept)."""
    if len(digest) != HASH_LENGTH or not digest.isalnum():
        return None
    return get_storage().get(original_key(digest))


def picture(image: dict | None, size: str, alt: str = "", base_url: str | None = None):
    """What an <img> needs for a stored image at `size`: src, width, height, alt; None without."""
    if not image:
        return None
    width, height = image[size]
    path = f"/q/img/{image['hash']}.{size}.webp"  # the worker renders forms outside a request
    return {"src": f"{base_url.rstrip('/')}{path}" if base_url else path,
            "width": width, "height": height, "alt": image.get("alt") or alt}


def question_image(question, size: str = "phone", base_url: str | None = None):
    """The question's picture at `size` ("phone" or "stage"), for templates (the projector's reveal
    too): {src, width, height, alt} — alt from the bank, else the question's text — or None."""
    images = getattr(question, "images", None) or {}
    return picture(images.get("question"), size, question.text, base_url)


def choice_image(question, text: str, size: str = "phone", base_url: str | None = None):
    """A choice's picture (by its text) at `size`, or None. Its alt is the bank's, else empty: the
    choice's text beside it already says it."""
    images = getattr(question, "images", None) or {}
    return picture(images.get("choices", {}).get(text), size, "", base_url)
