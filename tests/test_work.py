"""Work requests hand to the workers through Redis: gathered per web process and sent in one round trip."""
import socket
import time

import redis

from quiz import work
from quiz.extensions import get_queue, get_redis
from quiz.live import CHANNEL


def pending(kind: str) -> set[int]:
    return {int(i) for i in get_redis().smembers(work.PENDING + kind)}


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


def test_a_batch_sends_many_requests_work_at_once_with_one_job_per_kind_and_one_publish(app):
    pubsub = listen()
    batch = work.Batch(app)
    batch.add("new", [1, 2], publish=True)
    batch.add("new", [2, 3], publish=True)
    batch.add("answered:7", [1], publish=False)
    assert pending("new") == set()  # nothing sent yet

    batch.flush()

    assert pending("new") == {1, 2, 3}
    assert pending("answered:7") == {1}
    assert get_queue("forms").count == 2  # one drain job per kind, however many requests asked
    assert published(pubsub) == 1
    batch.flush()  # nothing left: nothing sent again
    assert get_queue("forms").count == 2
    assert published(pubsub) == 0


def test_without_a_batch_work_goes_at_once(app):
    with app.test_request_context():
        work.request_work("new", [5], publish=False)
    assert pending("new") == {5}
    assert get_queue("forms").count == 1


def test_a_batch_redis_refused_is_kept_and_sent_once_redis_is_back(app):
    pubsub = listen()
    batch = work.Batch(app)
    batch.add("new", [1], publish=True)
    real = app.extensions["knockout_redis"]
    app.extensions["knockout_redis"] = unreachable_redis()
    try:
        try:
            batch.flush()
            raise AssertionError("the flush should have failed")
        except redis.RedisError:
            pass
        batch.add("new", [2], publish=False)
    finally:
        app.extensions["knockout_redis"] = real
    assert pending("new") == set()

    batch.flush()

    assert pending("new") == {1, 2}
    assert get_queue("forms").count == 1
    assert published(pubsub) == 1  # the publish was kept too


def test_requests_hand_their_work_to_the_running_batch(app, client):
    batch = work.start_batching(app)
    try:
        response = client.post("/api/register", json={"name": "Ada", "email": "ada@example.com",
                                                      "phone": "+14155550100"})
        assert response.status_code == 201, response.get_json()
        participant_id = response.get_json()["user_id"]
        deadline = time.monotonic() + 10
        while participant_id not in pending("new") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pending("new") == {participant_id}
        assert batch.batches >= 1  # sent by the batch, not by the request
    finally:
        work.stop_batching(app)
    assert work.EXTENSION not in app.extensions


def test_stopping_sends_what_the_batch_still_holds(app):
    batch = app.extensions[work.EXTENSION] = work.Batch(app)  # its sender not running: only the stop sends
    batch.add("answered:3", [8], publish=False)
    work.stop_batching(app)
    assert pending("answered:3") == {8}
    assert get_queue("forms").count == 1
