"""Email: who gets which email, queued as Message rows (channel "email") and sent like SMS by
quiz/delivery.py, each at most once; the unsubscribe link every email carries.

- the registration confirmation, with the player's results page (/r/<code>) and their check-in
  QR code;
- a fallback when a player's round-link SMS failed for good: their round link by email, or, when
  LINKS_IN_REGISTRATION is off (an email address is no proof of a phone), a word to ask at the
  help desk;
- the final results, once the last round's results go out.

A player who unsubscribed (/u/<token>) gets none of them, even one queued before they did.
"""
import functools
import io
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import String, cast, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from . import email_templates
from .clock import utcnow
from .effects import Drain, Job, Pending, Task, owe
from .errors import QuizError, ValidationError
from .extensions import db
from .i18n import enabled, language_of
from .links import link_url, report_url
from .mail import QR_CID, Email
from .models import Challenge, FormLink, Message, MessageStatus, Participant
from .sms import SendError

CHUNK = 500  # players rendered and inserted at a time for the final results
BATCH = 100  # emails a send job takes


# --- unsubscribing ------------------------------------------------------------------------------

def _signer() -> URLSafeSerializer:
    return _signer_for(current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=4)
def _signer_for(secret: str) -> URLSafeSerializer:
    """Built once per key: a registration batch signs every new player's unsubscribe link, and
    building the serializer cost more than signing."""
    return URLSafeSerializer(secret, salt="knockout-unsubscribe")


def unsubscribe_url(participant_id: int) -> str:
    """The player's signed unsubscribe link (it never expires: an old email's link still works)."""
    token = _signer().dumps(participant_id)
    return f"{current_app.config['PUBLIC_BASE_URL']}/u/{token}"


def participant_for(token: str) -> Participant:
    """The player an unsubscribe token names, or a 404 QuizError saying what went wrong."""
    try:
        participant_id = _signer().loads(token)
    except BadSignature:
        participant_id = None
    participant = (db.session.get(Participant, participant_id)
                   if isinstance(participant_id, int) else None)
    if participant is None:
        raise QuizError("This unsubscribe link isn't valid: copy the whole link from the email, "
                        "or ask the help desk.", code="bad_unsubscribe_link", status=404)
    return participant


def opt_out(participant: Participant, now: datetime) -> bool:
    """Record that the player wants no more emails; False if they already had (the caller
    commits)."""
    if participant.email_opted_out_at is not None:
        return False
    participant.email_opted_out_at = now
    return True


def reachable(participant: Participant | None) -> bool:
    """May this player be emailed: agreed to messages, not unsubscribed, data not shredded."""
    return bool(participant is not None and participant.consent
                and participant.email_opted_out_at is None and participant.shredded_at is None)


# --- queueing -----------------------------------------------------------------------------------

