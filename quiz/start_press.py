"""The Start press on plain rows: what quiz/web/start_path.py runs before Flask for a herd's Start.

`answers.start_clock` does the same on the ORM for the route (a link object to render a refusal
with: three reads and the UPDATE). Here: one read of link, player, round and "already in?" (the
submit's shape), the same state rule (`answers.state_of`), then one UPDATE that starts the clock
only if it hasn't started (two presses at once: one starts it, the other changes nothing). The
caller commits; the projector hears of a started clock after the commit (CHANGED).

On PostgreSQL each of the two statements is its own transaction (`statements_alone`), as they were
one's at READ COMMITTED: the read locks nothing, and the UPDATE decides alone whether the clock
was still to start. So a press is two round trips (a repeat press one), not a BEGIN, the read, the
UPDATE and a COMMIT. In a web process (under gevent) the read is the submit's group read
(`answers.grouped_link`): the presses and submits of the same few milliseconds read their links in
one query, and a press holds no pooled connection until its UPDATE. What the press read is what
the htmx press's page is made from (quiz/web/start_path.py): no second read of the link.
"""
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, exists, select, update

from . import clocks
from .answers import (QUESTIONS, READY, UNKNOWN_LINK, LinkState, grouped_link, refusal,
                      state_of)
from .effects import CHANGED, owe
from .errors import QuizError
from .extensions import db, statements_alone
from .group_commit import take_sqlite_lock
from .submit_read import ALONE
from .models import Challenge, FormLink, Participant, Submission

_SUBMITTED = exists().where(Submission.participant_id == FormLink.participant_id,
                            Submission.challenge_id == FormLink.challenge_id)
LINK = (select(FormLink.participant_id, FormLink.started_at, FormLink.window_ends_at,
               Participant.eliminated_in, Participant.elimination_reason,
               Participant.checked_in_at, Participant.language, Challenge.number,
               Challenge.status, Challenge.closes_at, Challenge.closed_at,
               Challenge.time_limit_seconds, Challenge.extra_seconds,
               _SUBMITTED.label("submitted"))
        .join(Participant, Participant.id == FormLink.participant_id)
        .join(Challenge, Challenge.id == FormLink.challenge_id)
        .where(FormLink.code == bindparam("code")))
_table = FormLink.__table__
START = (update(_table).where(_table.c.code == bindparam("link_code"),
                              _table.c.started_at.is_(None))
         .values(started_at=bindparam("now", type_=_table.c.started_at.type),
                 window_ends_at=bindparam("ends", type_=_table.c.window_ends_at.type)))


@dataclass(frozen=True, slots=True)
class Press:
    """A press that found the clock running: whether it started it, and what the player's page
    (their questions, now) is made of."""

    started: bool  # this press started the clock (else it ran already)
    participant_id: int
    language: str | None  # the player's own
    # the link with its clock running; None when another press started it at the same moment
    # (its window not read here)
    link: LinkState | None


def press_start(code: str, now: datetime) -> Press:
    """Start `code`'s clock at `now` (the Press says whether this press started it, or it ran
    already). A refusal (QuizError, the route's own) in any state but Ready and the questions; a
    404 for an unknown link. The caller commits."""
    # Under gevent on PostgreSQL read with the other presses' and submits' of the moment, no
    # connection held meanwhile; else alone, in Core on the session's connection: the session's
    # transaction (its commit sends what is owed; on PostgreSQL no BEGIN or COMMIT goes out),
    # without the ORM's execution around each statement (a third of the press's time)
    row = grouped_link(code)
    if row is ALONE:
        statements_alone()
        row = db.session.connection().execute(LINK, {"code": code}).first()
    if row is None:
        raise QuizError(UNKNOWN_LINK, code="unknown_link", status=404)
    link = LinkState.of_row(row)
    state = state_of(link, now, current_app.config["SUBMIT_GRACE_SECONDS"])
    if state not in (READY, QUESTIONS):
        raise refusal(state, row.number, row.eliminated_in)
    if row.started_at is not None:  # a repeat press: the clock runs from the first
        return Press(False, row.participant_id, row.language, link)
    ends = clocks.window_end_of(row.time_limit_seconds, row.extra_seconds, row.closes_at, now)
    params = {"link_code": code, "now": now, "ends": ends}
    statements_alone()  # (when the read was the group's)
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":  # its lock waited for without holding the process
        started = take_sqlite_lock(connection, START, params).rowcount
    else:
        started = connection.execute(START, params).rowcount
    if not started:
        return Press(False, row.participant_id, row.language, None)
    owe(CHANGED)  # the projector counts who is playing
    return Press(True, row.participant_id, row.language,
                 replace(link, started_at=now, window_ends_at=ends))
