"""Round life cycle details: the time limit closes a round through RQ's scheduler."""
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from quiz import tasks
from quiz.clock import utcnow
from quiz.extensions import db, get_queue
from quiz.models import Challenge, Participant


def test_opening_a_timed_round_schedules_its_close(client, load_bank, make_participant, api_headers):
    load_bank()
    make_participant()
    db.session.execute(db.update(Challenge).where(Challenge.number == 1).values(time_limit_seconds=30))
    db.session.commit()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    registry = ScheduledJobRegistry(queue=get_queue("default"))
    jobs = [get_queue("default").fetch_job(job_id) for job_id in registry.get_job_ids()]
    assert [job.func_name for job in jobs] == ["quiz.tasks.close_expired_round"]
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    when = registry.get_scheduled_time(jobs[0]).replace(tzinfo=None)
    assert abs((when - challenge.deadline(1.0)).total_seconds()) < 1.5


def test_expired_round_is_closed_by_the_job_and_eliminates(app, client, load_bank, make_participant, api_headers):
    load_bank()
    player = make_participant()
    db.session.execute(db.update(Challenge).where(Challenge.number == 1).values(time_limit_seconds=30))
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
    assert db.session.scalar(select(Participant.elimination_reason).where(Participant.id == player.id)) == "unanswered"
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
