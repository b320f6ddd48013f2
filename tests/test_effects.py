"""What commits owe: declared by the domain (quiz/effects.py), sent after commit at once or in
batches (quiz/dispatcher.py)."""
import os
import re
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis
from sqlalchemy import select

from quiz import tasks
from quiz.dispatcher import Dispatcher
from quiz.effects import CHANGED, CHANNEL, Drain, Job, Pending, Task, owe, pending_key
from quiz.extensions import db, get_queue, get_redis, state
from quiz.models import Challenge, Message, Participant


def pending(drain: Drain, round_id: int | None = None) -> set[int]:
    return {int(i) for i in get_redis().smembers(pending_key(drain, round_id))}


def listen():
    """A subscriber to the live channel, ready before anything is published."""
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    return pubsub


def published(pubsub) -> int:
    count = 0
    while pubsub.get_message(timeout=0.3) is not None:
        count += 1
    return count


def unreachable_redis() -> redis.Redis:
    """A client for a port nobody listens on: every command is refused, as when Redis is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return redis.Redis(port=port, socket_connect_timeout=1)


def test_every_task_is_a_job_body_in_tasks():
    for task in Task:
        assert callable(getattr(tasks, task.value)), task
        assert task.path == f"quiz.tasks.{task.value}"


def test_effects_go_out_only_once_the_transaction_commits(app):
    pubsub = listen()
    owe(Pending(Drain.NEW_FORMS, (1, 2)), CHANGED)
    assert pending(Drain.NEW_FORMS) == set() and published(pubsub) == 0
    db.session.commit()
    assert pending(Drain.NEW_FORMS) == {1, 2}
    assert get_queue("forms").count == 1  # one drain job for the set
    assert published(pubsub) == 1


def test_a_rollback_drops_what_the_transaction_owed(app):
    owe(Job(Task.SEND_ROUND_LINKS, (1,)), Pending(Drain.NEW_FORMS, (3,)))
    db.session.rollback()
    db.session.commit()  # a later commit does not send what the rolled-back one owed
    assert pending(Drain.NEW_FORMS) == set()
    assert get_queue("links").count == 0 and get_queue("forms").count == 0


def test_each_kind_of_pending_set_drains_in_its_own_queue(app):
    owe(Pending(Drain.ANSWERED_FORMS, (4,), 7), Pending(Drain.LATE_LINKS, (4,), 7))
    db.session.commit()
    assert pending(Drain.ANSWERED_FORMS, 7) == {4} and pending(Drain.LATE_LINKS, 7) == {4}
    assert get_queue("forms").count == 1
    # late joiners' links never wait behind stored forms, nor behind other messages
    assert get_queue("links").count == 1 and get_queue("notify").count == 0


@pytest.mark.config(ANSWERED_FORMS_DELAY_SECONDS=3)
def test_answered_forms_are_moved_a_moment_after_a_rush_not_during_it(app):
    """The answered forms' drain job runs ANSWERED_FORMS_DELAY_SECONDS after the first submit that
    owes it (the worker's renders wait until a rush is answered); submits meanwhile join its set;
    every other set drains at once."""
    before = datetime.now(timezone.utc)
    owe(Pending(Drain.ANSWERED_FORMS, (4,), 7), Pending(Drain.NEW_FORMS, (5,)))
    db.session.commit()
    owe(Pending(Drain.ANSWERED_FORMS, (6,), 7))  # a submit a moment later: the same job
    db.session.commit()
    forms = get_queue("forms")
    assert forms.count == 1  # the new players' forms, at once
    [job_id] = forms.scheduled_job_registry.get_job_ids()
    due = forms.scheduled_job_registry.get_scheduled_time(job_id)
    # 3 s after the first submit, in whole seconds (RQ's registry scores a time by its second)
    delay = timedelta(seconds=3)
    assert before.replace(microsecond=0) + delay <= due <= datetime.now(timezone.utc) + delay
    assert pending(Drain.ANSWERED_FORMS, 7) == {4, 6}


def test_a_batch_sends_many_commits_effects_at_once_with_one_job_per_set_and_one_publish(app):
    pubsub = listen()
    dispatcher = Dispatcher(app, batched=True)
    dispatcher.sender_pid = os.getpid()  # no sender thread: only our flushes send
    dispatcher.dispatch([Pending(Drain.NEW_FORMS, (1, 2)), CHANGED])
    dispatcher.dispatch([Pending(Drain.NEW_FORMS, (2, 3)), CHANGED])
    dispatcher.dispatch([Pending(Drain.ANSWERED_FORMS, (1,), 7)])
    assert pending(Drain.NEW_FORMS) == set()  # nothing sent yet

    dispatcher.flush()

    assert pending(Drain.NEW_FORMS) == {1, 2, 3}
    assert pending(Drain.ANSWERED_FORMS, 7) == {1}
    assert get_queue("forms").count == 2  # one drain job per set, however many commits asked
    assert published(pubsub) == 1
    dispatcher.flush()  # nothing left: nothing sent again
    assert get_queue("forms").count == 2 and published(pubsub) == 0


def test_a_batch_redis_refused_is_kept_and_sent_once_redis_is_back(app):
    pubsub = listen()
    dispatcher = Dispatcher(app, batched=True)
    dispatcher.sender_pid = os.getpid()  # no sender thread: only our flushes send
    dispatcher.dispatch([Pending(Drain.NEW_FORMS, (1,)), CHANGED,
                         Job(Task.SEND_ROUND_LINKS, (5,), description="links")])
    real = state(app).redis
    state(app).redis = unreachable_redis()
    try:
        with pytest.raises(redis.RedisError):
            dispatcher.flush()
        dispatcher.dispatch([Pending(Drain.NEW_FORMS, (2,))])
    finally:
        state(app).redis = real
    assert pending(Drain.NEW_FORMS) == set()

    dispatcher.flush()

    assert pending(Drain.NEW_FORMS) == {1, 2}
    assert get_queue("forms").count == 1
    assert [job.description for job in get_queue("links").jobs] == ["links"]  # kept, sent once
    assert published(pubsub) == 1  # the publish was kept too


def test_sent_at_once_a_refused_effect_is_logged_and_the_commit_stands(app, caplog):
    real = state(app).redis
    state(app).redis = unreachable_redis()
    try:
        db.session.add(Participant(name="Ada", email="ada@example.com", phone="+14155550100",
                                   report_code="r" * 16))
        owe(Pending(Drain.NEW_FORMS, (1,)))
        db.session.commit()
    finally:
        state(app).redis = real
    assert db.session.scalar(select(Participant.name)) == "Ada"
    assert "could not be sent" in caplog.text


@pytest.mark.batch_effects
def test_requests_hand_their_effects_to_the_running_sender(app, client):
    response = client.post("/api/register", json={"name": "Ada", "email": "ada@example.com",
                                                  "phone": "+14155550100", "consent": True})
    assert response.status_code == 201, response.get_json()
    participant_id = response.get_json()["user_id"]
    # The sender counts its batch once Redis has it: the set can show the id a moment before.
    deadline = time.monotonic() + 10
    while (participant_id not in pending(Drain.NEW_FORMS) or state(app).dispatcher.batches < 1) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pending(Drain.NEW_FORMS) == {participant_id}
    assert state(app).dispatcher.batches >= 1  # sent by the sender, not by the request


def test_stopping_sends_what_the_batch_still_holds(app):
    dispatcher = Dispatcher(app, batched=True)
    dispatcher.sender_pid = os.getpid()  # no sender thread: only the stop sends
    dispatcher.dispatch([Pending(Drain.ANSWERED_FORMS, (8,), 3)])
    dispatcher.stop()
    assert pending(Drain.ANSWERED_FORMS, 3) == {8}
    assert get_queue("forms").count == 1


@pytest.mark.batch_effects
def test_a_whole_round_runs_on_batched_effects(app, client, load_bank, run_jobs, api_headers):
    """Registration, a round's start, submissions, the close: every job and pending set the web
    requests owe reaches the workers through the batching sender, as under gunicorn."""
    load_bank()
    codes = []
    for n in range(4):
        joined = client.post("/api/register", headers=api_headers, json={
            "name": f"P{n}", "email": f"p{n}@example.com", "phone": f"+1415555010{n}",
            "consent": True})
        assert joined.status_code == 201, joined.get_json()
        codes.append(joined.get_json()["form_urls"]["1"].rsplit("/", 1)[1])
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    state(app).dispatcher.flush()
    run_jobs()
    sent = db.session.scalars(select(Message.kind).where(Message.status == "sent",
                                                         Message.channel == "sms")).all()
    assert sorted(sent) == ["confirmation"] * 4 + ["round_link"] * 4  # (joining confirmed too)
    for code, picks in zip(codes[:3], (["S3"], ["S3"], ["EC2"])):
        page = client.get(f"/f/{code}").get_data(as_text=True)  # the stored form (the job made it)
        token = dict([re.search(r'name="(form_token|csrf_token)" value="([^"]+)"', page).groups()])
        client.post(f"/f/{code}/start", data=token)
        page = client.get(f"/f/{code}").get_data(as_text=True)
        choices = re.findall(r'name="(q\d+)" value="([^"]+)"[^>]*>\s*<span>([^<]*)</span>', page)
        answers = {name: value for name, value, label in reversed(choices)}  # any choice for each
        # which service stores objects? (each player has their own order of questions)
        first, value = next((name, value) for name, value, label in choices if label == picks[0])
        answers[first] = value
        token = dict([re.search(r'name="(form_token|csrf_token)" value="([^"]+)"', page).groups()])
        answered = client.post(f"/f/{code}/submit", data={**token, **answers})
        assert answered.status_code == 303, answered.get_data(as_text=True)
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200
    state(app).dispatcher.flush()
    run_jobs()
    assert sorted(get_redis().keys("knockout:pending:*")) == []  # every pending set drained
    closed = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    assert closed.results_due_at is None  # the results job ran and owes nothing more
    kinds = db.session.scalars(select(Message.kind).where(Message.kind != "round_link",
                                                          Message.channel == "sms")).all()
    # 3 answered, ⌈3 × 0.5⌉ = 2 stay; the wrong answer and the no-show are out
    # (the shadow league is on)
    assert sorted(kinds) == (["confirmation"] * 4 + ["result_out_shadow"] * 2
                             + ["result_through"] * 2)
