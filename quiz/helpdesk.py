"""The help desk: a participant asks from their page, staff answer in the console, the answer shows
on the page."""
from datetime import datetime

from flask_babel import gettext
from sqlalchemy import func, select

from .errors import QuizError, ValidationError
from .extensions import db
from .effects import CHANGED, owe
from .models import HELP_KINDS, HelpRequest, HelpStatus, Participant
from .registration import _unprintable

TEXT_MAX = 500
REPLY_MAX = 500
OPEN_MAX = 3  # open requests per participant: enough to add a detail, not enough to flood the desk
CONSOLE_ROWS = 30


def _clean(value, maximum: int, field: str, what: str) -> str:
    """Trimmed text (line breaks kept) or ValidationError saying what to fix."""
    text = "\n".join(" ".join(line.split())
                     for line in str(value or "").strip().splitlines()).strip()
    if any(_unprintable(ch) for ch in text.replace("\n", "")):
        message = gettext("Please use letters, digits and punctuation only.")
    elif len(text) > maximum and field == "text":
        message = gettext("Please keep your message under %(maximum)s characters (it has "
                          "%(length)s).", maximum=maximum, length=len(text))
    elif len(text) > maximum:  # the desk's reply: the console speaks English
        message = f"Please keep {what} under {maximum} characters (it has {len(text)})."
    else:
        return text
    raise ValidationError({field: message}, message)


def ask_for_help(participant: Participant, kind: str, text: str, now: datetime) -> HelpRequest:
    """File a help request for the desk; the caller commits."""
    if kind not in HELP_KINDS:
        message = gettext("Pick what the problem is from the list.")
        raise ValidationError({"kind": message}, message)
    text = _clean(text, TEXT_MAX, "text", "your message")
    if kind == "other" and not text:
        message = gettext("Tell us what's wrong, so the desk can help.")
        raise ValidationError({"text": message}, message)
    waiting = db.session.scalar(select(func.count()).where(
        HelpRequest.participant_id == participant.id, HelpRequest.is_open))
    if waiting >= OPEN_MAX:
        raise QuizError(gettext("You already have %(waiting)s questions waiting at the help desk. "
                                "They'll answer here soon; or come to the desk in person.",
                                waiting=waiting),
                        code="too_many_open", status=429)
    request = HelpRequest(participant_id=participant.id, kind=kind, text=text, created_at=now)
    db.session.add(request)
    owe(CHANGED)  # the console's help list is live
    return request


def resolve(request: HelpRequest, reply: str, actor: str, now: datetime) -> HelpRequest:
    """Answer a request and close it; the participant sees the reply on their page. The caller
    commits."""
    if not request.is_open:
        raise QuizError(f"This request was already answered by {request.resolved_by}.",
                        code="already_resolved")
    reply = _clean(reply, REPLY_MAX, "reply", "the reply")
    if not reply:
        message = "Write a reply: the participant sees it on their page."
        raise ValidationError({"reply": message}, message)
    request.status, request.reply = HelpStatus.RESOLVED, reply
    request.resolved_by, request.resolved_at = actor, now
    owe(CHANGED)
    return request


def requests_of(participant_id: int, limit: int = 5) -> list[HelpRequest]:
    """A participant's latest requests, newest first (what their page shows)."""
    return db.session.scalars(select(HelpRequest)
                              .where(HelpRequest.participant_id == participant_id)
                              .order_by(HelpRequest.id.desc()).limit(limit)).all()


def desk_queue() -> dict:
    """The console's view: open requests oldest first, then the latest answered."""
    waiting = db.session.scalars(select(HelpRequest).where(HelpRequest.is_open)
                                 .order_by(HelpRequest.id).limit(CONSOLE_ROWS)).all()
    answered = db.session.scalars(select(HelpRequest)
                                  .where(HelpRequest.status == HelpStatus.RESOLVED)
                                  .order_by(HelpRequest.resolved_at.desc()).limit(10)).all()
    open_count = db.session.scalar(select(func.count()).where(HelpRequest.is_open))
    return {"waiting": waiting, "answered": answered, "open_count": open_count}


def help_version(participant_id: int) -> tuple:
    """Changes whenever the participant's help requests do (for the report's ETag)."""
    return tuple(db.session.execute(select(func.count(), func.max(HelpRequest.id),
                                           func.max(HelpRequest.resolved_at))
                                    .where(HelpRequest.participant_id == participant_id)).one())
