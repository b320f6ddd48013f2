"""What a change owes once it commits: domain code declares it here, quiz/dispatcher.py sends it.

A domain function never talks to Redis, RQ or storage in the middle of a transaction. It declares
the effects it owes with `owe()`: a `Job` to enqueue, ids to add to a `Pending` set (drained by
one job, however many requests add to it), the live pages' `CHANGED`, a job to cancel, stored
keys to delete. Once the transaction commits, the app's dispatcher sends them; a rollback drops
them. What must not be lost (an SMS owed, a result to send) is a row written in the same
transaction: an effect only nudges the queues, and reconcile (quiz/reconcile.py) finds anything
a lost nudge left behind.
"""
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .extensions import db, state

CHANNEL = "knockout:live"  # the live pages' "something changed" (quiz/live.py listens)
PENDING_PREFIX = "knockout:pending:"
SESSION_KEY = "knockout_effects"


class Queue(StrEnum):
    """The RQ queues: round links, stored forms, other messages, everything else, emails. Workers
    take them in this order (extensions.QUEUE_NAMES): a round's links never wait behind result SMS,
    and a rush of confirmation emails holds up nothing."""

    LINKS = "links"
    FORMS = "forms"
    NOTIFY = "notify"
    DEFAULT = "default"
    EMAIL = "email"


class Task(StrEnum):
    """Every job a worker runs: a function of quiz/tasks.py, and the queue it waits in."""

    SEND_ROUND_LINKS = "send_round_links"
    SEND_RESULTS = "send_results"
    SEND_MESSAGES = "send_messages"
    SEND_EMAILS = "send_emails"
    SEND_REMINDER = "send_reminder"
    CLOSE_EXPIRED_ROUND = "close_expired_round"
    DRAIN_PENDING = "drain_pending"
    FILE_UNANSWERED_FORMS = "file_unanswered_forms"
    SETTLE_FORMS = "settle_forms"
    REGENERATE_FORMS = "regenerate_forms"
    RECONCILE_FORMS = "reconcile_forms"

    @property
    def path(self) -> str:
        return f"quiz.tasks.{self.value}"

    @property
    def queue(self) -> Queue:
        return TASK_QUEUES.get(self, Queue.DEFAULT)


TASK_QUEUES = {
    Task.SEND_ROUND_LINKS: Queue.LINKS, Task.SEND_RESULTS: Queue.NOTIFY,
    Task.SEND_MESSAGES: Queue.NOTIFY, Task.SEND_REMINDER: Queue.NOTIFY,
    Task.SEND_EMAILS: Queue.EMAIL,
    Task.FILE_UNANSWERED_FORMS: Queue.FORMS, Task.SETTLE_FORMS: Queue.FORMS,
    Task.REGENERATE_FORMS: Queue.FORMS, Task.RECONCILE_FORMS: Queue.FORMS,
}


class Drain(StrEnum):
    """What a pending set of participants is waiting for, and the queue its drain job runs in."""

    NEW_FORMS = "new_forms"  # just registered: render their stored forms
    # just submitted in a round: move that round's form to answered/
    ANSWERED_FORMS = "answered_forms"
    LATE_LINKS = "late_links"  # joined while a round was open: text them its link
    CONFIRMATIONS = "confirmations"  # just registered: text them their results page (after links)
    # just registered: hand their confirmation emails to send jobs
    EMAIL_CONFIRMATIONS = "email_confirmations"

    @property
    def queue(self) -> Queue:
        return {Drain.LATE_LINKS: Queue.LINKS, Drain.CONFIRMATIONS: Queue.NOTIFY,
                Drain.EMAIL_CONFIRMATIONS: Queue.EMAIL}.get(self, Queue.FORMS)


@dataclass(frozen=True)
class Job:
    """A job to enqueue: `task(*args)`, now or `at` (naive UTC), retried with backoff if it
    fails; in its task's queue unless `queue` says (a batch of link SMS goes in Queue.LINKS)."""

    task: Task
    args: tuple = ()
    at: datetime | None = None
    description: str = ""
    job_id: str | None = None
    timeout: int = 300
    queue: Queue | None = None


@dataclass(frozen=True)
class Pending:
    """Participants added to a pending set; a drain job is on its way while the set holds any."""

    drain: Drain
    ids: tuple[int, ...]
    round_id: int | None = None

    @property
    def key(self) -> str:
        return pending_key(self.drain, self.round_id)


@dataclass(frozen=True)
class Changed:
    """The live pages should look again (coalesced by every web process's hub)."""


@dataclass(frozen=True)
class CancelJob:
    """A scheduled job that must not run (it also checks the database, so a race cannot send it)."""

    job_id: str


@dataclass(frozen=True)
class DeleteStored:
    """Keys to delete from object storage (e.g. shredded photos): only once the rows say so."""

    keys: tuple[str, ...]


CHANGED = Changed()
Effect = Job | Pending | Changed | CancelJob | DeleteStored


def pending_key(drain: Drain, round_id: int | None = None) -> str:
    """The Redis set of participant ids waiting for `drain` (per round where it has one)."""
    return PENDING_PREFIX + drain.value + ("" if round_id is None else f":{round_id}")


def owe(*effects: Effect) -> None:
    """Declare what the current transaction owes once it commits (dropped if it rolls back)."""
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so a rollback before any statement still drops these
    session.info.setdefault(SESSION_KEY, []).extend(effects)


def dispatch(*effects: Effect) -> None:
    """Send effects now, outside any transaction (e.g. a page that noticed a form missing)."""
    state().dispatcher.dispatch(list(effects))
