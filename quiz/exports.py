"""Results as CSV files: participants, submissions, rounds, questions, eliminations, companies,
sponsor leads.

Every export is a header and a stream of rows from one query (companies: three), written with
the csv module; text cells that a spreadsheet would run as a formula are defused first.
"""
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from .clock import utcnow
from .extensions import db
from .models import Challenge, Participant, Question, Submission
from .ranking import keep_size
from .reveal import count_answers, revealable_ids

# OWASP "CSV injection": a cell starting with one of these is a formula (or a DDE call) in Excel,
# LibreOffice and Google Sheets; a leading apostrophe makes it plain text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 1000  # rows fetched per round trip; large exports stream in constant memory


def safe_cell(value) -> str | int | float:
    """The value as a spreadsheet should see it: text that could run as a formula gets a `'` in
    front."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@dataclass(frozen=True)
class Export:
    """One downloadable file: what it holds, its columns, and where its rows come from."""

    name: str
    description: str
    header: tuple[str, ...]
    rows: Callable[[], Iterable[tuple]]


def _stream(query) -> Iterator[tuple]:
    return iter(db.session.execute(query.execution_options(yield_per=BATCH)))


def participant_rows() -> Iterator[tuple]:
    """Everyone who registered, in order of registration."""
    return _stream(select(Participant.id, Participant.name, Participant.email, Participant.phone,
                          Participant.company, Participant.consent, Participant.sponsor_consent,
                          Participant.created_at,
                          case((Participant.eliminated_in.is_(None), "in"), else_="out"),
                          Participant.eliminated_in, Participant.elimination_reason,
                          Participant.checked_in_at)
                   .order_by(Participant.id))


def submission_rows() -> Iterator[tuple]:
    """One row per submission, i.e. per participant per round they answered; rank is empty until
    it closes."""
    return _stream(select(Challenge.number, Participant.id, Participant.name, Participant.company,
                          Submission.score, Submission.correct, Submission.response_time,
                          Submission.rank, Submission.submitted_at)
                   .join(Participant, Participant.id == Submission.participant_id)
                   .join(Challenge, Challenge.id == Submission.challenge_id)
                   # the shadow league is not the round's result
                   .where(Submission.shadow.is_(False))
                   .order_by(Challenge.number, Submission.rank.is_(None), Submission.rank,
                             Submission.id))


def round_rows() -> Iterator[tuple]:
    """One row per round; kept and out are filled in once it has closed."""
    submitted = dict(db.session.execute(select(Submission.challenge_id, func.count())
                                        .where(Submission.shadow.is_(False))
                                        .group_by(Submission.challenge_id)).all())
    out = {}
    for number, reason, count in db.session.execute(select(
            Participant.eliminated_in, Participant.elimination_reason, func.count())
            .where(Participant.eliminated_in.is_not(None)).group_by(Participant.eliminated_in,
                                                                    Participant.elimination_reason)):
        out.setdefault(number, {})[reason] = count
    kept = dict(db.session.execute(
        select(Submission.challenge_id, func.count())
        .join(Participant, Participant.id == Submission.participant_id)
        .join(Challenge, Challenge.id == Submission.challenge_id)
        .where((Participant.eliminated_in.is_(None))
               | (Participant.eliminated_in > Challenge.number))
        .group_by(Submission.challenge_id)).all())
    for c in db.session.scalars(select(Challenge).order_by(Challenge.number)):
        closed, reasons = c.is_closed, out.get(c.number, {})
        yield (c.number, c.title, c.scoring, c.status, c.opened_at, c.closed_at,
               submitted.get(c.id, 0), kept.get(c.id, 0) if closed else None,
               sum(reasons.values()) if closed else None,
               *((reasons.get(r, 0) if closed else None)
                 for r in ("unanswered", "ranked_out", "disqualified")))


def question_rows() -> Iterator[tuple]:
    """Per question of each final round (quiz/reveal.py), a row per choice: how many answered the
    question, the share right, and how often the choice was picked. Time is measured per round
    (the submissions export), not per question."""
    final = revealable_ids(utcnow())
    questions = db.session.execute(
        select(Question, Challenge.number).join(Challenge)
        .where(Challenge.id.in_(final), Question.kind == "choice")
        .order_by(Challenge.number, Question.position)).all()
    number = {q.id: n for q, n in questions}
    for tally in count_answers([q for q, _ in questions]):
        q = tally.question
        for choice in tally.choices:
            yield (number[q.id], q.position, q.text, tally.answered, tally.right,
                   tally.right_percent, choice.text, choice.right, choice.count, choice.percent)


def elimination_rows() -> Iterator[tuple]:
    """Who is out, in which round, why; their rank there and the cut line (the top N that
    stayed)."""
    query = (select(Participant.eliminated_in, Participant.id, Participant.name,
                    Participant.company, Participant.elimination_reason, Submission.rank, Challenge)
             .join(Challenge, Challenge.number == Participant.eliminated_in)
             .outerjoin(Submission, (Submission.participant_id == Participant.id)
                        & (Submission.challenge_id == Challenge.id))
             .order_by(Participant.eliminated_in, Submission.rank.is_(None), Submission.rank,
                       Participant.id))
    for number, pid, name, company, reason, rank, challenge in _stream(query):
        count = challenge.ranked_count or 0  # set when the round closes
        cut = (keep_size(count, challenge.keep_fraction, challenge.keep_count)
               if challenge.is_closed else None)
        yield number, pid, name, company, reason, rank, count if cut is not None else None, cut


def company_rows() -> Iterator[tuple]:
    """The company leaderboard (see COMPANY_DOC): still in, then furthest round, best rank there,
    average score."""
    still_in = func.sum(case((Participant.eliminated_in.is_(None), 1), else_=0))
    people = db.session.execute(select(Participant.company, func.count(), still_in)
                                .group_by(Participant.company)).all()
    scores = {company: (count, average) for company, count, average in db.session.execute(
        select(Participant.company, func.count(Submission.id), func.avg(Submission.score))
        .join(Submission, Submission.participant_id == Participant.id)
        .group_by(Participant.company))}
    furthest: dict[str, tuple[int, int | None]] = {}
    for company, number, best in db.session.execute(
            select(Participant.company, Challenge.number, func.min(Submission.rank))
            .join(Submission, Submission.participant_id == Participant.id)
            .join(Challenge, Challenge.id == Submission.challenge_id)
            .group_by(Participant.company, Challenge.number)):
        if company not in furthest or number > furthest[company][0]:
            furthest[company] = (number, best)
    table = []
    for company, players, in_game in people:
        count, average = scores.get(company, (0, None))
        number, best = furthest.get(company, (None, None))
        table.append((company, players, int(in_game or 0), number, best,
                      round(float(average), 2) if average is not None else None, count))
    table.sort(key=lambda r: (-r[2], -(r[3] or 0), r[4] is None, r[4] or 0, -(r[5] or 0), r[0]))
    return ((place, *row) for place, row in enumerate(table, start=1))


def sponsor_rows() -> Iterator[tuple]:
    """Leads for sponsors: only participants who ticked the optional "sponsors may contact me"
    box."""
    return _stream(select(Participant.name, Participant.email, Participant.phone,
                          Participant.company, Participant.created_at)
                   .where(Participant.sponsor_consent.is_(True)).order_by(Participant.id))


COMPANY_DOC = ("Per company (as typed at registration; empty = none given): players registered, "
               "still in the game, the furthest round any of its players answered, the best rank "
               "among them in that round (empty until it closes), and the average score over all "
               "its players' submissions in all rounds. Ordered by still in, then furthest round, "
               "then best rank, then average score.")

EXPORTS = {e.name: e for e in (
    Export("participants", "Everyone who registered, with their status.",
           ("id", "name", "email", "phone", "company", "consent", "sponsor_consent",
            "registered_at", "status", "eliminated_in_round",
            "elimination_reason", "checked_in_at"), participant_rows),
    Export("submissions",
           "One row per participant per round they answered: score, right answers, time, rank.",
           ("round", "participant_id", "name", "company", "score", "correct",
            "response_time_seconds", "rank", "submitted_at"), submission_rows),
    Export("rounds",
           "Each round: status, times, how many answered, stayed and went out (by reason).",
           ("round", "title", "scoring", "status", "opened_at", "closed_at", "submitted", "kept",
            "out", "out_unanswered", "out_ranked_out", "out_disqualified"), round_rows),
    Export("questions",
           "Per question of each round whose answers are out: how many answered it, the share "
           "right, and a row per choice with how often it was picked (% of those who answered "
           "it; a pool asks each player only some questions).",
           ("round", "position", "question", "answered", "right", "right_percent", "choice",
            "right_answer", "picked", "picked_percent"), question_rows),
    Export("eliminations",
           "Who went out, in which round and why; their rank and the cut line (the top N stayed).",
           ("round", "participant_id", "name", "company", "reason", "rank", "ranked", "cut_line"),
           elimination_rows),
    Export("companies", COMPANY_DOC,
           ("place", "company", "players", "still_in", "furthest_round",
            "best_rank_in_furthest_round", "average_score", "submissions"), company_rows),
    Export("sponsor-leads", "Contact details of participants who ticked "
                            "\u201cThe event's sponsors may contact me\u201d "
                            "(optional) at registration, and no one else.",
           ("name", "email", "phone", "company", "registered_at"), sponsor_rows),
)}


def csv_lines(export: Export) -> Iterator[str]:
    """The export as CSV text, one line (or a few, for a quoted newline) at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for row in _chain([export.header], export.rows()):
        writer.writerow([safe_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _chain(first, rest):
    yield from first
    yield from rest


def filename(name: str, event: str, now: datetime | None = None) -> str:
    """`<event>-<export>-<date>.csv`, safe in any file system and header."""
    slug = re.sub(r"[^a-z0-9]+", "-", event.lower()).strip("-") or "knockout"
    return f"{slug}-{name}-{(now or utcnow()):%Y-%m-%d}.csv"



def write_csv(name: str, out) -> None:
    """Write export `name` to the open text file `out` (opened with newline="")."""
    out.writelines(csv_lines(EXPORTS[name]))
