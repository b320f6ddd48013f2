"""Personal data: one participant's export, and shredding after the event (anonymous results
stay)."""
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from .clock import utcnow
from .errors import QuizError
from .extensions import db
from .models import (AuditEntry, Challenge, HelpRequest, Message, Participant, PhotoAnswer,
                     Question, Submission)
from .photos import shred_photos

# Audit entries that named a player before entries said which player (AuditEntry.participant_id):
# a shred blanks their detail.
NAMING_ACTIONS = ("disqualify", "resend link", "regenerate forms", "answer help request",
                  "accept photo", "reject photo")


def export_participant(participant: Participant) -> dict:
    """Everything Knockout holds about one person (a data-subject request), as plain JSON values."""
    submissions = db.session.execute(select(Submission, Challenge.number).join(Challenge)
                                     .where(Submission.participant_id == participant.id)
                                     .order_by(Challenge.number)).all()
    messages = db.session.scalars(select(Message).where(Message.participant_id == participant.id)
                                  .order_by(Message.id)).all()
    return {
        **_about(participant),
        "submissions": [{"round": number, "answers": s.answers, "score": s.score, "rank": s.rank,
                         "response_time_seconds": s.response_time,
                         "submitted_at": _iso(s.submitted_at)}
                        for s, number in submissions],
        "messages": [{"kind": m.kind, "channel": m.channel, "to": m.to, "subject": m.subject,
                      "body": m.body, "status": m.status, "created_at": _iso(m.created_at)}
                     for m in messages],
        **_sent(participant),
    }


def _about(participant: Participant) -> dict:
    """Who they are, and what staff noted about them (check-in, the audit log)."""
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.participant_id == participant.id)
                               .order_by(AuditEntry.id)).all()
    return {
        "participant": {"id": participant.id, "name": participant.name, "email": participant.email,
                        "phone": participant.phone, "company": participant.company,
                        "consent": participant.consent,
                        "sponsor_consent": participant.sponsor_consent,
                        "email_opted_out_at": _iso(participant.email_opted_out_at),
                        "registered_at": _iso(participant.created_at),
                        "checked_in_at": _iso(participant.checked_in_at),
                        "eliminated_in": participant.eliminated_in,
                        "elimination_reason": participant.elimination_reason},
        "audit_log": [{"at": _iso(a.at), "by": a.actor, "action": a.action, "detail": a.detail}
                      for a in audit],
    }


def _sent(participant: Participant) -> dict:
    """What they sent besides answers: help requests (with staff's replies) and photos."""
    help_requests = db.session.scalars(select(HelpRequest).where(
        HelpRequest.participant_id == participant.id).order_by(HelpRequest.id)).all()
    photos = db.session.execute(select(PhotoAnswer, Challenge.number, Question.position)
                                .join(Challenge, Challenge.id == PhotoAnswer.challenge_id)
                                .join(Question, Question.id == PhotoAnswer.question_id)
                                .where(PhotoAnswer.participant_id == participant.id)
                                .order_by(PhotoAnswer.id)).all()
    return {
        "help_requests": [{"kind": h.kind, "text": h.text, "status": h.status,
                           "created_at": _iso(h.created_at), "reply": h.reply,
                           "resolved_by": h.resolved_by, "resolved_at": _iso(h.resolved_at)}
                          for h in help_requests],
        "photos": [{"round": number, "question": position, "key": p.key, "status": p.status,
                    "sent_at": _iso(p.created_at), "reviewed_by": p.reviewed_by,
                    "reviewed_at": _iso(p.reviewed_at)} for p, number, position in photos],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def event_ended_at() -> datetime | None:
    """When the last round closed (None while any round is still to play)."""
    if db.session.scalar(select(func.count()).where(~Challenge.is_closed)):
        return None
    return db.session.scalar(select(func.max(Challenge.closed_at)))


def shred_personal_data(retention_days: float, now: datetime | None = None,
                        force: bool = False) -> int:
    """Replace names, emails, phones and companies with placeholders, and blank SMS and help desk
    texts.

    Scores, ranks and times stay, so results and statistics remain. Refuses while the event runs,
    or before RETENTION_DAYS have passed since it ended, unless forced. Returns people shredded.
    """
    ended = event_ended_at()
    now = now or utcnow()
    if not force:
        if ended is None:
            raise QuizError("The event is not over yet (a round is still to play). "
                            "Use --force to shred anyway.", code="event_running")
        if now < ended + timedelta(days=retention_days):
            keep_until = ended + timedelta(days=retention_days)
            raise QuizError(f"Personal data is kept until {keep_until:%Y-%m-%d %H:%M} UTC "
                            f"(RETENTION_DAYS={retention_days:g}). Use --force to shred now.",
                            code="retained")
    people = db.session.scalar(select(func.count()).where(Participant.shredded_at.is_(None)))
    shred_audit_log()  # first: it looks up the names the next statement replaces
    pid = func.cast(Participant.id, db.String)
    db.session.execute(update(Participant).where(Participant.shredded_at.is_(None)).values(
        name="Player " + pid, email="shredded-" + pid + "@invalid", phone="shredded-" + pid,
        company="", report_code="shredded-" + pid, shredded_at=now)
        .execution_options(synchronize_session=False))
    db.session.execute(update(Message).values(to="", body="", subject=None, html=None)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(HelpRequest).values(text="", reply="")
                       .execution_options(synchronize_session=False))
    shred_photos()  # the stored photos themselves, once this commits
    db.session.add(AuditEntry(actor="cli", action="shred personal data",
                              detail=f"{people} participant(s)"))
    return people


def shred_audit_log() -> None:
    """A player's name, email and phone out of every audit entry about them ("Player <id>" instead);
    older entries that named a player without saying which lose their detail."""
    about = db.session.execute(select(AuditEntry, Participant)
                               .join(Participant, Participant.id == AuditEntry.participant_id)
                               .where(Participant.shredded_at.is_(None))).all()
    for entry, participant in about:
        for personal in {participant.name, participant.email, participant.phone} - {""}:
            entry.detail = entry.detail.replace(personal, f"Player {participant.id}")
    db.session.execute(update(AuditEntry).where(AuditEntry.participant_id.is_(None),
                                                AuditEntry.action.in_(NAMING_ACTIONS))
                       .values(detail="(shredded)").execution_options(synchronize_session=False))
