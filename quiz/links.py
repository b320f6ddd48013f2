"""Personal links: /f/<code>, one per participant per round, checked against the database on every
click; what each link is dealt (quiz/deal.py)."""
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import ARRAY, and_, any_, bindparam, exists, insert, select
from sqlalchemy.orm import aliased, joinedload

from .deal import choice_order, choice_value, drawn
from .errors import QuizError
from .extensions import db, state
from .models import (Challenge, FormLink, HelpRequest, Participant, Question, RoundStatus,
                     Submission)
from .submit_read import ALONE, PreparedRead, reader

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
class RoundRow:
    """What a round page reads of its round, as plain values (`page_row`)."""

    id: int
    number: int
    status: RoundStatus
    title: str
    time_limit_seconds: int | None
    extra_seconds: int
    opened_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None

    @property
    def is_draft(self) -> bool:
        return self.status == RoundStatus.DRAFT

    @property
    def is_open(self) -> bool:
        return self.status == RoundStatus.OPEN

    @property
    def is_closed(self) -> bool:
        return self.status == RoundStatus.CLOSED


@dataclass(frozen=True, slots=True)
class PlayerRow:
    """What a round page reads of its player, as plain values (`page_row`)."""

    name: str
    language: str | None
    report_code: str
    eliminated_in: int | None
    elimination_reason: str | None
    checked_in_at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A link as a round page before Flask reads it: plain values in the shape of a FormLink with
    its round and player, for the functions a page's state and copy go through."""

    code: str
    participant_id: int
    challenge_id: int
    started_at: datetime | None
    window_ends_at: datetime | None
    challenge: RoundRow
    participant: PlayerRow


@dataclass(frozen=True, slots=True)
class RoundPage:
    """A link with what its page needs: whether its player has answered, and asked the help
    desk."""

    link: FormLink | LinkRow
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


def page_row(code: str):
    """`code`'s round page as one plain row (None: no such link): the link, its round and player,
    and whether they answered, asked the help desk, and the round is the last. In a web process on
    PostgreSQL read with other requests' of the same moment in one query (quiz/submit_read.py's
    group read, holding no connection meanwhile), else on the session's connection (PostgreSQL: a
    prepared statement). The ORM's load of `find_round_page` costs more than the query: pages
    answered before Flask read this instead."""
    statements = _page_statements()
    if page_reads_grouped():
        row = reader().group(statements[GROUPED], "code").first(code)
        if row is not ALONE:
            return row
    return statements[ONE].first(db.session.connection(), {"code": code})


def page_reads_grouped() -> bool:
    """Whether `page_row` reads in a group (then the request's session takes no connection: it
    must not hold one from the pool meanwhile, or a herd holding them all leaves the group's
    query none)."""
    return GROUPED in _page_statements() and state().submit_writer.is_batched()


def row_page(row) -> RoundPage:
    """A `page_row` as a RoundPage (its link a LinkRow)."""
    return RoundPage(LinkRow(row.code, row.participant_id, row.challenge_id, row.started_at,
                             row.window_ends_at, round_row(row),
                             PlayerRow(row.name, row.language, row.report_code, row.eliminated_in,
                                       row.elimination_reason, row.checked_in_at)),
                     bool(row.submitted), bool(row.asked_for_help), bool(row.last))


def round_row(row) -> RoundRow:
    """A `page_row`'s round."""
    return RoundRow(row.challenge_id, row.number, row.status, row.title, row.time_limit_seconds,
                    row.extra_seconds, row.opened_at, row.closes_at, row.closed_at)


_PAGE_STATEMENTS: dict[str, dict[str, PreparedRead]] = {}
ONE, GROUPED = "one", "grouped"


def _page_statements() -> dict[str, PreparedRead]:
    """`page_row`'s query, built once per dialect (PostgreSQL: prepared, and a group read's)."""
    dialect = db.engine.dialect.name
    if dialect not in _PAGE_STATEMENTS:
        this, later = aliased(Challenge, name="this_round"), aliased(Challenge, name="later")
        page = (
            select(FormLink.code, FormLink.participant_id, FormLink.challenge_id,
                   FormLink.started_at, FormLink.window_ends_at,
                   Participant.name, Participant.language, Participant.report_code,
                   Participant.eliminated_in, Participant.elimination_reason,
                   Participant.checked_in_at, Challenge.number, Challenge.status,
                   Challenge.title, Challenge.time_limit_seconds, Challenge.extra_seconds,
                   Challenge.opened_at, Challenge.closes_at, Challenge.closed_at,
                   exists().where(Submission.participant_id == FormLink.participant_id,
                                  Submission.challenge_id == FormLink.challenge_id)
                   .label("submitted"),
                   exists().where(HelpRequest.participant_id == FormLink.participant_id)
                   .label("asked_for_help"),
                   ~exists().where(this.id == FormLink.challenge_id, later.number > this.number)
                   .label("last"))
            .join(Participant, Participant.id == FormLink.participant_id)
            .join(Challenge, Challenge.id == FormLink.challenge_id))
        statements = _PAGE_STATEMENTS[dialect] = {
            ONE: PreparedRead(page.where(FormLink.code == bindparam("code")), db.engine.dialect)}
        if dialect == "postgresql":
            codes = bindparam("values", type_=ARRAY(FormLink.code.type))
            statements[GROUPED] = PreparedRead(page.where(FormLink.code == any_(codes)),
                                               db.engine.dialect)
    return _PAGE_STATEMENTS[dialect]


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
        if not isinstance(challenge, Challenge):  # a page's RoundRow: its questions are read
            challenge = db.session.get(Challenge, challenge.id)
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
