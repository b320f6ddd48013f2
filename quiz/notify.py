"""SMS: what the messages say, who gets them, and handing them to send jobs (sending them, each at
most once: quiz/delivery.py)."""
import logging
import string

from flask import current_app
from sqlalchemy import String, and_, case, cast, func, insert, literal, select, update

from .branding import current_look
from .clock import utcnow
from .effects import Job, Queue, Task, owe
from .extensions import db
from .i18n import default, enabled
from .models import Challenge, FormLink, Message, MessageStatus, Participant, ReminderStatus
from .sms_templates import TEMPLATES, template_for

__all__ = ["TEMPLATES", "template_for"]  # the wording: quiz/sms_templates.py

log = logging.getLogger(__name__)

BATCH_SIZE = 100
LINK_KIND = "round_link"  # sent before any other kind (quiz/delivery.py gives way to them)
RESULT_KINDS = ("result_through", "result_out", "result_out_shadow", "winner", "final_result")

# --- wording: each language's players get their language's version -------------------------------

def render_sql(template: str, values: dict, columns: dict):
    """The template as one SQL expression: constants filled in, per-player parts as columns.

    So a message for each of 50,000 players is one INSERT … SELECT, not 50,000 renders.
    """
    parts, expression = [], None
    for text, name, _, _ in string.Formatter().parse(template):
        if text:
            parts.append(literal(text))  # (the parser has already turned {{ into {)
        if name is not None:
            parts.append(columns[name] if name in columns else literal(str(values[name])))
    for part in parts:
        expression = part if expression is None else expression + part
    return expression if expression is not None else literal("")


def _player_columns(link_code=None) -> dict:
    base = current_app.config["PUBLIC_BASE_URL"]
    columns = {"name": Participant.name, "report": literal(f"{base}/r/") + Participant.report_code}
    if link_code is not None:
        columns["link"] = literal(f"{base}/f/") + link_code
    return columns


def _values(challenge: Challenge | None = None, **extra) -> dict:
    values = {"event": current_look().name, **extra}
    if challenge is not None:
        values.update(number=challenge.number, title=challenge.title)
    return values


# --- queueing (one statement each, safe to repeat) -----------------------------------------------

def _queue(kind: str, scope: str, select_from, values, columns: dict, challenge_id=None,
           reminder_id=None) -> int:
    """One message of `kind` per player `select_from` selects, in their language's wording (and
    `values`, a dict or a function of the language): still one INSERT … SELECT, its body a CASE on
    the player's language (i18n.language_of as SQL: theirs while the event offers it, else the
    default)."""
    def body(language: str):
        return render_sql(template_for(kind, language),
                          values(language) if callable(values) else values, columns)
    others = [language for language in enabled() if language != default()]
    wording = body(default())
    if others:
        wording = case(*((Participant.language == language, body(language))
                         for language in others), else_=wording)
    return _insert(kind, scope, select_from, wording, challenge_id, reminder_id)


def _insert(kind: str, scope: str, select_from, body, challenge_id, reminder_id) -> int:
    key = literal(f"{kind}:{scope}:") + cast(Participant.id, String)
    # No SMS to a player who never agreed to them (rows from before the API required consent).
    rows = select_from.where(Participant.consent.is_(True)).add_columns(
        Participant.id, literal(challenge_id), literal(reminder_id), literal(kind), key,
        Participant.phone, body,
        literal(MessageStatus.QUEUED, Message.status.type), literal(0), literal(utcnow())
    ).where(~select(Message.id).where(Message.key == key).exists())
    # preserve_rowcount: SQLAlchemy keeps an INSERT's row count only when asked (else -1 on PG)
    result = db.session.execute(insert(Message).from_select(
        ["participant_id", "challenge_id", "reminder_id", "kind", "key", "to", "body", "status",
         "attempts", "created_at"], rows).execution_options(preserve_rowcount=True))
    return result.rowcount


def queue_round_links(challenge: Challenge) -> int:
    """A link SMS for every player still in the game."""
    base = (select().select_from(Participant)
            .join(FormLink, and_(FormLink.participant_id == Participant.id,
                                 FormLink.challenge_id == challenge.id))
            .where(Participant.eliminated_in.is_(None)))
    if current_app.config["CHECKIN_REQUIRED"] and not db.session.scalar(
            select(func.count()).where(Challenge.number < challenge.number)):
        # round 1: only those at the venue
        base = base.where(Participant.checked_in_at.is_not(None))
    return _queue("round_link", str(challenge.id), base, _values(challenge),
                  _player_columns(FormLink.code), challenge_id=challenge.id)


def queue_results(challenge: Challenge, winner_id: int | None) -> int:
    """After a round: through / out to everyone who played it; the winner's message after the
    last."""
    columns, values = _player_columns(), _values(challenge)
    played = select().select_from(Participant).where(
        select(FormLink.id).where(FormLink.participant_id == Participant.id,
                                  FormLink.challenge_id == challenge.id).exists())
    last = challenge.is_last
    out = played.where(Participant.eliminated_in == challenge.number)
    total, scope = 0, str(challenge.id)
    # the shadow league invites all but the disqualified
    if current_app.config["SHADOW_LEAGUE"] and not last:
        invited = Participant.elimination_reason.is_distinct_from("disqualified")
        total += _queue("result_out_shadow", scope, out.where(invited), values, columns,
                        challenge_id=challenge.id)
        out = out.where(~invited)
    total += _queue("result_out", scope, out, values, columns, challenge_id=challenge.id)
    survivors = played.where(Participant.eliminated_in.is_(None))
    if winner_id is not None:
        total += _queue("winner", scope, survivors.where(Participant.id == winner_id), values,
                        columns, challenge_id=challenge.id)
        survivors = survivors.where(Participant.id != winner_id)
    # After the last round there is no next link: the finalists who didn't win get their final
    # results.
    kind = "final_result" if last else "result_through"
    total += _queue(kind, scope, survivors, values, columns, challenge_id=challenge.id)
    return total


