"""RQ jobs: thin. Each takes ids, re-fetches, calls the domain, and commits once at its end; what
the domain owes (the next jobs, a live "changed") goes out after that commit, through
quiz/effects.py. Every job is safe to run twice: RQ re-queues the work of a worker that died. The
names here are effects.Task's values."""
import logging

from rq import get_current_job

from . import delivery, emails, notify, rounds, stored_forms, undo
from .clock import utcnow
from .dispatcher import drain
from .effects import Drain
from .extensions import db
from .models import Challenge, Reminder

log = logging.getLogger(__name__)


def send_round_links(challenge_id: int) -> int:
    """Queue a link SMS for every player still in the round, then owe their batched send jobs."""
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None or challenge.is_draft:
        return 0
    created, jobs = notify.send_round_links(challenge)
    db.session.commit()
    log.info("round %s: %s link messages queued in %s batches", challenge.number, created, jobs)
    return created


def send_results(challenge_id: int, winner_id: int | None) -> int:
    """RESULTS_DELAY_SECONDS after a round closed: 'through' / 'out' (and 'winner') messages,
    unless already queued or the round was reopened."""
    challenge = undo.results_due(challenge_id, utcnow())
    if challenge is None:
        db.session.commit()
        return 0
    created = notify.send_results(challenge, winner_id)
    emails.send_final_results(challenge)  # after the last round: the final results by email
    db.session.commit()
    log.info("round %s: %s result messages queued", challenge.number, created)
    return created


def send_messages(message_ids: list[int]) -> tuple[int, int]:
    """Send one batch of queued SMS (each recorded as it leaves); transient failures come back
    later."""
    job = get_current_job()
    worker = job.worker_name if job and job.worker_name else "inline"
    sent, failed, retry = delivery.send_messages(message_ids, worker=worker)
    if retry:
        delivery.retry_later(retry)
    db.session.commit()
    log.info("SMS batch: %s sent, %s failed, %s to retry", sent, failed, len(retry))
    return sent, failed


def send_emails(message_ids: list[int]) -> tuple[int, int]:
    """Send one batch of queued emails: the same as SMS, in the email queue (after the links)."""
    return send_messages(message_ids)


def send_reminder(reminder_id: int) -> int:
    """At its time: the reminder to everyone still in the game (unless cancelled or sent)."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or not reminder.is_scheduled:
        return 0
    created = notify.send_reminder(reminder)
    db.session.commit()
    return created


def close_expired_round(challenge_id: int) -> bool:
    """Close a timed round once every invited player's time is used up (or at its latest close);
    otherwise owe this job again for when it could be. A no-op if the organizer already closed
    it."""
    summary = rounds.close_if_due(challenge_id, utcnow())
    db.session.commit()
    if summary is not None:
        log.info("round %s closed by its time: %s", summary.number, summary)
    return summary is not None


def drain_pending(drain_kind: str, round_id: int | None) -> int:
    """Do what requests left pending, a batch at a time (each batch is committed before it leaves
    the set): store new players' forms, move answered forms, text late joiners their round's
    link, or send new players their confirmation (SMS and email)."""
    kind = Drain(drain_kind)
    if kind is Drain.NEW_FORMS:
        def handle(ids):
            stored_forms.write_forms(stored_forms.form_rows(participant_ids=ids))
    elif kind is Drain.EMAIL_CONFIRMATIONS:
        def handle(ids):
            emails.hand_over_confirmations(ids)
    elif kind is Drain.ANSWERED_FORMS:
        def handle(ids):
            stored_forms.move_forms(stored_forms.form_rows(ids, [round_id]))
    elif kind is Drain.CONFIRMATIONS:
        handle = notify.send_confirmations
    else:
        def handle(ids):  # everyone in without a link message gets theirs, these players included
            challenge = db.session.get(Challenge, round_id)
            if challenge is not None and not challenge.is_draft:
                notify.send_round_links(challenge)
    done = drain(kind, round_id, handle)
    log.info("pending %s: %s participant(s) done", kind, done)
    if kind is Drain.ANSWERED_FORMS and done:
        # Submissions came in: if that was everyone's, the round closes now, not at its plan.
        summary = rounds.close_if_due(round_id, utcnow(), recheck=False)
        db.session.commit()
        if summary is not None:
            log.info("round %s closed: every invited player's time is used up", summary.number)
    return done


def file_unanswered_forms(challenge_id: int) -> int:
    """After a round closed: owe batched jobs that move every form not answered to unanswered/."""
    moved = stored_forms.file_unanswered(challenge_id)
    db.session.commit()
    return moved


def settle_forms(challenge_id: int, participant_ids: list[int]) -> dict:
    """Move these participants' forms of a round to where the database says they belong."""
    return dict(stored_forms.move_forms(stored_forms.form_rows(participant_ids, [challenge_id])))


def regenerate_forms(participant_ids: list[int] | None = None,
                     challenge_ids: list[int] | None = None) -> int:
    """Render forms afresh (new questions, a fixed typo, shredded names) into their places."""
    return stored_forms.regenerate(participant_ids, challenge_ids)


def reconcile_forms(challenge_ids: list[int] | None = None) -> dict:
    """Compare storage with the database and repair every difference."""
    return stored_forms.reconcile(challenge_ids)

