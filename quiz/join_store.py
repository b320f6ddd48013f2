"""Storing registrations: many new players in one transaction (the group commit's write), or one.

quiz/registration.py checks what people typed; what comes here is clean values. One transaction
for a batch: the rounds held against a concurrent close of round 1 (PostgreSQL FOR SHARE, so the
close's FOR UPDATE waits for the batch, or the batch sees "closed"; SQLite's write lock, taken
first), then one INSERT for the new players that skips any whose email or phone is already taken
(ON CONFLICT DO NOTHING: no read first, and a player committed meanwhile by another process is
skipped, not a failed batch), one for their links and one for their confirmation emails (each a
single multi-row statement, not one per row). Only when a player was skipped does a read find out
which of their email and phone was taken. A player whose email or phone is taken, by an earlier
player or an earlier row of the same batch, gets the duplicate answer; once a round has closed,
everyone gets "registration is closed". Each row's outcome: Registered, or the QuizError to answer
with.
"""
import secrets
from dataclasses import dataclass

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from . import emails as email_channel
from .clock import utcnow
from .effects import CHANGED, Drain, Pending, owe
from .errors import QuizError
from .extensions import db, state
from .group_commit import GroupCommit, take_sqlite_lock
from .links import new_code
from .models import Challenge, FormLink, Participant, RoundStatus
from .models.players import new_checkin_code


@dataclass(frozen=True)
class Registered:
    """What joining gave a new player: their id, report code, and a link per round as (number,
    status, code)."""

    id: int
    report_code: str
    links: tuple[tuple[int, RoundStatus, str], ...]


def store(clean: dict) -> Registered:
    """Register through this process's group commit (web processes under gevent), or at once in the
    caller's transaction (which the caller commits)."""
    outcome = state().join_writer.store(clean)
    if isinstance(outcome, QuizError):
        raise outcome
    return outcome


def insert_registrations(cleans: list[dict]) -> list[Registered | QuizError]:
    """Create the players and their links in the current transaction (the caller commits); each
    row's outcome."""
    statements, connection = _statements(), db.session.connection()
    if "lock" in statements:
        take_sqlite_lock(connection, statements["lock"])
    rounds = connection.execute(statements["rounds"]).all()
    if any(status == RoundStatus.CLOSED for _, _, status in rounds):
        # lazy: worded in each request's own language when answered (this runs in the writer)
        return [QuizError(_l("Registration is closed: the game is already under way."),
                          code="registration_closed") for _ in cleans]
    outcomes: list[Registered | QuizError | None] = [None] * len(cleans)
    rows, ids = _insert_players(connection, statements, cleans, outcomes)
    if not rows:
        return outcomes
    links = [{"participant_id": ids[row["report_code"]], "challenge_id": challenge_id,
              "code": new_code(), "seed": secrets.randbits(31)}
             for row in rows.values() for challenge_id, _, _ in rounds]
    if links:
        connection.execute(statements["links"], links)
    codes = iter(link["code"] for link in links)
    for i, row in rows.items():
        outcomes[i] = Registered(ids[row["report_code"]], row["report_code"], tuple(
            (number, status, next(codes)) for _, number, status in rounds))
    # Their forms are rendered in the background (joining never waits for storage); the projector's
    # count moves.
    joined = tuple(ids.values())
    owe(Pending(Drain.NEW_FORMS, joined), CHANGED)
    texted = tuple(ids[row["report_code"]] for row in rows.values() if row["confirmation_owed"])
    if texted:
        owe(Pending(Drain.CONFIRMATIONS, texted))
    # their results page and QR code, by email
    email_channel.queue_confirmations([(ids[row["report_code"]], row, row["report_code"])
                                for row in rows.values()])
    open_round = next((challenge_id for challenge_id, _, status in rounds
                       if status == RoundStatus.OPEN), None)
    # joined mid-round: their link goes out like everyone's did (one job per rush)
    if open_round is not None:
        owe(Pending(Drain.LATE_LINKS, joined, open_round))
    return outcomes


