"""Photo answers: store a checked upload (images.prepare_photo), and let staff accept or reject
it."""
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from . import scoring
from .errors import QuizError, ValidationError
from .extensions import db
from .effects import CHANGED, DeleteStored, owe
from .models import Challenge, PhotoAnswer, PhotoStatus, Submission
from .rounds import get_challenge
from .storage import StorageError, get_storage

DECISIONS = {"accept": PhotoStatus.ACCEPTED, "reject": PhotoStatus.REJECTED}


def photo_key(number: int, participant_id: int, question_id: int) -> str:
    return f"photos/challenge{number}/{participant_id}-q{question_id}.jpg"


def store_photos(submission_id: int, participant_id: int, challenge_id: int, number: int,
                 photos: dict[int, bytes]) -> None:
    """Store each photo (question id → JPEG) and record it as pending review; storage down → 503,
    the caller rolls back."""
    store = get_storage()
    for question_id, body in photos.items():
        key = photo_key(number, participant_id, question_id)
        try:
            store.put(key, body, content_type="image/jpeg")
        except (StorageError, OSError) as error:
            current_app.logger.warning("photo %s not stored: %s", key, error)
            raise QuizError(_l("We couldn't save your photo just now, so nothing was "
                                    "recorded. Please send your answers again in a moment."),
                            code="storage_unavailable", status=503)
        db.session.add(PhotoAnswer(submission_id=submission_id, question_id=question_id, key=key,
                                   participant_id=participant_id, challenge_id=challenge_id))
    db.session.flush()


def review_photo(photo_id: int, decision: str, actor: str, now: datetime) -> PhotoAnswer:
    """Accept or reject a photo while its round is open, and score the submission again; the
    caller commits."""
    status = DECISIONS.get(decision)
    if status is None:
        raise ValidationError({"decision": "Choose Accept or Reject."}, "Choose Accept or Reject.")
    photo = db.session.get(PhotoAnswer, photo_id)
    if photo is None:
        raise QuizError("There is no such photo (it may have been removed). Reload the page.",
                        code="no_such_photo", status=404)
    challenge = get_challenge(db.session.get(Challenge, photo.challenge_id).number, lock=True)
    if challenge.is_closed:
        raise QuizError(f"Round {challenge.number} is closed: its ranking is final, so its photos "
                        "can no longer be reviewed.", code="results_final")
    photo.status, photo.reviewed_by, photo.reviewed_at = status, actor, now
    rescore(db.session.get(Submission, photo.submission_id), challenge)
    owe(CHANGED)
    return photo


def rescore(submission: Submission, challenge: Challenge) -> None:
    """Score a submission again from its answers and the staff's reviews (the same pure scoring)."""
    reviews = dict(db.session.execute(select(PhotoAnswer.question_id, PhotoAnswer.status)
                                      .where(PhotoAnswer.submission_id == submission.id)).all())
    marks = [(q.type.mark(q, submission.answers.get(str(q.id)), reviews.get(q.id)), q.points)
             for q in challenge.questions]
    result = scoring.score_marks(marks, challenge.scoring, submission.response_time,
                                 challenge.time_limit_seconds)
    submission.score, submission.correct = result.points, result.correct
    db.session.flush()


def photos_of_round(challenge: Challenge,
                    status: str | None = PhotoStatus.PENDING) -> list[PhotoAnswer]:
    """The round's photos in the order they came, with one review status (None: all)."""
    query = (select(PhotoAnswer).where(PhotoAnswer.challenge_id == challenge.id)
             .order_by(PhotoAnswer.id))
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
    """Delete every stored photo once the transaction commits (selfies are personal data); reviews
    and scores stay.

    The rows keep their keys, so shredding again deletes again: safe to repeat after a storage
    failure.
    """
    keys = list(db.session.scalars(select(PhotoAnswer.key)))
    if keys:
        owe(DeleteStored(tuple(keys)))
    return len(keys)
