"""Photo answers: check and re-encode an upload, store it, and let staff accept or reject it.

A photo is decoded (never trusted by its name or the client's content type), only JPEG, PNG or WebP,
with a pixel limit against decompression bombs; it is stored re-encoded as JPEG, at most
MAX_SIDE pixels on its longest side, turned upright, with EXIF (GPS!) and every other metadata dropped.
"""
import io
import warnings
from datetime import datetime

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select

from . import scoring
from .errors import QuizError, ValidationError
from .extensions import db
from .jobs import after_commit
from .live import publish_after_commit
from .models import Challenge, PhotoAnswer, PhotoStatus, Submission
from .storage import StorageError, get_storage

FORMATS = ("JPEG", "PNG", "WEBP")
MAX_SIDE = 2048
# 50 megapixels: any phone camera's full resolution, far below what a small file can inflate to.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85
DECISIONS = {"accept": PhotoStatus.ACCEPTED, "reject": PhotoStatus.REJECTED}


class PhotoError(QuizError):
    """An upload that is not a photo Knockout can take; the message says what to do instead."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message, code="bad_photo", status=status)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def prepare_photo(data: bytes, max_bytes: int) -> bytes:
    """The upload as a clean JPEG: decoded, upright, bounded in size, without metadata; PhotoError otherwise."""
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
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale, much faster
                image.load()
                return _reencode(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"that image has too many pixels (more than {MAX_PIXELS // 1_000_000} million). "
                         "Send a normal photo from your phone's camera.")
    except UnidentifiedImageError:
        raise PhotoError("that file isn't a photo we can read. Send a JPEG, PNG or WebP image "
                         "(the camera's own photos are fine).")
    except (OSError, SyntaxError, ValueError, EOFError):
        raise PhotoError("that photo arrived damaged or incomplete. Take it again, or pick it again and resend.")


def _reencode(image: Image.Image) -> bytes:
    """Upright, RGB on white, longest side at most MAX_SIDE, saved as a JPEG that carries no metadata."""
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
    """Run CPU-heavy work on gevent's thread pool when gevent runs the server: Pillow releases the GIL while it
    decodes and encodes, so the worker's other requests go on meanwhile (a 12 MP photo takes ~0.2 s)."""
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover (gevent is a requirement)
        return func(*args)
    if not monkey.is_module_patched("threading"):
        return func(*args)
    return get_hub().threadpool.apply(func, args)


def photo_key(number: int, participant_id: int, question_id: int) -> str:
    return f"photos/challenge{number}/{participant_id}-q{question_id}.jpg"


def store_photos(submission_id: int, participant_id: int, challenge_id: int, number: int,
                 photos: dict[int, bytes]) -> None:
    """Store each photo (question id → JPEG) and record it as pending review; storage down → 503, the caller
    rolls back."""
    store = get_storage()
    for question_id, body in photos.items():
        key = photo_key(number, participant_id, question_id)
        try:
            store.put(key, body, content_type="image/jpeg")
        except (StorageError, OSError) as error:
            current_app.logger.warning("photo %s not stored: %s", key, error)
            raise QuizError("We couldn't save your photo just now, so nothing was recorded. "
                            "Please send your answers again in a moment.", code="storage_unavailable", status=503)
        db.session.add(PhotoAnswer(submission_id=submission_id, question_id=question_id, key=key,
                                   participant_id=participant_id, challenge_id=challenge_id))
    db.session.flush()


def review_photo(photo_id: int, decision: str, actor: str, now: datetime) -> PhotoAnswer:
    """Accept or reject a photo while its round is open, and score the submission again; the caller commits."""
    from .rounds import get_challenge
    status = DECISIONS.get(decision)
    if status is None:
        raise ValidationError({"decision": "Choose Accept or Reject."}, "Choose Accept or Reject.")
    photo = db.session.get(PhotoAnswer, photo_id)
    if photo is None:
        raise QuizError("There is no such photo (it may have been removed). Reload the page.", code="no_such_photo",
                        status=404)
    challenge = get_challenge(db.session.get(Challenge, photo.challenge_id).number, lock=True)
    if challenge.is_closed:
        raise QuizError(f"Round {challenge.number} is closed: its ranking is final, so its photos can no longer "
                        "be reviewed.", code="results_final")
    photo.status, photo.reviewed_by, photo.reviewed_at = status, actor, now
    rescore(db.session.get(Submission, photo.submission_id), challenge)
    publish_after_commit()
    return photo


def rescore(submission: Submission, challenge: Challenge) -> None:
    """Score a submission again from its answers and the staff's reviews (the same pure scoring)."""
    reviews = dict(db.session.execute(select(PhotoAnswer.question_id, PhotoAnswer.status)
                                      .where(PhotoAnswer.submission_id == submission.id)).all())
    marks = [(q.type.mark(q, submission.answers.get(str(q.id)), reviews.get(q.id)), q.points)
             for q in challenge.questions]
    result = scoring.score_marks(marks, challenge.scoring, submission.response_time, challenge.time_limit_seconds)
    submission.score, submission.correct = result.points, result.correct
    db.session.flush()


def photos_of_round(challenge: Challenge,
                    status: str | None = PhotoStatus.PENDING) -> list[PhotoAnswer]:
    """The round's photos in the order they came, with one review status (None: all)."""
    query = select(PhotoAnswer).where(PhotoAnswer.challenge_id == challenge.id).order_by(PhotoAnswer.id)
    if status in tuple(PhotoStatus):
        query = query.where(PhotoAnswer.status == status)
    return list(db.session.scalars(query))


def counts_by_status(challenge_id: int | None = None) -> dict[tuple[int, str], int]:
    """How many photos per (round id, status)."""
    query = select(PhotoAnswer.challenge_id, PhotoAnswer.status, func.count()).group_by(
        PhotoAnswer.challenge_id, PhotoAnswer.status)
    if challenge_id is not None:
        query = query.where(PhotoAnswer.challenge_id == challenge_id)
    return {(cid, status): n for cid, status, n in db.session.execute(query)}


def unreviewed() -> dict[int, int]:
    """Photos still pending, per round id (the console warns before End round)."""
    return {cid: n for (cid, status), n in counts_by_status().items()
            if status == PhotoStatus.PENDING}


def read_photo(photo: PhotoAnswer) -> bytes | None:
    """The stored JPEG (for staff only), or None if storage no longer has it."""
    return get_storage().get(photo.key)


def shred_photos() -> int:
    """Delete every stored photo once the transaction commits (selfies are personal data); reviews and scores stay.

    The rows keep their keys, so shredding again deletes again: safe to repeat after a storage failure.
    """
    keys = list(db.session.scalars(select(PhotoAnswer.key)))
    if keys:
        after_commit(lambda: get_storage().delete_many(keys))
    return len(keys)
