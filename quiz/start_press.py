"""The Start press on plain rows: what quiz/web/start_path.py runs before Flask for a herd's Start.

`answers.start_clock` does the same on the ORM for the route (a link object to render a refusal
with: three reads and the UPDATE). Here: one read of link, player, round and "already in?" (the
submit's shape), the same state rule (`answers.state_of`), then one UPDATE that starts the clock
only if it hasn't started (two presses at once: one starts it, the other changes nothing). The
caller commits; the projector hears of a started clock after the commit (CHANGED).
"""
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, exists, select, update

from . import clocks
from .answers import QUESTIONS, READY, UNKNOWN_LINK, LinkState, refusal, state_of
from .effects import CHANGED, owe
from .errors import QuizError
from .extensions import db
from .group_commit import take_sqlite_lock
from .models import Challenge, FormLink, Participant, Submission

_SUBMITTED = exists().where(Submission.participant_id == FormLink.participant_id,
                            Submission.challenge_id == FormLink.challenge_id)
LINK = (select(FormLink.started_at, FormLink.window_ends_at, Participant.eliminated_in,
               Participant.elimination_reason, Participant.checked_in_at, Challenge.number,
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


def press_start(code: str, now: datetime) -> bool:
    """Start `code`'s clock at `now`: True when this press started it, False when it ran already.
    A refusal (QuizError, the route's own) in any state but Ready and the questions; a 404 for an
    unknown link. The caller commits."""
    # Core on the session's connection: the session's transaction (its commit sends what is owed),
    # without the ORM's execution around each statement (a third of the press's time)
    connection = db.session.connection()
    row = connection.execute(LINK, {"code": code}).first()
    if row is None:
        raise QuizError(UNKNOWN_LINK, code="unknown_link", status=404)
    state = state_of(LinkState.of_row(row), now, current_app.config["SUBMIT_GRACE_SECONDS"])
    if state not in (READY, QUESTIONS):
        raise refusal(state, row.number, row.eliminated_in)
    if row.started_at is not None:
        return False  # a repeat press: the clock runs from the first
    ends = clocks.window_end_of(row.time_limit_seconds, row.extra_seconds, row.closes_at, now)
    params = {"link_code": code, "now": now, "ends": ends}
    if connection.dialect.name == "sqlite":  # its lock waited for without holding the process
        started = take_sqlite_lock(connection, START, params).rowcount
    else:
        started = connection.execute(START, params).rowcount
    if started:
        owe(CHANGED)  # the projector counts who is playing
    return bool(started)
