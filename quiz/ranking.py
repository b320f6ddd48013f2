"""Who stays and who is out: pure functions over plain values, no database."""
import math
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import NamedTuple


class Entry(NamedTuple):
    """One submission as ranking sees it (a tuple: cheap to build 50,000 of)."""

    participant_id: int
    score: int
    response_time: float
    submitted_at: datetime


@dataclass(frozen=True)
class Outcome:
    """A round's result: submitters best first, and how many of them stay."""

    order: tuple[int, ...]  # participant ids, rank 1 first
    kept: int

    @property
    def survivors(self) -> tuple[int, ...]:
        return self.order[: self.kept]

    @property
    def ranked_out(self) -> tuple[int, ...]:
        return self.order[self.kept:]


def sort_key(entry: Entry) -> tuple:
    """Score high first, then response time, then submission time, then id: a total order (in SQL:
    models.RANKING_ORDER)."""
    return (-entry.score, entry.response_time, entry.submitted_at, entry.participant_id)


def keep_size(submitters: int, keep_fraction: float = 0.5, keep_count: int | None = None) -> int:
    """How many submitters stay: ceil(n × fraction), or a fixed count; at least one while anyone
    submitted."""
    if submitters <= 0:
        return 0
    if keep_count is not None:
        wanted = keep_count
    else:
        # Fraction(str(...)) so that 0.3 × 10 is exactly 3, not 3.0000000000000004.
        wanted = math.ceil(Fraction(str(keep_fraction)) * submitters)
    return max(1, min(submitters, wanted))


def rank_round(entries: list[Entry], keep_fraction: float = 0.5,
               keep_count: int | None = None) -> Outcome:
    """Rank a round's submissions and decide how many stay."""
    order = tuple(e.participant_id for e in sorted(entries, key=sort_key))
    return Outcome(order=order, kept=keep_size(len(order), keep_fraction, keep_count))


class ShadowTotal(NamedTuple):
    """One shadow-league player's totals over the rounds they played in it."""

    participant_id: int
    score: int
    response_time: float
    rounds: int


def shadow_key(total: ShadowTotal) -> tuple:
    """Total score high first, then total response time, then id: a total order."""
    return (-total.score, total.response_time, total.participant_id)


def shadow_standings(totals: list[ShadowTotal]) -> list[ShadowTotal]:
    """The shadow league, best first (cumulative; nobody is ever cut from it)."""
    return sorted(totals, key=shadow_key)
