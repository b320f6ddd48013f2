"""Ranking is a pure function: property tests hammer it."""
import math
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from quiz.ranking import Entry, keep_size, rank_round

T0 = datetime(2026, 11, 22, 14, 0, 0)

entries_strategy = st.lists(
    st.builds(lambda pid, score, rt, sub: Entry(pid, score, rt, T0 + timedelta(milliseconds=sub)),
              st.integers(1, 10**6), st.integers(0, 5), st.floats(0, 120, allow_nan=False),
              st.integers(0, 10**5)),
    unique_by=lambda e: e.participant_id, max_size=60)


@given(entries_strategy, st.sampled_from([0.1, 0.25, 0.3, 0.5, 0.75, 1.0]))
def test_order_is_total_and_deterministic(entries, fraction):
    outcome = rank_round(entries, fraction)
    assert sorted(outcome.order) == sorted(e.participant_id for e in entries)
    assert rank_round(list(reversed(entries)), fraction) == outcome


@given(entries_strategy, st.sampled_from([0.1, 0.3, 0.5, 0.7, 1.0]))
def test_survivors_beat_everyone_ranked_out(entries, fraction):
    by_id = {e.participant_id: e for e in entries}
    outcome = rank_round(entries, fraction)
    key = lambda pid: (-by_id[pid].score, by_id[pid].response_time, by_id[pid].submitted_at, pid)
    for kept in outcome.survivors:
        for out in outcome.ranked_out:
            assert key(kept) < key(out)


@given(st.integers(0, 10_000), st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9, 1.0]))
def test_keep_size_is_the_ceiling_of_the_fraction(n, fraction):
    size = keep_size(n, fraction)
    if n == 0:
        assert size == 0
    else:
        # Exact decimal arithmetic: ceil(n × fraction), at least one.
        assert size == max(1, -(-n * round(fraction * 10) // 10))
        assert 1 <= size <= n


def test_fraction_arithmetic_is_exact():
    assert keep_size(10, 0.3) == 3  # float 0.3 × 10 = 3.0000000000000004 would give 4
    assert keep_size(10, 0.7) == 7
    assert keep_size(3, 0.5) == 2
    assert keep_size(1, 0.1) == 1


def test_fixed_count_wins_over_fraction_and_never_exceeds_submitters():
    assert keep_size(10, 0.5, keep_count=3) == 3
    assert keep_size(2, 0.5, keep_count=3) == 2


def test_ties_break_by_time_then_submission_then_id():
    entries = [Entry(1, 5, 10.0, T0), Entry(2, 5, 9.0, T0),
               Entry(3, 5, 9.0, T0 - timedelta(seconds=1)),
               Entry(4, 6, 50.0, T0), Entry(5, 5, 9.0, T0 - timedelta(seconds=1))]
    assert rank_round(entries).order == (4, 3, 5, 2, 1)
    assert rank_round(entries).kept == math.ceil(5 / 2)


def test_nobody_submitted_means_nobody_kept():
    assert rank_round([]).kept == 0
