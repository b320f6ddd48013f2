"""Waiting phones: one small shared status that every waiting phone polls instead of its own page.

A phone whose round hasn't opened, or which has answered while the round is open, asks
`GET /api/status` every `poll_seconds` (plus jitter) with the version it holds, and fetches its own
page only when the rounds changed (`rounds_version`, a hash of each round's status, opening and
close), and then not at once: at a random moment within `spread_seconds` (its round opened: the
phone says so at once from the status) or `result_spread_seconds` (anything else: a close), so the
room's fetches don't come in step. The status says which round is open, which closed last, how often
to ask and how far to spread; its version (the ETag) is a hash of all that, so every process and
node that computes it gets the same one.

Where it lives: in Redis (STATUS_KEY), computed from the database by whoever finds it missing, kept
STATUS_TTL_SECONDS at most (a safety net for a change whose invalidation was lost), and dropped
after any commit that changed a round's status, opening or close (whatever path changed it: the
console, the API, a worker's close at the time limit, a reopen). Each process keeps its copy for
STATUS_CACHE_SECONDS (1 s, as long as nginx may cache it): thousands of polls a second cost no
database query and at most one Redis read a second per process.

A generation counter guards the race between a recompute and an invalidation: a process that read
the database before a change committed cannot store its (older) status after the change dropped
the key, because the change bumped the generation it read first.
"""
import contextlib
import hashlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import redis
from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from .answers import NOT_OPEN, SUBMITTED
from .config import ConfigError
from .extensions import db, get_redis
from .models import Challenge, Participant, RoundStatus

log = logging.getLogger(__name__)

STATUS_KEY = "knockout:status"
GENERATION_KEY = "knockout:status:generation"
# A change whose invalidation never reached Redis (Redis down at that moment) shows within this.
STATUS_TTL_SECONDS = 30
# The cadence: total polling of the whole room stays near this many requests a second, each phone
# asking every POLL_MIN to POLL_MAX seconds (so it learns of its round within POLL_MAX + jitter).
POLLS_PER_SECOND = 400
POLL_MIN, POLL_MAX = 3, 10
# The spread: after a change, each phone fetches its page a random moment within spread_seconds of
# learning of it (result_spread_seconds for anything but its round opening), so the whole room's
# fetches come at about STATUS_PAGES_PER_SECOND (250 by default: a page costs ~12 `/ping`s of CPU,
# and two gevent processes serve that comfortably next to the polls and the SMS links' own herd). A
# round's questions wait at most OPEN_SPREAD_MAX (the phone says at once that the round is open,
# and a tap fetches them at once); a result, which nobody races a clock for, RESULT_SPREAD_MAX.
OPEN_SPREAD_MAX, RESULT_SPREAD_MAX = 30, 60
# What a waiting phone's page depends on among a round's columns.
WATCHED = ("status", "opened_at", "closed_at")
SESSION_FLAG = "knockout_status_changed"
EXTENSION = "knockout_waiting"

# Store the status only if no change bumped the generation since it was read (before the database).
SAVE_IF_CURRENT = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Status:
    """The shared status: its version (the ETag) and the JSON body every waiting phone gets."""

    version: str
    poll_seconds: int
    body: bytes
    # What the pages depend on (the rounds' state alone): a change of the cadence or the spread
    # changes `version` (the body changed) but no page, so no phone fetches its page for it.
    rounds_version: str = ""

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @classmethod
    def from_body(cls, body: bytes) -> "Status":
        fields = json.loads(body)
        return cls(fields["version"], fields["poll_seconds"], body,
                   fields.get("rounds_version") or fields["version"])


def waits(state: str, round_closed: bool) -> bool:
    """A page in `state` waits on the shared status: its round hasn't opened, or the player's
    answers are in and the round is still open (what ends either wait is the same for everyone)."""
    return state == NOT_OPEN or (state == SUBMITTED and not round_closed)


def poll_seconds(players: int) -> int:
    """How often each phone asks: total polling ≈ POLLS_PER_SECOND, within POLL_MIN..POLL_MAX s."""
    return min(max(math.ceil(players / POLLS_PER_SECOND), POLL_MIN), POLL_MAX)


def spread_seconds(players: int, pages_per_second: float, most: int) -> int:
    """Over how many seconds a room of `players` spreads its page fetches after a change: at about
    `pages_per_second`, `most` at most."""
    return min(math.ceil(players / pages_per_second), most)


def build_status(rounds: list[tuple], players: int, pages_per_second: float = 250) -> Status:
    """The status from each round's (number, status, opened_at, closed_at) and the number of players
    (a pure function: every process computes the same version from the same rows). Players, not
    players still in: the knocked-out may play on in the shadow league and wait as the others do."""
    poll = poll_seconds(players)
    spreads = [spread_seconds(players, pages_per_second, most)
               for most in (OPEN_SPREAD_MAX, RESULT_SPREAD_MAX)]
    open_round = min((n for n, s, _, _ in rounds if s == RoundStatus.OPEN), default=None)
    last_closed = max((n for n, s, _, _ in rounds if s == RoundStatus.CLOSED), default=None)
    state = [[n, str(s), _iso(o), _iso(c)] for n, s, o, c in sorted(rounds)]
    rounds_version = _digest(state)
    version = _digest(state + [poll] + spreads)
    body = json.dumps({"version": version, "open_round": open_round,
                       "last_closed_round": last_closed, "poll_seconds": poll,
                       "rounds_version": rounds_version, "spread_seconds": spreads[0],
                       "result_spread_seconds": spreads[1]}, separators=(",", ":")).encode()
    return Status(version, poll, body, rounds_version)


