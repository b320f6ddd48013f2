"""Storing scored submissions: many rows in one transaction (the group commit's write), or one.

quiz/answers.py decides whether a player may submit and scores the answers; what comes here is a
row to store. One transaction for a whole batch: the rounds' rows held (PostgreSQL FOR SHARE, so a
close waits for the batch or the batch sees the close; SQLite's write lock, taken first), each
row's round checked again (still open: not closed since the check), then one INSERT … ON CONFLICT
DO NOTHING for all of them, a duplicate of a row already stored (or of an earlier row in the same
batch) stopped by the unique key. Each row's outcome: its new id, DUPLICATE or CLOSED.
"""
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .effects import CHANGED, Drain, Pending, owe
from .extensions import db, state
from .group_commit import GroupCommit, take_sqlite_lock
from .models import Challenge, RoundStatus, Submission

DUPLICATE, CLOSED = "duplicate", "closed"


@dataclass(frozen=True, slots=True)
class Answered:
    """A scored submission, ready to store (the columns of its row)."""

    participant_id: int
    challenge_id: int
    submitted_at: datetime
    answers: dict
    score: int
    correct: int
    response_time: float
    shadow: bool

    def row(self) -> dict:
        """The INSERT's parameters (dataclasses.asdict would deep-copy the answers for nothing)."""
        return {"participant_id": self.participant_id, "challenge_id": self.challenge_id,
                "submitted_at": self.submitted_at, "answers": self.answers, "score": self.score,
                "correct": self.correct, "response_time": self.response_time,
                "shadow": self.shadow}


def store(row: Answered) -> int | str:
    """Store `row` through this process's group commit (web processes under gevent), or at once in
    the caller's transaction (which the caller commits); its outcome."""
    return state().submit_writer.store(row)


def insert_rows(rows: list[Answered]) -> list[int | str]:
    """Store the rows in the current transaction (the caller commits); each row's outcome. What a
    stored row owes (its form moves to answered/, the live pages count it) is sent after the
    commit."""
    statements, connection = _statements(), db.session.connection()
    round_ids = sorted({row.challenge_id for row in rows})
    if "lock" in statements:
        take_sqlite_lock(connection, statements["lock"], {"ids": round_ids})
    rounds = {r.id: r for r in connection.execute(statements["rounds"], {"ids": round_ids})}
    outcomes: list[int | str | None] = [None] * len(rows)
    first: dict[tuple[int, int], int] = {}
    for i, row in enumerate(rows):
        key = (row.participant_id, row.challenge_id)
        if not _still_open(rounds.get(row.challenge_id)):
            outcomes[i] = CLOSED
        elif key in first:
            outcomes[i] = DUPLICATE  # the same player twice in this batch: the first one counts
        else:
            first[key] = i
    if first:
        fresh = [rows[i] for i in first.values()]
        stored = {(r.participant_id, r.challenge_id): r.id
                  for r in _insert(connection, statements, fresh)}
        for key, i in first.items():
            outcomes[i] = stored.get(key, DUPLICATE)  # the unique key stopped an earlier one's twin
        by_round: dict[int, list[int]] = {}
        for participant_id, challenge_id in stored:
            by_round.setdefault(challenge_id, []).append(participant_id)
        for challenge_id, ids in by_round.items():
            # The live pages count them; the players' stored forms move to answered/ (one Redis
            # trip for all).
            owe(Pending(Drain.ANSWERED_FORMS, tuple(ids), challenge_id), CHANGED)
    return outcomes


def _insert(connection, statements: dict, rows: list[Answered]):
    """INSERT … ON CONFLICT DO NOTHING of `rows`: the stored ones' keys and ids.

    On PostgreSQL one array a column, UNNESTed: the statement's text is the same whatever the
    batch's size (psycopg converts it once, and prepares it after a few batches), where the
    multi-row VALUES had eight parameters a row (psycopg parsed its 4,000 placeholders again for
    every batch, and the server a new statement each time)."""
    if "unnest" not in statements:
        return connection.execute(statements["insert"], [row.row() for row in rows])
    json = statements["json"]
    return connection.exec_driver_sql(statements["unnest"], {
        "participant_id": [row.participant_id for row in rows],
        "challenge_id": [row.challenge_id for row in rows],
        "submitted_at": [row.submitted_at for row in rows],
        "answers": [json(row.answers) for row in rows],
        "score": [row.score for row in rows], "correct": [row.correct for row in rows],
        "response_time": [row.response_time for row in rows],
        "shadow": [row.shadow for row in rows]})


def _still_open(round_row) -> bool:
    """The round is still open: what a close between the player's check and this transaction
    changed. Time (the round's end, a player's own window) is the check's alone: the player's
    `now` was checked against it already, and only a close can take that back."""
    return round_row is not None and round_row.status == RoundStatus.OPEN


_STATEMENTS: dict[str, dict] = {}
# The batch's INSERT on PostgreSQL: the columns, key and RETURNING of the dialects' insert below.
UNNEST_INSERT = (
    "INSERT INTO submission (participant_id, challenge_id, submitted_at, answers, score, correct,"
    " response_time, shadow) SELECT * FROM unnest(%(participant_id)s::integer[],"
    " %(challenge_id)s::integer[], %(submitted_at)s::timestamp[], %(answers)s::json[],"
    " %(score)s::integer[], %(correct)s::integer[], %(response_time)s::double precision[],"
    " %(shadow)s::boolean[]) ON CONFLICT (participant_id, challenge_id) DO NOTHING"
    " RETURNING participant_id, challenge_id, id")


def _statements() -> dict:
    """The batch's statements, built once per dialect."""
    dialect = db.engine.dialect.name
    if dialect not in _STATEMENTS:
        ids = bindparam("ids", expanding=True)
        rounds = select(Challenge.id, Challenge.status).where(Challenge.id.in_(ids))
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        statements = {
            "rounds": rounds.with_for_update(read=True) if dialect == "postgresql" else rounds,
            "insert": insert(Submission)
                      .on_conflict_do_nothing(index_elements=["participant_id", "challenge_id"])
                      .returning(Submission.participant_id, Submission.challenge_id,
                                 Submission.id)}
        if dialect == "postgresql":
            statements["unnest"] = UNNEST_INSERT
            answers = Submission.__table__.c.answers.type  # (the engine's JSON serializer)
            statements["json"] = answers.dialect_impl(db.engine.dialect).bind_processor(
                db.engine.dialect)
        if dialect == "sqlite":
            # no row locks: a no-op write takes its write lock first (see rounds.lock_for_sqlite)
            statements["lock"] = (update(Challenge).values(status=Challenge.status)
                                  .where(Challenge.id.in_(ids)))
        _STATEMENTS[dialect] = statements
    return _STATEMENTS[dialect]


def init_app(app: Flask) -> None:
    state(app).submit_writer = GroupCommit(app, insert_rows, "submissions")