def hand_over(message_ids: list[int], label: str) -> int:
    """Owe a send job per BATCH (100) emails, in the email queue (workers take it after the SMS),
    and note when (reconcile hands over again what a lost job forgot). Returns how many jobs."""
    now, total = utcnow(), len(message_ids)
    for start in range(0, total, BATCH):
        batch = message_ids[start:start + BATCH]
        db.session.execute(update(Message).where(Message.id.in_(batch)).values(enqueued_at=now)
                           .execution_options(synchronize_session=False))
        owe(Job(Task.SEND_EMAILS, (batch,),
                description=f"{label}: email {start + 1}–{start + len(batch)} of {total}"))
    return -(-total // BATCH)


def _values(participant: Participant, **extra) -> dict:
    return {"event": current_app.config["EVENT_NAME"], "name": participant.name,
            "report": report_url(participant.report_code),
            "unsubscribe": unsubscribe_url(participant.id), **extra}


def _row(kind: str, key: str, participant: Participant, values: dict,
         challenge_id: int | None = None, words=None) -> dict:
    """One email row, in the participant's language (`words`: that language's wording, if the
    caller has it)."""
    email = email_templates.render(kind, values, words, language_of(participant))
    return {"participant_id": participant.id, "challenge_id": challenge_id, "kind": kind,
            "key": key, "channel": "email", "to": participant.email, "subject": email.subject,
            "body": email.text, "html": email.html, "status": MessageStatus.QUEUED,
            "attempts": 0, "created_at": utcnow()}


def _add(row: dict) -> int | None:
    """Insert one email unless its key is taken (another worker's, a retried job's); its id."""
    if db.session.scalar(select(Message.id).where(Message.key == row["key"])) is not None:
        return None
    try:
        with db.session.begin_nested():
            message = Message(**row)
            db.session.add(message)
        return message.id
    except IntegrityError:  # queued by someone else a moment ago
        return None


_INSERT_MESSAGES = insert(Message).returning(Message.id)  # RETURNING: one multi-row INSERT


def queue_confirmations(joined: list[tuple[int, dict, str]]) -> None:
    """New players' confirmation emails, in the registration's transaction, from (participant id,
    clean values, report code): one INSERT (no read, no job of its own: the players join a pending
    set whose one drain job hands every confirmation waiting to send jobs)."""
    if not joined:
        return
    now, rows, words = utcnow(), [], {}
    for participant_id, clean, report_code in joined:
        values = {"event": current_app.config["EVENT_NAME"], "name": clean["name"],
                  "report": report_url(report_code),
                  "unsubscribe": unsubscribe_url(participant_id), "qr": f"cid:{QR_CID}"}
        # in the language they joined in (registration stores it with the row)
        language = language_of(_Joining(clean.get("language")))
        if language not in words:
            words[language] = email_templates.wording("confirmation", language)
        email = email_templates.render("confirmation", values, words[language])
        rows.append(dict(participant_id=participant_id, kind="confirmation", channel="email",
                         key=f"email:confirmation:{participant_id}", to=clean["email"],
                         subject=email.subject, body=email.text, html=email.html,
                         status=MessageStatus.QUEUED, attempts=0, created_at=now))
    db.session.connection().execute(_INSERT_MESSAGES, rows)
    owe(Pending(Drain.EMAIL_CONFIRMATIONS, tuple(i for i, _, _ in joined)))


@dataclass(frozen=True)
class _Joining:
    """A player not stored yet, as far as i18n.language_of is concerned."""

    language: str | None


def hand_over_confirmations(participant_ids: list[int]) -> int:
    """From the drain job: these new players' queued confirmations to send jobs."""
    ids = db.session.scalars(select(Message.id).where(
        Message.participant_id.in_(participant_ids), Message.kind == "confirmation",
        Message.channel == "email", Message.status == MessageStatus.QUEUED)
        .order_by(Message.id)).all()
    return hand_over(ids, "confirmation emails")


def _fallback_key(challenge_id, participant_id) -> str:
    return f"email:fallback:{challenge_id}:{participant_id}"


def link_fallback(challenge_id: int, participant_id: int) -> int | None:
    """A player's round-link SMS failed for good: the link by email (or, with
    LINKS_IN_REGISTRATION off, a word to ask at the help desk). Once per player and round."""
    participant = db.session.get(Participant, participant_id)
    challenge = db.session.get(Challenge, challenge_id)
    if not reachable(participant) or challenge is None:
        return None
    values = _values(participant, number=challenge.number, title=challenge.title)
    kind = "link_fallback_desk"
    if current_app.config["LINKS_IN_REGISTRATION"]:
        code = db.session.scalar(select(FormLink.code).where(
            FormLink.participant_id == participant_id, FormLink.challenge_id == challenge_id))
        if code is not None:
            kind, values["link"] = "link_fallback", link_url(code)
    message_id = _add(_row(kind, _fallback_key(challenge_id, participant_id), participant, values,
                           challenge_id=challenge_id))
    if message_id is not None:
        hand_over([message_id], f"round {challenge.number} link by email")
    return message_id


def missing_fallbacks() -> int:
    """For reconcile: round-link SMS failed for good whose fallback email was never queued (the
    worker died between the two); queued now. Returns how many."""
    key = (literal("email:fallback:") + cast(Message.challenge_id, String) + literal(":")
           + cast(Message.participant_id, String))
    fallback = Message.__table__.alias("fallback")
    rows = db.session.execute(
        select(Message.challenge_id, Message.participant_id)
        .join(Participant, Participant.id == Message.participant_id)
        .outerjoin(fallback, fallback.c.key == key)
        .where(Message.channel == "sms", Message.kind == "round_link",
               Message.status == MessageStatus.FAILED, fallback.c.id.is_(None),
               Participant.consent.is_(True), Participant.email_opted_out_at.is_(None),
               Participant.shredded_at.is_(None))).all()
    return sum(link_fallback(c, p) is not None for c, p in rows)


def send_final_results(challenge: Challenge) -> int:
    """After the last round's results: every player who may be emailed gets the final results
    email (once: safe to run again). Returns how many were queued."""
    if not challenge.is_last:
        return 0
    words = {language: email_templates.wording("results", language) for language in enabled()}
    created, after = [], 0
    while True:
        players = db.session.scalars(select(Participant).where(
            Participant.id > after, Participant.consent.is_(True),
            Participant.email_opted_out_at.is_(None), Participant.shredded_at.is_(None))
            .order_by(Participant.id).limit(CHUNK)).all()
        if not players:
            break
        after = players[-1].id
        keys = {p.id: f"email:results:{p.id}" for p in players}
        taken = set(db.session.scalars(select(Message.key).where(
            Message.key.in_(keys.values()))).all())
        rows = [_row("results", keys[p.id], p, _values(p), challenge.id, words[language_of(p)])
                for p in players if keys[p.id] not in taken]
        if not rows:
            continue
        try:  # the chunk in one statement
            with db.session.begin_nested():
                created += db.session.scalars(insert(Message).returning(Message.id), rows).all()
        except IntegrityError:  # another run queued some a moment ago: one at a time
            created += [i for i in map(_add, rows) if i is not None]
    hand_over(created, "final results emails")
    return len(created)


def send_sample(kind: str, address: str, language: str | None = None) -> Message:
    """A test email: `kind`'s current wording in `language` with sample values, to any address
    (e.g. one's own), through the configured backend, before the event sends it to everyone."""
    from email_validator import EmailNotValidError, validate_email  # the console's test only
    errors = {}
    if kind not in email_templates.DEFAULTS:
        errors["kind"] = "Pick one of the emails listed."
    try:
        language = email_templates.check_language(language)
    except QuizError as error:
        errors["language"] = error.message
    try:
        address = validate_email(str(address or "").strip()[:254],
                                 check_deliverability=False).normalized
    except EmailNotValidError as error:
        errors["to"] = "Please enter an email address." if not str(address).strip() else str(error)
    if errors:
        raise ValidationError(errors, next(iter(errors.values())))
    email = email_templates.render(kind, email_templates.sample(language), language=language)
    message = Message(kind="test", channel="email", key=f"email:test:{secrets.token_hex(8)}",
                      to=address, subject=email.subject, body=email.text, html=email.html,
                      status=MessageStatus.QUEUED, attempts=0)
    db.session.add(message)
    db.session.flush()
    hand_over([message.id], f"test email ({kind}, {language})")
    return message


# --- sending ------------------------------------------------------------------------------------

def qr_png(url: str) -> bytes:
    import segno  # the worker's, when it sends a confirmation: a web process never needs it
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=6, border=2)
    return out.getvalue()


def outgoing(message: Message) -> Email:
    """What leaves for one email row; SendError (permanent) for a player who unsubscribed since it
    was queued."""
    # not flushed here: a batch's rows marked sent are written at its commit, so SQLite's write
    # lock isn't held while the rest of the batch renders (web processes' writes wait for it)
    with db.session.no_autoflush:
        participant = (db.session.get(Participant, message.participant_id)
                       if message.participant_id is not None else None)
    if participant is not None and not reachable(participant):
        raise SendError("not sent: the player unsubscribed from emails", permanent=True)
    # The badge's check-in code, as on their page: what the desk scans (a key for staff, never a
    # credential).
    qr = qr_png(participant.checkin_code) if (
        participant is not None and message.kind == "confirmation") else None
    return Email(to=message.to, subject=message.subject or "", text=message.body,
                 html=message.html, qr_png=qr,
                 unsubscribe=unsubscribe_url(participant.id) if participant else None)
