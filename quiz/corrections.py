"""Correcting what a participant typed (name, email, phone, company), checked as registration
checks it; their stored forms made again, and on request their current link resent to them."""
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from . import delivery, notify, rounds, stored_forms
from .effects import CHANGED, owe
from .errors import QuizError, ValidationError
from .extensions import db
from .models import Message, MessageStatus, Participant
from .registration import validate_registration

FIELDS = ("name", "email", "phone", "company")


@dataclass(frozen=True)
class Corrected:
    """What a correction did: the fields that changed, and whether their link went out again."""

    changed: list[str]
    resent: bool


def correct_participant(participant: Participant, data: dict, resend: bool = False) -> Corrected:
    """Apply the corrected fields in `data` (any of FIELDS). With `resend`, their link of the open
    round goes out again, to the (new) number."""
    given = {field: value for field, value in data.items() if value is not None}
    unknown = sorted(set(given) - set(FIELDS))
    errors = {field: "Only name, email, phone and company can be corrected." for field in unknown}
    errors.update({field: "Send this as text." for field in FIELDS
                   if field in given and not isinstance(given[field], str)})
    if errors:
        raise ValidationError(errors)
    current = {field: getattr(participant, field) for field in FIELDS}
    # The join form's checks, field by field; consent is not what is corrected here (an older row
    # may lack it: it keeps what it has).
    clean = validate_registration({**current, **given, "consent": True})
    changed = [field for field in FIELDS if clean[field] != current[field]]
    check_not_taken(participant, {field: clean[field] for field in changed})
    for field in changed:
        setattr(participant, field, clean[field])
    try:
        db.session.flush()
    except IntegrityError:  # someone took the email or phone a moment ago
        raise QuizError("Another player has just taken that email or phone number.",
                        code="taken")
    if "phone" in changed:  # texts still waiting to go out go to the new number
        db.session.execute(update(Message)
                           .where(Message.participant_id == participant.id,
                                  Message.status == MessageStatus.QUEUED)
                           .values(to=participant.phone).execution_options(synchronize_session=False))
    if changed:
        stored_forms.regenerate_later(participant.id)  # their name is on their stored forms
        owe(CHANGED)
    return Corrected(changed, resend_current_link(participant) if resend else False)


def check_not_taken(participant: Participant, changes: dict) -> None:
    """A 409 naming the field when another player has this email or phone already."""
    wanted = [getattr(Participant, field) == changes[field] for field in ("email", "phone")
              if field in changes]
    if not wanted:
        return
    other = db.session.execute(select(Participant.name, Participant.email, Participant.phone)
                               .where(or_(*wanted), Participant.id != participant.id)).first()
    if other is not None:
        field = "email" if other.email == changes.get("email") else "phone"
        what = "email address" if field == "email" else "phone number"
        message = f"{other.name} is registered with this {what} already."
        raise QuizError(message, code="taken", fields={field: message})


def resend_current_link(participant: Participant) -> bool:
    """Their link of the open round again, to their number now; False when it has not been queued
    yet (it will go to that number anyway)."""
    current = rounds.current_challenge()
    if current is None or not current.is_open:
        raise QuizError("No round is open, so there is no link to resend. Save without "
                        "resending.", code="no_open_round")
    if participant.eliminated_in is not None:
        raise QuizError(f"{participant.name} is out of the game: there is no round link to resend "
                        "(reinstate them first).", code="not_in_game")
    message_id = db.session.scalar(select(Message.id).where(
        Message.key == f"round_link:{current.id}:{participant.id}"))
    if message_id is None:
        return False
    delivery.requeue_link(participant, current)
    notify.hand_over([message_id], f"round {current.number} link resent after a correction")
    return True
