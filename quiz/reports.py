"""A participant's report: per round score, rank, percentile, time, and why they are out.

A handful of queries whatever the number of players or rounds: the rounds in one (each keeps
its ranked count and cut line from its close), and the player's submissions in one.

A round's results show once it has closed: until then a row says only that the answers are in (a
score seen while the round is open would tell a player with a few throwaway registrations which
answer is right).
"""
import hashlib
from dataclasses import dataclass

from flask import current_app
from flask_babel import format_decimal, gettext
from sqlalchemy import func, select

from .clock import utcnow
from .extensions import db
from .helpdesk import help_version
from .models import Challenge, FormLink, Participant, RoundStatus, Submission
from .ranking import keep_size
from .reveal import revealable_ids
from .rounds import winner
from .shadow import in_shadow_league


@dataclass
class RoundReport:
    challenge: Challenge
    code: str
    submission: Submission | None  # the result: only once the round has closed
    ranked: int  # submitters ranked in the round
    cut: int  # places that stayed
    percentile: float | None  # share of the ranked players this one finished ahead of
    verdict: str
    rule: str = ""  # the keep rule, in words
    cut_line: tuple | None = None  # (score, response time) of the last place that stayed
    answered: bool = False  # answers in, closed or not

    @property
    def top_percent(self) -> float | None:
        """'Top 10%' for rank 1 of 10."""
        if not (self.submission and self.submission.rank and self.ranked):
            return None
        return round(100 * self.submission.rank / self.ranked, 1)


def share_behind(rank: int, ranked: int) -> float:
    """The share of ranked players finishing behind `rank` (rank 1 of 10 → 90.0)."""
    return round(100 * (ranked - rank) / ranked, 1)


def keep_rule(challenge: Challenge, ranked: int) -> str:
    """The round's keep rule and what it came to, in words."""
    cut = keep_size(ranked, challenge.keep_fraction, challenge.keep_count)
    if challenge.keep_count is not None:
        return gettext("this round kept a fixed %(count)s (keep_count), so the top %(cut)s of "
                       "%(ranked)s stayed", count=challenge.keep_count, cut=cut, ranked=ranked)
    fraction = format_decimal(challenge.keep_fraction, "0.####")
    return gettext("this round kept the top %(share)s%% (keep_fraction %(fraction)s): "
                   "⌈%(ranked)s × %(fraction)s⌉ = %(cut)s of %(ranked)s stayed",
                   share=format_decimal(challenge.keep_fraction * 100, "0.####"),
                   fraction=fraction, ranked=ranked, cut=cut)


def _rounds_with_counts(participant_id: int):
    """(challenge, link code, ranked count) for each round, in order: one query."""
    ranked = func.coalesce(Challenge.ranked_count, 0)  # set when the round closes
    return db.session.execute(select(Challenge, FormLink.code, ranked)
                              .join(FormLink, FormLink.challenge_id == Challenge.id)
                              .where(FormLink.participant_id == participant_id)
                              .order_by(Challenge.number)).all()


def participant_report(participant: Participant) -> list[RoundReport]:
    """One row per round, in order, with a plain-words verdict."""
    rows = _rounds_with_counts(participant.id)
    submissions = {s.challenge_id: s for s in db.session.scalars(
        select(Submission).where(Submission.participant_id == participant.id))}
    last_number = db.session.scalar(select(Challenge.number).where(Challenge.is_last))
    champion = winner()
    reports = []
    for challenge, code, ranked in rows:
        answered = challenge.id in submissions
        submission = submissions.get(challenge.id) if challenge.is_closed else None
        cut = keep_size(ranked, challenge.keep_fraction, challenge.keep_count)
        row = RoundReport(challenge, code, submission, ranked, cut, None, "",
                          keep_rule(challenge, ranked), answered=answered)
        if submission and submission.rank and ranked:
            row.percentile = share_behind(submission.rank, ranked)
        if (participant.eliminated_in == challenge.number and submission and submission.rank and cut
                and challenge.cut_score is not None):
            # place `cut`, kept at the close
            row.cut_line = (challenge.cut_score, challenge.cut_response_time)
        row.verdict = _verdict(participant, row)
        if (champion is not None and champion.id == participant.id
                and challenge.number == last_number):
            row.verdict = gettext("Winner! First place in the final.")
            # PRIZE_REQUIRES_CHECKIN passed over others
            if submission and submission.rank and submission.rank > 1:
                row.verdict = gettext("Winner! Ranked %(rank)s in the final, and the best-ranked "
                                      "player who checked in: the prize needs check-in.",
                                      rank=submission.rank)
        elif (champion is not None and challenge.number == last_number and submission
              and submission.rank and current_app.config["PRIZE_REQUIRES_CHECKIN"]
              and (participant.checked_in_at is None
                   or participant.checked_in_at > challenge.closed_at)):
            row.verdict = gettext("Ranked %(rank)s of %(ranked)s in the final, but the prize "
                                  "needs check-in and you hadn't checked in by its end.",
                                  rank=submission.rank, ranked=ranked)
        reports.append(row)
    return reports


