"""Check-in at the venue: the badge's code, read at the kiosk, marks a player as here.

The badge's QR code holds only the check-in code (10 characters, no name, no link). It opens
nothing by itself: only staff logged in to the kiosk can use it, so it is not a credential
the way the /f/ and /r/ links are, and a photo of someone's badge gives nothing away.
"""
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import exists, func, select, update

from .errors import QuizError
from .extensions import db
from .effects import CHANGED, Job, Task, owe
from .models import CHECKIN_ALPHABET, CHECKIN_LENGTH, Challenge, Participant
from .rounds import current_challenge

# What people misread on a printed badge (Crockford's base32 decoding).
LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class CheckIn:
    """The kiosk's answer: who, and whether they were already here."""

    participant: Participant
    already: bool


def normalize_code(raw: str) -> str:
    """The code as stored, from what was scanned or typed ('7kq2m-9xd4t' → '7KQ2M9XD4T'); QuizError
    if it can't be one."""
    if "://" in str(raw or ""):
        raise QuizError("That QR code is a web link, not a check-in code: scan the QR code on the "
                        "badge or under 'Your check-in code' on the participant's page.",
                        code="invalid", status=422)
    code = "".join(str(raw or "").split()).replace("-", "").upper().translate(LOOKALIKES)
    if len(code) != CHECKIN_LENGTH or any(ch not in CHECKIN_ALPHABET for ch in code):
        raise QuizError(f"That isn't a check-in code: it has {CHECKIN_LENGTH} letters and digits, "
                        "as printed under the QR code on the badge. Check it and try again.",
                        code="invalid", status=422)
    return code


def display_code(code: str) -> str:
    """The code as printed on a badge, in two halves for reading aloud ('7KQ2M-9XD4T')."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def check_in(raw_code: str, now: datetime) -> CheckIn:
    """Mark the badge's owner as here (the first scan counts; later ones say since when); the caller
    commits."""
    code = normalize_code(raw_code)
    participant = db.session.scalar(select(Participant).where(Participant.checkin_code == code))
    if participant is None:
        raise QuizError("Unknown code: no participant has this badge. Check the code, or look the "
                        "person up under Participants.", code="unknown_code", status=404)
    # Conditional: two kiosks scanning the same badge at once record one time.
    marked = db.session.execute(update(Participant).where(Participant.id == participant.id,
                                                          Participant.checked_in_at.is_(None))
                                .values(checked_in_at=now)
                                .execution_options(synchronize_session=False)).rowcount
    db.session.refresh(participant)
    if marked:
        owe(CHANGED)
        _send_waiting_link(participant)
    return CheckIn(participant, already=not marked)


def _send_waiting_link(participant: Participant) -> None:
    """Checked in while round 1 is open (and check-in is required): their link goes out now."""
    if not current_app.config["CHECKIN_REQUIRED"] or participant.eliminated_in is not None:
        return
    first = first_round()
    if first is not None and first.is_open:
        owe(Job(Task.SEND_ROUND_LINKS, (first.id,), description="link after check-in"))


def first_round() -> Challenge | None:
    return db.session.scalar(select(Challenge).order_by(Challenge.number).limit(1))


def needs_checkin(number: int, checked_in_at: datetime | None) -> bool:
    """CHECKIN_REQUIRED is on, round `number` is the first, and the player (checked in at
    `checked_in_at`) isn't."""
    if not current_app.config["CHECKIN_REQUIRED"] or checked_in_at is not None:
        return False
    return not db.session.scalar(select(exists().where(Challenge.number < number)))


def checkin_counts() -> dict:
    """How many are here, of how many registered (for the kiosk)."""
    here, total = db.session.execute(select(func.count(Participant.checked_in_at),
                                            func.count())).one()
    return {"here": here, "total": total}


def unchecked_finalists(limit: int = 20) -> tuple[int, list[str]]:
    """With PRIZE_REQUIRES_CHECKIN, before and during the last round: how many still in haven't
    checked in, and the first few names (for the console's warning)."""
    if not current_app.config["PRIZE_REQUIRES_CHECKIN"]:
        return 0, []
    current = current_challenge()  # the open round, else the next one
    if current is None or current.is_closed or not current.is_last:
        return 0, []
    missing = (Participant.eliminated_in.is_(None), Participant.checked_in_at.is_(None))
    count = db.session.scalar(select(func.count()).where(*missing))
    names = db.session.scalars(select(Participant.name).where(*missing)
                               .order_by(Participant.name).limit(limit))
    return count, list(names)
