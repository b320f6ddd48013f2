"""Sending queued SMS and emails, each at most once; retrying what failed for a while; how far a
round's links have got. What the messages say and who gets them: quiz/notify.py (SMS),
quiz/emails.py (email); the providers: quiz/sms.py, quiz/mail.py."""
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from . import emails, mail
from .clock import utcnow
from .effects import Job, Queue, Task, owe
from .errors import QuizError
from .extensions import db, get_queue, get_redis
from .models import Challenge, Message, MessageStatus, Participant
from .sms import SendError, backend

MAX_ATTEMPTS = 5
# Transient SMS failures wait this long before the next try (seconds, by attempt).
RETRY_BACKOFF = (2, 10, 30, 60)
# Names the worker sending round links: other workers' messages wait (links_waiting). Removed when
# its batch ends; lapses this long after its last link if the worker died sending them.
LINKS_BUSY_KEY = "knockout:sms:links-sending"
LINKS_BUSY_SECONDS = 2.0
RELEASE_MARK = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
                "end return 0")
GIVE_WAY_SECONDS = 2.0  # a batch that gave way to links is tried again this much later
LOOK_SECONDS = 0.1  # how often a batch looks (at most): at 3 SMS/s, before every send


def claim(message_ids: list[int], worker: str) -> list[int]:
    """Mark queued messages as this worker's; only what was still queued comes back."""
    if not message_ids:
        return []
    now = utcnow()
    db.session.execute(update(Message)
                       .where(Message.id.in_(message_ids), Message.status == MessageStatus.QUEUED)
                       .values(status=MessageStatus.SENDING, claimed_by=worker, claimed_at=now)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    return db.session.scalars(select(Message.id).where(
        Message.id.in_(message_ids), Message.status == MessageStatus.SENDING,
        Message.claimed_by == worker, Message.claimed_at == now).order_by(Message.id)).all()


def throttle(rate: float, channel: str = "sms") -> None:
    """Keep every worker together under `rate` messages a second (a Redis counter per second)."""
    if rate <= 0:
        return
    redis = get_redis()
    while True:
        second = int(time.time())
        key = f"knockout:{channel}:rate:{second}"
        count, _ = redis.pipeline().incr(key).expire(key, 5).execute()
        if count <= rate:
            return
        time.sleep(max(0.0, second + 1 - time.time()) + 0.001)


def mark_links_sending(worker: str) -> None:
    """`worker` is sending a round link: other workers' messages wait until LINKS_BUSY_SECONDS after
    the last."""
    get_redis().set(LINKS_BUSY_KEY, worker, px=int(LINKS_BUSY_SECONDS * 1000))


def links_sent(worker: str) -> None:
    """`worker`'s batch of links is done: other messages need not wait for it any more."""
    get_redis().eval(RELEASE_MARK, 1, LINKS_BUSY_KEY, worker)


def links_waiting(worker: str) -> bool:
    """Must `worker`'s batch of other messages give way to round links? Yes while a links job waits
    in its queue, or another worker is sending links (one Redis round trip)."""
    queued, sending = (get_redis().pipeline(transaction=False)
                       .llen(get_queue(Queue.LINKS).key).get(LINKS_BUSY_KEY).execute())
    return bool(queued) or sending not in (None, worker.encode())


def _channel(channel: str):
    """A channel's backend, its rate (messages a second) and how one row is handed to it."""
    if channel == "email":
        return (mail.backend(), float(current_app.config["EMAIL_RATE_PER_SECOND"]),
                lambda sender, message: sender.send(emails.outgoing(message)))
    return (backend(), float(current_app.config["SMS_RATE_PER_SECOND"]),
            lambda sender, message: sender.send(message.to, message.body))


def send_messages(message_ids: list[int], worker: str = "inline") -> tuple[int, int, list[int]]:
    """Send a batch, SMS and emails each by their channel's backend; each message at most once.
    Returns (sent, failed, ids to retry later)."""
    channels = dict(db.session.execute(select(Message.id, Message.channel)
                                       .where(Message.id.in_(message_ids))).all())
    sent = failed = 0
    retry = []
    for channel in sorted(set(channels.values())):
        done = _send_channel([i for i in message_ids if channels.get(i) == channel], worker,
                             channel)
        sent, failed, retry = sent + done[0], failed + done[1], retry + done[2]
    return sent, failed, retry


def _send_channel(message_ids: list[int], worker: str, channel: str
                  ) -> tuple[int, int, list[int]]:
    """Send one channel's messages of a batch.

    A real provider's message is claimed just before it is sent and recorded just after, so a
    worker killed mid-batch leaves at most one message in doubt ('sending'; reconcile decides).
    The outbox sends nothing outside the database, so it claims and records the batch at once.
    A round-link SMS that failed for good owes its player the link by email, in the same commit.
    Round links go first: a batch of other messages (results, reminders) checks between sends and,
    while links wait, hands the rest of itself back as a job GIVE_WAY_SECONDS later.
    """
    sender, rate, deliver = _channel(channel)
    pending = message_ids if sender.external else claim(message_ids, worker)
    # One query for the batch's rows (claimed ones, for the outbox); external sends re-check each
    # claim.
    rows = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(pending)))}
    sent = failed = 0
    retry = []
    looked, marked = -LOOK_SECONDS, False
    try:
        for index, message_id in enumerate(pending):
            message = rows[message_id]
            if channel == "sms" and time.monotonic() - looked >= LOOK_SECONDS:
                looked = time.monotonic()  # at every send, unless sends are quicker
                if message.kind == "round_link":
                    mark_links_sending(worker)
                    marked = True
                elif links_waiting(worker):
                    give_way(pending[index:], sender.external)
                    break
            throttle(rate, channel)  # wait first, so nothing sits claimed while we wait
            if sender.external and not claim([message_id], worker):
                continue  # sent or being sent by someone else
            try:
                provider_id = deliver(sender, message)
            except SendError as error:
                message.attempts += 1
                if error.permanent or message.attempts >= MAX_ATTEMPTS:
                    message.status, message.error = MessageStatus.FAILED, error.reason[:500]
                    failed += 1
                    if channel == "sms" and message.kind == "round_link":
                        emails.link_fallback(message.challenge_id, message.participant_id)
                else:
                    message.status, message.error = MessageStatus.QUEUED, error.reason[:500]
                    message.claimed_by = None
                    retry.append(message_id)
            else:
                message.status, message.sent_at = MessageStatus.SENT, utcnow()
                message.provider_id = provider_id
                message.attempts += 1
                sent += 1
            if sender.external:
                db.session.commit()  # it left the building: record it before the next one
    finally:
        if hasattr(sender, "close"):
            sender.close()
    db.session.commit()
    if marked:
        links_sent(worker)
    return sent, failed, retry