def queue_reminder(reminder) -> int:
    """The reminder to everyone still in the game, each in their language's text."""
    base = select().select_from(Participant).where(Participant.eliminated_in.is_(None))
    return _queue("reminder", f"r{reminder.id}", base,
                  lambda language: _values(text=reminder.text_in(language)), _player_columns(),
                  reminder_id=reminder.id)


def send_confirmations(participant_ids: list[int]) -> int:
    """The confirmation SMS these players are owed, queued (one per player, ever) and handed over;
    they owe none any more. Returns how many were queued."""
    owed = Participant.id.in_(participant_ids) & Participant.confirmation_owed
    created = _queue("confirmation", "p", select().select_from(Participant).where(owed),
                     _values(), _player_columns())
    db.session.execute(update(Participant).where(owed).values(confirmation_owed=False)
                       .execution_options(synchronize_session=False))
    db.session.flush()
    hand_over(db.session.scalars(select(Message.id).where(
        Message.kind == "confirmation", Message.channel == "sms",
        Message.status == MessageStatus.QUEUED, Message.participant_id.in_(participant_ids))
        .order_by(Message.id)).all(), "confirmations")
    return created


def queued_ids(**where) -> list[int]:
    """The ids of queued SMS matching `where` (column=value), oldest first (emails are
    quiz/emails.py's)."""
    query = select(Message.id).where(Message.status == MessageStatus.QUEUED,
                                     Message.channel == "sms").order_by(Message.id)
    for column, value in where.items():
        query = query.where(getattr(Message, column) == value)
    return db.session.scalars(query).all()


def hand_over(message_ids: list[int], label: str) -> int:
    """Owe a send job per BATCH_SIZE messages, and note when (reconcile hands over again what a lost
    job forgot); the jobs are enqueued once this transaction commits. Link messages get jobs of
    their own in Queue.LINKS, which every worker takes first; emails go to Queue.EMAIL, taken
    last. Returns how many jobs."""
    kinds: dict[int, tuple[str, str]] = {}
    for start in range(0, len(message_ids), 1000):
        kinds.update((i, (kind, channel)) for i, kind, channel in db.session.execute(
            select(Message.id, Message.kind, Message.channel).where(
                Message.id.in_(message_ids[start:start + 1000]))))
    by_queue: dict[Queue, list[int]] = {Queue.LINKS: [], Queue.NOTIFY: [], Queue.EMAIL: []}
    for i in message_ids:
        kind, channel = kinds.get(i, ("", "sms"))
        queue = (Queue.EMAIL if channel == "email" else
                 Queue.LINKS if kind == LINK_KIND else Queue.NOTIFY)
        by_queue[queue].append(i)
    return sum(_owe_sends(ids, label, queue) for queue, ids in by_queue.items())


def _owe_sends(message_ids: list[int], label: str, queue: Queue) -> int:
    now, total = utcnow(), len(message_ids)
    task, what = (Task.SEND_EMAILS, "email") if queue is Queue.EMAIL else (Task.SEND_MESSAGES,
                                                                           "SMS")
    for start in range(0, total, BATCH_SIZE):
        batch = message_ids[start:start + BATCH_SIZE]
        db.session.execute(update(Message).where(Message.id.in_(batch)).values(enqueued_at=now)
                           .execution_options(synchronize_session=False))
        owe(Job(task, (batch,), queue=queue,
                description=f"{label}: {what} {start + 1}–{start + len(batch)} of {total}"))
    return -(-total // BATCH_SIZE)


def send_round_links(challenge: Challenge) -> tuple[int, int]:
    """The round's link messages queued (idempotent) and handed over; returns (created, send
    jobs)."""
    created = queue_round_links(challenge)
    db.session.flush()
    jobs = hand_over(queued_ids(challenge_id=challenge.id, kind="round_link"),
                     f"round {challenge.number} links")
    return created, jobs


def send_results(challenge: Challenge, winner_id: int | None) -> int:
    """The round's result messages queued and handed over; the round owes them no more."""
    created = queue_results(challenge, winner_id)
    db.session.flush()
    ids = db.session.scalars(select(Message.id).where(
        Message.challenge_id == challenge.id, Message.status == MessageStatus.QUEUED,
        Message.kind.in_(RESULT_KINDS)).order_by(Message.id)).all()
    hand_over(ids, f"round {challenge.number} results")
    challenge.results_due_at = None
    return created


def send_reminder(reminder) -> int:
    """The reminder's messages queued and handed over; it counts as sent."""
    created = queue_reminder(reminder)
    reminder.status = ReminderStatus.SENT
    db.session.flush()
    hand_over(queued_ids(reminder_id=reminder.id), f"reminder {reminder.id}")
    return created
