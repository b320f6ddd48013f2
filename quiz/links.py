"""Personal links: /f/<code>, one per participant per round, checked against the database on every
click; what each link is dealt (quiz/deal.py)."""
import re
import secrets
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, exists, insert, select
from sqlalchemy.orm import aliased, joinedload

from .deal import choice_order, choice_value, drawn
from .errors import QuizError
from .extensions import db
from .models import Challenge, FormLink, HelpRequest, Participant, Question, Submission

# 16 random bytes: 128 bits, far past guessing; 22 URL-safe characters.
CODE_BYTES = 16
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,32}")


def new_code() -> str:
    """A fresh unguessable code."""
    return secrets.token_urlsafe(CODE_BYTES)


def link_url(code: str) -> str:
    """The URL a participant opens; it never expires on its own."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/f/{code}"


def report_url(code: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/r/{code}"


def _by_code(column, code: str, message: str, error: str, *options):
    """The row whose `column` equals `code`, or a clear 404 (malformed and unknown codes look the
    same)."""
    row = None
    if CODE_PATTERN.fullmatch(code or ""):
        row = db.session.scalar(select(column.class_).where(column == code).options(*options))
    if row is None:
        raise QuizError(message, code=error, status=404)
    return row


def find_link(code: str) -> FormLink:
    """The link for `code`, or a clear 404; every page of a link needs its round and player, so they
    come along."""
    return _by_code(FormLink.code, code,
                    _l("This link is not valid. Check that you opened the whole link from your "
                       "SMS."),
                    "unknown_link", joinedload(FormLink.challenge),
                    joinedload(FormLink.participant))


@dataclass(frozen=True, slots=True)
class RoundPage:
    """A link with what its page needs: whether its player has answered, and asked the help
    desk."""

    link: FormLink
    submitted: bool
    asked_for_help: bool
    last: bool  # no round comes after this one (a closed round's page says "the final")


def find_round_page(code: str) -> RoundPage:
    """`find_link` and the rest of what /f/<code> needs (whether they answered, asked the help desk,
    and the round is the last), in one query: the page every phone opens
    within seconds of "Start round". The round's questions are loaded only by a page that shows
    them (the live questions); the rest need their count at most (`round_facts`)."""
    if not CODE_PATTERN.fullmatch(code or ""):
        find_link(code)  # the same 404
    row = db.session.execute(_ROUND_PAGE, {"code": code}).unique().first()
    if row is None:
        find_link(code)
    return RoundPage(*row)


# Built once: thousands of phones ask it within seconds; building it cost more than running it.
_THIS, _LATER = aliased(Challenge), aliased(Challenge)
_ROUND_PAGE = (
    select(FormLink,
           exists().where(Submission.participant_id == FormLink.participant_id,
                          Submission.challenge_id == FormLink.challenge_id),
           exists().where(HelpRequest.participant_id == FormLink.participant_id),
           ~exists().where(_THIS.id == FormLink.challenge_id, _LATER.number > _THIS.number))
    .where(FormLink.code == bindparam("code"))
    .options(joinedload(FormLink.challenge), joinedload(FormLink.participant)))


@dataclass(frozen=True, slots=True)
class RoundFacts:
    """What a round page says of a round's questions without showing them."""

    asked: int  # how many each player answers
    uploads: bool  # a photo question among them


def round_facts(challenge: Challenge) -> RoundFacts:
    """`RoundFacts` of `challenge`, kept per process once it has opened: only a draft round's
    questions change (quiz/bank_edit.py), and a round never goes back to draft."""
    key = (challenge.id, challenge.opened_at)
    cache = current_app.extensions.setdefault("knockout.round_facts", {})
    facts = cache.get(key)
    if facts is None:
        facts = RoundFacts(challenge.asked, any(q.type.upload for q in challenge.questions))
        if not challenge.is_draft:
            cache[key] = facts
    return facts


def ensure_links(participant_ids: list[int] | None = None) -> int:
    """Create the missing links (participant × round); returns how many were made."""
    query = (select(Participant.id, Challenge.id)
             .join(Challenge, db.true())
             .outerjoin(FormLink, and_(FormLink.participant_id == Participant.id,
                                       FormLink.challenge_id == Challenge.id))
             .where(FormLink.id.is_(None)))
    if participant_ids is not None:
        query = query.where(Participant.id.in_(participant_ids))
    rows = [{"participant_id": p, "challenge_id": c, "code": new_code(),
             "seed": secrets.randbits(31)}
            for p, c in db.session.execute(query)]
    if rows:
        db.session.execute(insert(FormLink), rows)
    return len(rows)


def dealt_questions(link: FormLink) -> list[tuple[Question, list[tuple[str, str]]]]:
    """This participant's questions in their order (a pool's draw), each with its choices in their
    order as (opaque value, text): what the live page and the stored form show; never the key."""
    secret, challenge = current_app.config["SECRET_KEY"], link.challenge
    return [(q, [(choice_value(secret, link.code, q.id, i), q.choices[i])
                 for i in choice_order(link.seed, q.id, len(q.choices))])
            for q in drawn(challenge.questions, link.seed, challenge.draw)]


def find_participant(report_code: str) -> Participant:
    """The owner of a report link /r/<code>, or a clear 404."""
    return _by_code(Participant.report_code, report_code,
                    _l("This report link is not valid. Check that you opened the whole link."),
                    "unknown_report")
