"""A participant's report: per round score, rank, percentile, time, and why they are out."""
from dataclasses import dataclass

from sqlalchemy import func, select

from .extensions import db
from .models import Challenge, FormLink, Participant, Submission
from .ranking import keep_size


@dataclass
class RoundReport:
    challenge: Challenge
    code: str
    submission: Submission | None
    ranked: int  # submitters ranked in the round
    cut: int  # places that stayed
    percentile: float | None
    verdict: str


def participant_report(participant: Participant) -> list[RoundReport]:
    """One row per round, in order, with a plain-words verdict."""
    links = db.session.execute(select(Challenge, FormLink.code).join(FormLink, FormLink.challenge_id == Challenge.id)
                               .where(FormLink.participant_id == participant.id).order_by(Challenge.number)).all()
    submissions = {s.challenge_id: s for s in db.session.scalars(
        select(Submission).where(Submission.participant_id == participant.id))}
    ranked_counts = dict(db.session.execute(select(Submission.challenge_id, func.count()).where(
        Submission.rank.is_not(None)).group_by(Submission.challenge_id)).all())
    from .rounds import is_last, winner
    champion = winner()
    rows = []
    for challenge, code in links:
        submission = submissions.get(challenge.id)
        ranked = ranked_counts.get(challenge.id, 0)
        cut = keep_size(ranked, challenge.keep_fraction, challenge.keep_count)
        percentile = None
        if submission and submission.rank and ranked:
            percentile = round(100 * (ranked - submission.rank) / ranked, 1)
        verdict = _verdict(participant, challenge, submission, ranked, cut)
        if champion is not None and champion.id == participant.id and is_last(challenge):
            verdict = "Winner! First place in the final."
        rows.append(RoundReport(challenge, code, submission, ranked, cut, percentile, verdict))
    return rows


def _verdict(participant, challenge, submission, ranked, cut) -> str:
    number = challenge.number
    if participant.eliminated_in is not None and participant.eliminated_in < number:
        return "Not played: knocked out earlier."
    if challenge.status != "closed":
        if submission:
            return "Answers in; results when the round ends."
        return "Open now." if challenge.status == "open" else "Not started yet."
    if participant.eliminated_in == number:
        if participant.elimination_reason == "unanswered":
            return "Out: no answers arrived before the round closed, and everyone who didn't answer is out."
        if participant.elimination_reason == "disqualified":
            return "Out: disqualified by the organizers."
        return (f"Out: ranked {submission.rank} of {ranked}; the top {cut} stayed "
                f"(score first, then response time).")
    return f"Through: ranked {submission.rank} of {ranked}; the top {cut} stayed." if submission else "Through."
