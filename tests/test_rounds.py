"""Round life cycle details: the time limit closes a round through RQ's scheduler."""
from datetime import datetime, timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from quiz import tasks
from quiz.clock import utcnow
from quiz.extensions import db, get_queue
from quiz.models import Challenge, Participant, Submission


def test_opening_a_timed_round_schedules_its_close(client, load_bank, make_participant,
                                                   api_headers):
    load_bank()
    make_participant()
    db.session.execute(db.update(Challenge).where(Challenge.number == 1)
                       .values(time_limit_seconds=30))
    db.session.commit()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    registry = ScheduledJobRegistry(queue=get_queue("default"))
    jobs = [get_queue("default").fetch_job(job_id) for job_id in registry.get_job_ids()]
    assert [job.func_name for job in jobs] == ["quiz.tasks.close_expired_round"]
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    when = registry.get_scheduled_time(jobs[0]).replace(tzinfo=None)
    # The round may close (at the earliest) once the link is sent and its start window (the
    # limit, 30 s) has passed; at the latest at limit + start window + send time (0 s: no rate).
    assert abs((when - challenge.opened_at).total_seconds() - 30) < 1.5
    assert abs((challenge.closes_at - challenge.opened_at).total_seconds() - 60) < 0.01


def test_expired_round_is_closed_by_the_job_and_eliminates(app, client, load_bank, make_participant,
                                                           api_headers):
    load_bank()
    player = make_participant()
    db.session.execute(db.update(Challenge).where(Challenge.number == 1)
                       .values(time_limit_seconds=30))
    db.session.commit()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    assert tasks.close_expired_round(challenge.id) is False  # too early: re-scheduled, still open
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "open"
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    challenge.closes_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    assert tasks.close_expired_round(challenge.id) is True
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "closed"
    assert db.session.scalar(select(Participant.elimination_reason)
                             .where(Participant.id == player.id)) == "unanswered"
    assert tasks.close_expired_round(challenge.id) is False  # safe to run twice


@pytest.mark.parametrize("rounds, current", [
    ([], None),
    ([(1, "draft"), (2, "draft")], 1),
    ([(1, "closed"), (2, "open"), (3, "draft")], 2),
    ([(1, "closed"), (2, "draft"), (3, "draft")], 2),
    ([(2, "closed"), (1, "closed")], 2),
])
def test_the_current_round_is_the_open_one_else_the_next_else_the_last(rounds, current):
    from quiz.rounds import current_number
    assert current_number(rounds) == current


# --- the close: ranks, what it keeps on the round, who goes out and why ---------------------------

@pytest.mark.parametrize("keep_count", [None, 4])
def test_close_stores_what_the_ranks_say_and_ranks_in_the_index_order(
        client, load_bank, make_participant, api_headers, keep_count):
    """Tied scores, times and arrival: the ranks follow RANKING_ORDER (the index readers walk); the
    round keeps its ranked count and cut line; no-shows and the ranked-out go out, a player
    disqualified earlier stays so."""
    from quiz.ranking import keep_size
    from quiz.rounds import RANKING_ORDER, _prize_ranking, disqualify
    load_bank()
    db.session.execute(db.update(Challenge).where(Challenge.number == 1)
                       .values(keep_count=keep_count))
    players = [make_participant().id for _ in range(15)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    at = [datetime(2026, 11, 23, 10), datetime(2026, 11, 23, 10, 0, 1)]
    db.session.add_all(Submission(participant_id=pid, challenge_id=challenge.id, answers={},
                                  score=i % 3, correct=0, response_time=[2.5, 1.25][i % 2],
                                  submitted_at=at[i // 2 % 2])
                       for i, pid in enumerate(players[:12]))  # the last three never answer
    db.session.commit()
    disqualify(db.session.get(Participant, players[0]), "Two phones")
    db.session.commit()
    result = client.post("/api/admin/end-challenge/1", headers=api_headers).get_json()
    db.session.expire_all()
    challenge = db.session.get(Challenge, challenge.id)
    ranked = db.session.execute(select(Submission.participant_id, Submission.rank, Submission.score,
                                       Submission.response_time).where(Submission.rank.is_not(None))
                                .order_by(*RANKING_ORDER)).all()
    cut = keep_size(11, 0.5, keep_count)
    # the disqualified player is not ranked
    assert [rank for _, rank, *_ in ranked] == list(range(1, 12))
    assert challenge.ranked_count == 11 == db.session.scalar(select(db.func.max(Submission.rank)))
    assert (challenge.cut_score, challenge.cut_response_time) == tuple(ranked[cut - 1][2:])
    out = dict(db.session.execute(select(Participant.id, Participant.elimination_reason)
                                  .where(Participant.eliminated_in == 1)).all())
    assert out == {players[0]: "disqualified", **{pid: "ranked_out" for pid, *_ in ranked[cut:]},
                   **{pid: "unanswered" for pid in players[12:]}}
    assert (result["kept"], result["eliminated_unanswered"],
            result["eliminated_ranked_out"]) == (cut, 3, 11 - cut)
    assert db.session.scalar(_prize_ranking(challenge, Participant.id)) == ranked[0][0]


def test_close_with_no_answers_keeps_an_empty_count_and_no_cut_line(
        client, load_bank, make_participant, api_headers):
    load_bank()
    players = [make_participant().id for _ in range(3)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    result = client.post("/api/admin/end-challenge/1", headers=api_headers).get_json()
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    assert (challenge.ranked_count, challenge.cut_score,
            challenge.cut_response_time) == (0, None, None)
    assert result["eliminated_unanswered"] == 3 and result["kept"] == 0
    assert db.session.scalars(select(Participant.elimination_reason)
                              .where(Participant.id.in_(players))).all() == ["unanswered"] * 3
