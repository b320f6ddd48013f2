"""Personalized forms in object storage: render them, keep each in the place the database says,
repair drift.

Every participant has one stored form per round, under one of three prefixes:
`forms/challenge<N>/<id>.html` until they answer or the round closes, then `answered/…`
(with their answers recorded) or `unanswered/…` (marked closed), read-only from then on.
The database decides the place (a submission → answered; a closed round → unanswered;
otherwise forms), so every step below is idempotent and `reconcile` can repair anything.
"""
import hashlib
import hmac
import logging
from collections import Counter
from dataclasses import dataclass

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import and_, select
from sqlalchemy.orm import joinedload

from .effects import Job, Task, owe
from .extensions import db
from .i18n import language_of
from .links import dealt_questions, report_url
from .models import Challenge, FormLink, Participant, RoundStatus, Submission
from .storage import get_storage

log = logging.getLogger(__name__)

PLACES = ("forms", "answered", "unanswered")
BATCH_SIZE = 100
# Replaced with the live countdown when Knockout serves a stored form itself.
TIMER_MARK = b"<!--knockout:timer-->"


def form_key(place: str, number: int, participant_id: int) -> str:
    return f"{place}/challenge{number}/{participant_id}.html"


def form_token(code: str) -> str:
    """The stored form's proof that it came from Knockout: a stored page has no session to carry a
    CSRF token."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"form:" + code.encode(), hashlib.sha256).hexdigest()[:32]


def form_token_ok(code: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(token, form_token(code))


def place_of(submitted: bool, status: RoundStatus) -> str:
    """Where the database says a form belongs."""
    if submitted:
        return "answered"
    return "unanswered" if status == RoundStatus.CLOSED else "forms"


@dataclass(frozen=True)
class Spot:
    """Where one participant's form of one round belongs: all reconcile needs to compare with
    storage."""

    participant_id: int
    challenge_id: int
    number: int
    place: str

    def key(self, place: str | None = None) -> str:
        return form_key(place or self.place, self.number, self.participant_id)

    def other_keys(self) -> list[str]:
        return [self.key(place) for place in PLACES if place != self.place]


@dataclass
class FormRow:
    """One stored form with what it is rendered from, and where the database says it belongs."""

    link: FormLink
    submission: Submission | None

    @property
    def spot(self) -> Spot:
        challenge = self.link.challenge
        return Spot(self.link.participant_id, challenge.id, challenge.number,
                    place_of(self.submission is not None, challenge.status))

    @property
    def place(self) -> str:
        return self.spot.place

    def key(self, place: str | None = None) -> str:
        return self.spot.key(place)

    def other_keys(self) -> list[str]:
        return self.spot.other_keys()


def spots(challenge_ids: list[int] | None = None) -> list[Spot]:
    """Every form's place, as plain tuples from one query (no names, questions or ORM objects)."""
    query = (select(FormLink.participant_id, Challenge.id, Challenge.number, Challenge.status,
                    Submission.id)
             .join(Challenge, Challenge.id == FormLink.challenge_id)
             .outerjoin(Submission, and_(Submission.participant_id == FormLink.participant_id,
                                         Submission.challenge_id == FormLink.challenge_id)))
    if challenge_ids is not None:
        query = query.where(FormLink.challenge_id.in_(challenge_ids))
    return [Spot(pid, cid, number, place_of(sid is not None, status))
            for pid, cid, number, status, sid in db.session.execute(query)]


def form_rows(participant_ids: list[int] | None = None,
              challenge_ids: list[int] | None = None) -> list[FormRow]:
    """The forms of these participants (all if None) in these rounds (all if None), with their
    submissions."""
    query = (select(FormLink, Submission)
             .outerjoin(Submission, and_(Submission.participant_id == FormLink.participant_id,
                                         Submission.challenge_id == FormLink.challenge_id))
             .options(joinedload(FormLink.participant),
                      joinedload(FormLink.challenge).selectinload(Challenge.questions))
             .order_by(FormLink.challenge_id, FormLink.participant_id))
    if participant_ids is not None:
        query = query.where(FormLink.participant_id.in_(participant_ids))
    if challenge_ids is not None:
        query = query.where(FormLink.challenge_id.in_(challenge_ids))
    return [FormRow(link, submission) for link, submission in db.session.execute(query).unique()]


def render_form(row: FormRow) -> bytes:
    """The stored page: the participant's questions and choices in their own order, with their own
    choice values (the live page's), never the answer key; in the participant's language."""
    with force_locale(language_of(row.link.participant)):
        return _render_form(row)


def _render_form(row: FormRow) -> bytes:
    link, challenge = row.link, row.link.challenge
    questions = dealt_questions(link)
    answered = None
    if row.submission is not None:
        answered = {int(qid): set(picked) for qid, picked in row.submission.answers.items()}
    base = current_app.config["PUBLIC_BASE_URL"]
    return render_template(
        "play/form.html", base_url=base, link=link, challenge=challenge,
        participant=link.participant, questions=questions, place=row.place,
        submission=row.submission, answered=answered, action=f"{base}/f/{link.code}/submit",
        token_name="form_token", token_value=form_token(link.code),
        report_url=report_url(link.participant.report_code)).encode()


