"""Personal data: one participant's export, and shredding after the event (anonymous results
stay)."""
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from .clock import utcnow
from .errors import QuizError
from .extensions import db
from .models import AuditEntry, Challenge, HelpRequest, Message, Participant, Submission
from .photos import shred_photos


def export_participant(participant: Participant) -> dict:
    """Everything Knockout holds about one person (a data-subject request), as plain JSON values."""
    submissions = db.session.execute(select(Submission, Challenge.number).join(Challenge)
                                     .where(Submission.participant_id == participant.id)
                                     .order_by(Challenge.number)).all()
    messages = db.session.scalars(select(Message).where(Message.participant_id == participant.id)
                                  .order_by(Message.id)).all()
    return {
        "participant": {"id": participant.id, "name": participant.name, "email": participant.email,
                        "phone": participant.phone, "company": participant.company,
                        "consent": participant.consent,
                        "sponsor_consent": participant.sponsor_consent,
                        "registered_at": participant.created_at.isoformat() + "Z",
                        "eliminated_in": participant.eliminated_in,
                        "elimination_reason": participant.elimination_reason},
        "submissions": [{"round": number, "answers": s.answers, "score": s.score, "rank": s.rank,
                         "response_time_seconds": s.response_time,
                         "submitted_at": s.submitted_at.isoformat() + "Z"}
                        for s, number in submissions],
        "messages": [{"kind": m.kind, "to": m.to, "body": m.body, "status": m.status,
                      "created_at": m.created_at.isoformat() + "Z"} for m in messages],
    }


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
    people = db.session.scalar(select(func.count()).where(~Participant.email.like("shredded-%")))
    pid = func.cast(Participant.id, db.String)
    db.session.execute(update(Participant).where(~Participant.email.like("shredded-%")).values(
        name="Player " + pid, email="shredded-" + pid + "@invalid", phone="shredded-" + pid,
        company="", report_code="shredded-" + pid).execution_options(synchronize_session=False))
    db.session.execute(update(Message).values(to="", body="")
                       .execution_options(synchronize_session=False))
    db.session.execute(update(HelpRequest).values(text="", reply="")
                       .execution_options(synchronize_session=False))
    shred_photos()  # the stored photos themselves, once this commits
    db.session.add(AuditEntry(actor="cli", action="shred personal data",
                              detail=f"{people} participant(s)"))
    return people
