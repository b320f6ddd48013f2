"""Statements that carry thousands of ids as one parameter: the close's ranks and eliminations.

SQLite gets a JSON array (read by json_each), PostgreSQL an integer[] sent as its text form
(psycopg's own list adapter takes ~1 µs an element): one statement, one parameter, however many
players. Any other database gets the portable form (executemany, IN with a parameter per id).
"""
import json

from sqlalchemy import text, update

from .extensions import db
from .models import Participant, Submission

# The ranking's result in one statement. SQLite: each element is `submission id × 2^24 + rank`,
# sorted, so rows are visited in table order (random order costs half as much again at 50,000
# players).
RANK_UPDATES = {
    "sqlite": "UPDATE submission SET rank = ranked.value & 16777215 "
              "FROM json_each(:order) AS ranked WHERE submission.id = ranked.value >> 24",
    "postgresql": "UPDATE submission SET rank = ranked.place "
                  "FROM unnest(CAST(:order AS integer[])) WITH ORDINALITY AS ranked(id, place) "
                  "WHERE submission.id = ranked.id",
}
ID_LIST = {
    "sqlite": "SELECT value FROM json_each(:ids)",
    "postgresql": "SELECT unnest(CAST(:ids AS integer[]))",
}


def apply_ranks(submission_ids: list[int]) -> None:
    """Store rank 1..n for the submissions in this order."""
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        order = json.dumps(sorted((sid << 24) | place
                                  for place, sid in enumerate(submission_ids, start=1)))
    elif dialect == "postgresql":
        order = int_array(submission_ids)
    else:  # another database: the portable executemany
        rows = [{"id": sid, "rank": place} for place, sid in enumerate(submission_ids, start=1)]
        db.session.execute(update(Submission), rows)
        return
    if submission_ids:
        db.session.connection().execute(text(RANK_UPDATES[dialect]), {"order": order})


def int_array(ids) -> str:
    """PostgreSQL's text form of an integer[] ('{3,1,2}'), for a CAST in the statement."""
    return "{" + ",".join(map(str, ids)) + "}"


def id_in(participant_ids):
    """`participant.id IN (…)`, the ids travelling as one parameter (SQLite: a JSON array;
    PostgreSQL: an int[])."""
    dialect, ordered = db.engine.dialect.name, sorted(participant_ids)
    if dialect not in ID_LIST:
        return Participant.id.in_(ordered)
    values = json.dumps(ordered) if dialect == "sqlite" else int_array(ordered)
    return Participant.id.in_(text(ID_LIST[dialect]).bindparams(ids=values))


def id_not_in(participant_ids):
    """`participant.id NOT IN (…)`; on PostgreSQL as NOT EXISTS, an anti-join (a NOT IN subquery is
    hashed only while it fits in work_mem, and is otherwise rescanned for every row)."""
    if db.engine.dialect.name != "postgresql":
        return ~id_in(participant_ids)
    kept = int_array(sorted(participant_ids))
    return text("NOT EXISTS (SELECT FROM unnest(CAST(:kept AS integer[])) AS kept(id) "
                "WHERE kept.id = participant.id)").bindparams(kept=kept)