def write_forms(rows: list[FormRow]) -> int:
    """Render each form afresh into its place (overwriting), and remove it from the other places."""
    store = get_storage()
    for row in rows:
        store.put(row.key(), render_form(row))
    store.delete_many([key for row in rows for key in row.other_keys()])
    return len(rows)


def move_forms(rows: list[FormRow]) -> Counter:
    """Move each form into its place: write-once, then delete the old copy. Safe to repeat or to
    crash halfway."""
    store, done = get_storage(), Counter()
    for row in rows:
        if row.place == "forms":  # nothing to move; make sure it is there
            if not store.exists(row.key()):
                store.put(row.key(), render_form(row))
                done["written"] += 1
            continue
        # The moved form records how the round ended for them: their answers, or that none came.
        done["moved" if store.put_once(row.key(), render_form(row)) else "already"] += 1
    store.delete_many([key for row in rows for key in row.other_keys()])
    return done


def file_unanswered(challenge_id: int) -> int:
    """After a round closed: owe batched jobs that move every form not answered to unanswered/."""
    number = db.session.scalar(select(Challenge.number).where(Challenge.id == challenge_id))
    ids = db.session.scalars(select(FormLink.participant_id).where(
        FormLink.challenge_id == challenge_id,
        ~select(Submission.id).where(Submission.challenge_id == challenge_id,
                                     Submission.participant_id == FormLink.participant_id).exists())
        .order_by(FormLink.participant_id)).all()
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start:start + BATCH_SIZE]
        owe(Job(Task.SETTLE_FORMS, (challenge_id, batch),
                description=f"round {number}: forms {start + 1}–{start + len(batch)} of {len(ids)} "
                            "to unanswered/"))
    return len(ids)


def regenerate(participant_ids: list[int] | None = None,
               challenge_ids: list[int] | None = None) -> int:
    """Render forms afresh into their places, a batch at a time (never all players loaded at
    once)."""
    ids = participant_ids if participant_ids is not None else \
        db.session.scalars(select(Participant.id).order_by(Participant.id)).all()
    done = 0
    for start in range(0, len(ids), BATCH_SIZE):
        done += write_forms(form_rows(ids[start:start + BATCH_SIZE], challenge_ids))
        db.session.expunge_all()
    return done


def repair_later(reason: str) -> None:
    """Owe a background repair of every round's stored forms."""
    owe(Job(Task.RECONCILE_FORMS, (), description=reason))


def regenerate_later(participant_id: int) -> None:
    """Owe a background render of one participant's forms, into their places."""
    owe(Job(Task.REGENERATE_FORMS, ([participant_id],),
            description=f"forms of participant {participant_id}"))


def round_numbers() -> dict[int, int]:
    return dict(db.session.execute(select(Challenge.number, Challenge.id)).all())


@dataclass
class Drift:
    """How storage differs from the database, per kind, with the keys concerned."""

    expected: Counter
    found: Counter
    missing: list[Spot]
    misplaced: list[Spot]
    duplicated: list[str]
    orphaned: list[str]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.misplaced or self.duplicated or self.orphaned)


def drift(challenge_ids: list[int] | None = None) -> Drift:
    """Compare storage with the database (storage is listed first, so a form written meanwhile is
    never orphaned)."""
    numbers = round_numbers()
    wanted = [n for n, cid in numbers.items() if challenge_ids is None or cid in challenge_ids]
    store = get_storage()
    listed = {key for place in PLACES for n in wanted
              for key in store.keys(f"{place}/challenge{n}/")}
    rows = spots(challenge_ids)
    expected_keys = {row.key() for row in rows}
    report = Drift(Counter(row.place for row in rows),
                   Counter(key.split("/", 1)[0] for key in listed), [], [], [], [])
    for row in rows:
        elsewhere = [key for key in row.other_keys() if key in listed]
        if row.key() in listed:
            report.duplicated.extend(elsewhere)
        elif elsewhere:
            report.misplaced.append(row)
        else:
            report.missing.append(row)
    placed = {key for row in rows for key in [row.key(), *row.other_keys()]}
    report.orphaned = sorted(listed - expected_keys - placed)
    return report


def reconcile(challenge_ids: list[int] | None = None) -> dict:
    """Repair every difference between storage and the database; safe to run during the event."""
    report = drift(challenge_ids)
    by_round: dict[int, list[int]] = {}
    for spot in report.missing + report.misplaced:  # only these are loaded whole, to be rendered
        by_round.setdefault(spot.challenge_id, []).append(spot.participant_id)
    for challenge_id, ids in by_round.items():
        for start in range(0, len(ids), BATCH_SIZE):
            move_forms(form_rows(ids[start:start + BATCH_SIZE], [challenge_id]))
    get_storage().delete_many(report.duplicated + report.orphaned)
    result = {"missing": len(report.missing), "misplaced": len(report.misplaced),
              "duplicated": len(report.duplicated), "orphaned": len(report.orphaned)}
    if any(result.values()):
        log.info("forms reconcile repaired %s", result)
    return result