def _insert_players(connection, statements: dict, cleans: list[dict], outcomes: list):
    """The batch's players stored ({row index: row}, {report code: id}); `outcomes` holds the
    duplicate answers. The INSERT skips a player whose email or phone is already stored; only then
    one read says which, and anyone turned away for a skipped row's email or phone gets another
    pass (as if the skipped row had never been in the batch)."""
    stored, ids, waiting, now = {}, {}, list(range(len(cleans))), utcnow()
    taken_emails, taken_phones = set(), set()  # by players stored before (known after a skip)
    texts = bool(current_app.config["SMS_CONFIRMATION"])
    while waiting:
        emails = taken_emails | {row["email"] for row in stored.values()}
        phones = taken_phones | {row["phone"] for row in stored.values()}
        rows, later = {}, []
        for i in waiting:
            clean = cleans[i]
            if clean["email"] in emails or clean["phone"] in phones:  # taken, or by an earlier row
                later.append(i)
                continue
            emails.add(clean["email"])
            phones.add(clean["phone"])
            # A confirmation SMS owed in the same row; texted by a drain job, in batches like forms.
            rows[i] = {**clean, "report_code": secrets.token_urlsafe(16),
                       "checkin_code": new_checkin_code(), "created_at": now,
                       "confirmation_owed": texts and bool(clean["consent"])}
        got = dict(connection.execute(statements["participants"], list(rows.values())).all()) \
            if rows else {}
        ids.update(got)
        stored.update({i: row for i, row in rows.items() if row["report_code"] in got})
        skipped = [(i, row) for i, row in rows.items() if row["report_code"] not in got]
        if not skipped:
            for i in later:
                outcomes[i] = duplicate_error(email_taken=cleans[i]["email"] in emails)
            break
        asked = [row for _, row in skipped] + [cleans[i] for i in later]
        for email, phone in connection.execute(statements["taken"], {
                "emails": [row["email"] for row in asked],
                "phones": [row["phone"] for row in asked]}):
            taken_emails.add(email)
            taken_phones.add(phone)
        for i, row in skipped:
            if row["email"] not in taken_emails and row["phone"] not in taken_phones:
                # A clash of random codes (once in 2^50): the batch fails, and the group commit
                # writes it once more with fresh codes.
                raise IntegrityError("INSERT participant", {}, Exception(
                    "a new player's random code clashed with a stored one"))
            outcomes[i] = duplicate_error(email_taken=row["email"] in taken_emails)
        waiting = later
    return stored, ids


def duplicate_error(email_taken: bool) -> QuizError:
    """The answer to a second registration: never a second player."""
    field = "email" if email_taken else "phone"
    message = (_l("This email address is already registered. Your links come by SMS; ask the "
                  "help desk if they don't.") if email_taken else
               _l("This phone number is already registered. Your links come by SMS; ask the help "
                  "desk if they don't."))
    return QuizError(message, code="already_registered", fields={field: message})


_STATEMENTS: dict[str, dict] = {}


def _statements() -> dict:
    """The batch's statements, built once per dialect (building them costs more than running
    them)."""
    dialect = db.engine.dialect.name
    if dialect not in _STATEMENTS:
        dialect_insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        statements = {
            # the rounds (a handful: one read for all), held against a close of round 1
            "rounds": select(Challenge.id, Challenge.number, Challenge.status)
                      .order_by(Challenge.number).with_for_update(read=True),
            "taken": select(Participant.email, Participant.phone).where(or_(
                Participant.email.in_(bindparam("emails", expanding=True)),
                Participant.phone.in_(bindparam("phones", expanding=True)))),
            # a player whose email or phone is taken is skipped (answered from "taken" after)
            "participants": dialect_insert(Participant).on_conflict_do_nothing()
                            .returning(Participant.report_code, Participant.id),
            # RETURNING makes it one multi-row INSERT (SQLAlchemy's "insertmanyvalues"), not one
            # statement a row: the ids come back unread
            "links": insert(FormLink).returning(FormLink.id)}
        if dialect == "sqlite":
            # no row locks: a no-op write takes its write lock first (see rounds.lock_for_sqlite)
            statements["lock"] = update(Challenge).values(status=Challenge.status)
        _STATEMENTS[dialect] = statements
    return _STATEMENTS[dialect]


def init_app(app: Flask) -> None:
    state(app).join_writer = GroupCommit(app, insert_registrations, "registrations")
