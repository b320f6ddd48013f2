"""Operators' view: /healthz, /metrics, JSON logs with a request id."""
import json
import logging

import pytest
import requests

from quiz.observability import JsonFormatter

from .helpers import make_config
from .players import Api, answer_over_http, load_demo_bank


def test_healthz_says_what_is_missing_when_no_worker_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["redis"] == "ok" and body["workers"] == 0
    assert "start `python worker.py`" in body["worker_status"]


def test_an_idle_worker_counts_as_live_by_its_alerts_heartbeat(client):
    """RQ's heartbeat comes every ~7 minutes from an idle worker (past WORKER_STALE_SECONDS, 2
    min): the beat its alerts watcher gives every few seconds counts."""
    from quiz.alert_checks import beat
    from quiz.extensions import get_redis
    beat(get_redis(), "idle-worker")
    body = client.get("/healthz").get_json()
    assert body["workers"] == 1 and body["status"] == "ok"


def test_ping_answers_with_neither_database_nor_redis(tmp_path, redis_url):
    from quiz import create_app
    app = create_app(make_config(tmp_path, "redis://127.0.0.1:1/0",
                                 SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/dir/x.db"))
    client = app.test_client()
    # the database and Redis are indeed unreachable
    assert client.get("/healthz").status_code == 503
    response = client.get("/ping")
    assert response.status_code == 200 and response.get_data(as_text=True) == "ok"


@pytest.mark.live
def test_healthz_and_metrics_on_the_real_stack(live_stack):
    import time
    deadline = time.monotonic() + 20
    # the worker's first heartbeat
    while requests.get(f"{live_stack.url}/healthz").status_code != 200:
        assert time.monotonic() < deadline, requests.get(f"{live_stack.url}/healthz").json()
        time.sleep(0.3)
    body = requests.get(f"{live_stack.url}/healthz").json()
    assert (body["status"] == "ok" and body["workers"] >= 1
            and set(body["queues"]) == {"links", "forms", "notify", "default", "email"})
    load_demo_bank(live_stack)
    api = Api(live_stack.url)
    api.register("Mo", 1)
    api.start(1)
    answer_over_http(api.sms_link("+14155550001", 1), 1)
    # Two gunicorn processes: whichever answers the scrape, it reports both (multiprocess mode),
    # every time.
    scrapes = [requests.get(f"{live_stack.url}/metrics").text for _ in range(6)]
    for seen in scrapes:
        assert "knockout_submissions_total 1.0" in seen
        assert 'knockout_request_seconds_count{endpoint="play.submit",method="POST"} 1.0' in seen
    registrations = [line for line in seen.splitlines()
                     if line.startswith('knockout_request_seconds_count{endpoint="api.register"')]
    assert registrations == [
        'knockout_request_seconds_count{endpoint="api.register",method="POST"} 1.0']
    assert 'knockout_request_seconds_count{endpoint="play.submit",method="POST"}' in seen
    assert 'knockout_queue_depth{queue="notify"}' in seen and "knockout_websockets" in seen


def test_json_logs_carry_the_request_id(app, client):
    record = logging.LogRecord("quiz", logging.INFO, __file__, 1, "round %s opened", (1,), None)
    with app.test_request_context("/", headers={"X-Request-ID": "abc123"}):
        from quiz.observability import _start_request
        _start_request()
        line = json.loads(JsonFormatter().format(record))
    assert (line["message"] == "round 1 opened" and line["request_id"] == "abc123"
            and line["level"] == "INFO")
    response = client.get("/register", headers={"X-Request-ID": "req-7"})
    assert response.headers["X-Request-ID"] == "req-7"