def _verdict(participant: Participant, row: RoundReport) -> str:
    challenge, submission, ranked, cut = row.challenge, row.submission, row.ranked, row.cut
    number = challenge.number
    if participant.eliminated_in is not None and participant.eliminated_in < number:
        return _shadow_verdict(participant, row)
    if not challenge.is_closed:
        if row.answered:
            return gettext("Answers in; results when the round ends.")
        return gettext("Open now.") if challenge.is_open else gettext("Not started yet.")
    if participant.eliminated_in == number:
        if participant.elimination_reason == "unanswered":
            return gettext("Out: no answers arrived before the round closed, and everyone who "
                           "didn't answer is out.")
        if participant.elimination_reason == "disqualified":
            return gettext("Out: disqualified by the organizers.")
        line = ""
        if row.cut_line:
            line = " " + gettext("The cut line was place %(cut)s: %(points)s points in "
                                 "%(seconds)s s.", cut=cut, points=row.cut_line[0],
                                 seconds=format_decimal(row.cut_line[1], "0.0"))
        return gettext("Out: ranked %(rank)s of %(ranked)s; %(rule)s (score first, then response "
                       "time).", rank=submission.rank, ranked=ranked, rule=row.rule) + line
    return (gettext("Through: ranked %(rank)s of %(ranked)s; the top %(cut)s stayed.",
                    rank=submission.rank, ranked=ranked, cut=cut) if submission
            else gettext("Through."))


def _shadow_verdict(participant: Participant, row: RoundReport) -> str:
    """A round after the player's knock-out: played in the shadow league, playable there, or not
    played."""
    challenge, submission = row.challenge, row.submission
    if row.answered and not challenge.is_closed:
        return gettext("Shadow league — not ranked for the prize. Answers in; results when the "
                       "round ends.")
    if submission is not None and submission.shadow:
        return gettext("Shadow league — not ranked for the prize: %(score)s points in "
                       "%(seconds)s s.", score=submission.score,
                       seconds=format_decimal(submission.response_time, "0.0"))
    if not in_shadow_league(participant, challenge) or challenge.is_closed:
        return gettext("Not played: knocked out earlier.")
    if challenge.is_open:
        return gettext("Open now in the shadow league — not ranked for the prize.")
    return gettext("Shadow league, when it opens.")  # the box above says what the shadow league is


def linked_rounds(participant: Participant, rows: list[RoundReport]) -> set[int]:
    """The rounds whose link this page shows: all of them with LINKS_IN_REGISTRATION on; else only
    shadow-league rounds (out of the prize, they reach the player only here), so that a prize
    round's link comes by SMS alone and every player needs a phone of their own."""
    every = current_app.config["LINKS_IN_REGISTRATION"]
    return {row.challenge.number for row in rows
            if every or in_shadow_league(participant, row.challenge)}


def report_version(participant: Participant, *extra) -> str:
    """A cheap fingerprint of everything the report shows (for its ETag): five small queries, no
    ranking."""
    rounds = db.session.execute(select(Challenge.id, Challenge.status, Challenge.closed_at)
                                .order_by(Challenge.number)).all()
    played = db.session.execute(select(func.count(), func.max(Submission.rank)).where(
        Submission.participant_id == participant.id)).one()
    champion = winner() if rounds and rounds[-1].status == RoundStatus.CLOSED else None
    state = (participant.id, participant.name, participant.company, participant.eliminated_in,
             participant.elimination_reason, participant.checked_in_at, tuple(map(tuple, rounds)),
             tuple(played), help_version(participant.id), current_app.config["CHECKIN_REQUIRED"],
             current_app.config["SHADOW_LEAGUE"], champion.id if champion else None,
             sorted(revealable_ids(utcnow())), *extra)
    return hashlib.sha256(repr(state).encode()).hexdigest()[:32]