def _digest(fingerprint: list) -> str:
    return hashlib.blake2b(json.dumps(fingerprint).encode(), digest_size=8).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="microseconds")


def compute_status() -> Status:
    """The status as the database has it now (two small queries)."""
    rounds = db.session.execute(select(Challenge.number, Challenge.status, Challenge.opened_at,
                                       Challenge.closed_at)).all()
    players = db.session.scalar(select(func.count()).select_from(Participant))
    return build_status([tuple(row) for row in rounds], players,
                        current_app.config["STATUS_PAGES_PER_SECOND"])


def read_status() -> Status:
    """The shared status from Redis; computed from the database (and stored) if Redis lost it, or
    from the database alone while Redis is unreachable."""
    connection = get_redis()
    try:
        generation, stored = connection.mget(GENERATION_KEY, STATUS_KEY)
    except redis.RedisError as error:
        log.warning("status: Redis unreachable (%s), computed from the database", error)
        return compute_status()
    if stored:
        return Status.from_body(stored)
    status = compute_status()  # after reading the generation: a change from here on wins
    try:
        connection.eval(SAVE_IF_CURRENT, 2, GENERATION_KEY, STATUS_KEY, generation or b"0",
                        status.body, STATUS_TTL_SECONDS)
    except redis.RedisError as error:
        log.warning("status: could not store it in Redis: %s", error)
    return status


class StatusCache:
    """One process's copy of the shared status, kept STATUS_CACHE_SECONDS; one greenlet refreshes it
    while the others keep answering with the copy they have."""

    def __init__(self, app: Flask):
        self.app = app
        self.status: Status | None = None
        self.until = 0.0
        self.lock = threading.Lock()

    def get(self) -> Status:
        status = self.status
        if status is not None and time.monotonic() < self.until:
            return status
        if not self.lock.acquire(blocking=status is None):
            return status  # being refreshed right now: this copy is at most a moment older
        try:
            if self.status is None or time.monotonic() >= self.until:
                with self._context():
                    self.status = read_status()
                self.until = time.monotonic() + self.app.config["STATUS_CACHE_SECONDS"]
            return self.status
        finally:
            self.lock.release()

    def _context(self):
        """Where to read it: the request's own session, unless it holds a change to the rounds not
        committed yet (the status must say what is committed) or there is none (GET /api/status
        is answered before Flask); then a context of its own, with a connection of its own. A
        waiting page never needs a second connection from a pool a rush may have emptied."""
        if has_app_context() and not db.session.info.get(SESSION_FLAG) and not _changes_rounds(
                db.session):
            return contextlib.nullcontext()
        return self.app.app_context()

    def forget(self) -> None:
        """Drop this process's copy (a change committed here: no need to wait out the second)."""
        self.until = 0.0


def current_status() -> Status:
    """The shared status, from this process's copy when it is fresh (no database, usually no
    Redis)."""
    return current_app.extensions[EXTENSION].get()


def invalidate_status() -> None:
    """A change waiting phones must see committed: drop the shared status (it is computed again on
    the next request) and bump the generation, so that no older computation can store itself."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(GENERATION_KEY)
    pipe.delete(STATUS_KEY)
    pipe.execute()


def _changes_rounds(session: Session) -> bool:
    for row in chain(session.new, session.deleted, session.dirty):
        if isinstance(row, Challenge) and (
                row in session.new or row in session.deleted
                or any(inspect(row).attrs[name].history.has_changes() for name in WATCHED)):
            return True
    return False


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context) -> None:
    if not session.info.get(SESSION_FLAG) and _changes_rounds(session):
        session.info[SESSION_FLAG] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(SESSION_FLAG, False) and has_app_context():
        if (cache := current_app.extensions.get(EXTENSION)) is not None:
            cache.forget()
        try:
            invalidate_status()
        except redis.RedisError as error:
            log.warning("status: Redis unreachable, waiting phones see the change within %d s: %s",
                        STATUS_TTL_SECONDS, error)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(SESSION_FLAG, None)


def pages_per_second(value) -> float:
    """STATUS_PAGES_PER_SECOND as a number above 0, or a ConfigError saying what to set."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = None
    if rate is None or not 0 < rate < math.inf:
        raise ConfigError(f"STATUS_PAGES_PER_SECOND={value!r}: set the pages a second the web "
                          "processes serve comfortably, a number above 0 (e.g. 250).")
    return rate


def init_app(app: Flask) -> None:
    app.config["STATUS_PAGES_PER_SECOND"] = pages_per_second(app.config["STATUS_PAGES_PER_SECOND"])
    app.extensions[EXTENSION] = StatusCache(app)