def give_way(rest: list[int], external: bool) -> None:
    """Hand the rest of a batch back (the outbox's claims undone) as a job a moment later: this
    worker takes the links meanwhile (their queue comes first), or another worker sends them."""
    unsent = update(Message).where(Message.id.in_(rest)).execution_options(
        synchronize_session=False)
    if not external:
        db.session.execute(unsent.where(Message.status == MessageStatus.SENDING)
                           .values(status=MessageStatus.QUEUED, claimed_by=None, claimed_at=None))
    db.session.execute(unsent.values(enqueued_at=utcnow()))
    owe(Job(Task.SEND_MESSAGES, (rest,), at=utcnow() + timedelta(seconds=GIVE_WAY_SECONDS),
            description=f"SMS: {len(rest)} after the round links"))


def retry_later(message_ids: list[int]) -> None:
    """Owe one more send of these messages, after a backoff that grows with their attempts."""
    attempts = max(db.session.scalars(select(Message.attempts)
                                      .where(Message.id.in_(message_ids))).all())
    delay = RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF)) - 1]
    channel, links = db.session.execute(select(func.max(Message.channel), func.count().filter(
        Message.kind == "round_link")).where(Message.id.in_(message_ids))).one()
    task = Task.SEND_EMAILS if channel == "email" else Task.SEND_MESSAGES
    owe(Job(task, (message_ids,), at=utcnow() + timedelta(seconds=delay),
            queue=Queue.LINKS if links else None,
            description=f"{'email' if task is Task.SEND_EMAILS else 'SMS'} retry of "
                        f"{len(message_ids)} (attempt {attempts + 1})"))


def requeue_failed(challenge: Challenge) -> list[int]:
    """'Retry failed' for a round: failed messages go back to the queue."""
    ids = db.session.scalars(select(Message.id).where(Message.challenge_id == challenge.id,
                                                      Message.status == MessageStatus.FAILED)).all()
    if ids:
        db.session.execute(update(Message).where(Message.id.in_(ids))
                           .values(status=MessageStatus.QUEUED, attempts=0, claimed_by=None)
                           .execution_options(synchronize_session=False))
    return ids


def requeue_link(participant: Participant, challenge: Challenge) -> int:
    """Resend one player's link for a round (their one round-link message goes out again)."""
    message_id = db.session.scalar(select(Message.id).where(
        Message.key == f"round_link:{challenge.id}:{participant.id}"))
    if message_id is None:
        raise QuizError(f"{participant.name} has no link message for round {challenge.number} yet.",
                        code="no_message")
    db.session.execute(update(Message).where(Message.id == message_id)
                       .values(status=MessageStatus.QUEUED, attempts=0, claimed_by=None, error=None,
                               to=participant.phone)
                       .execution_options(synchronize_session=False))
    return message_id


def stale_sending(older_than: timedelta) -> list[int]:
    """Messages claimed longer ago than any send takes: their worker died before recording them."""
    return db.session.scalars(select(Message.id).where(
        Message.status == MessageStatus.SENDING, Message.claimed_at < utcnow() - older_than)).all()


def sms_progress(challenge: Challenge) -> dict:
    """Where sending the round's links stands: status, total, sent, failed, percent, rate, ETA."""
    counts = dict(db.session.execute(
        select(Message.status, func.count()).where(Message.challenge_id == challenge.id,
                                                   Message.kind == "round_link",
                                                   Message.channel == "sms")
        .group_by(Message.status)).all())
    total = sum(counts.values())
    sent, failed = counts.get(MessageStatus.SENT, 0), counts.get(MessageStatus.FAILED, 0)
    if challenge.is_draft:
        status = "not_started"
    elif total == 0:
        status = "preparing"
    else:
        status = "completed" if sent + failed == total else "sending"
    percent = round(100 * (sent + failed) / total, 1) if total else 0.0
    window = 10
    recent = db.session.scalar(select(func.count()).where(
        Message.challenge_id == challenge.id, Message.kind == "round_link",
        Message.sent_at >= utcnow() - timedelta(seconds=window))) or 0
    rate = round(recent / window, 1)
    remaining = total - sent - failed
    eta = round(remaining / rate) if rate and remaining else (0 if status == "completed" else None)
    return {"status": status, "total": total, "sent": sent, "failed": failed,
            "progress_percent": percent, "rate_per_second": rate, "eta_seconds": eta}


def email_progress(challenge: Challenge) -> dict:
    """A round's emails (link fallbacks; the last round's results): total, sent, failed."""
    counts = dict(db.session.execute(
        select(Message.status, func.count()).where(Message.challenge_id == challenge.id,
                                                   Message.channel == "email")
        .group_by(Message.status)).all())
    return {"total": sum(counts.values()), "sent": counts.get(MessageStatus.SENT, 0),
            "failed": counts.get(MessageStatus.FAILED, 0)}


def send_time_warning(messages: int) -> str | None:
    """Before starting: how long the configured rate makes the send, when that is slow."""
    rate = float(current_app.config["SMS_RATE_PER_SECOND"])
    if rate <= 0 or messages / rate < 60:
        return None
    return f"{messages:,} messages at {rate:g}/s ≈ {round(messages / rate / 60)} min"

