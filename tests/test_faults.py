"""Faults, with real processes: Redis killed mid-round under submissions."""
import os
import signal
import subprocess
import time

import pytest
import requests

from quiz.embedded import server_args, wait_for

from .conftest import LiveStack
from .players import Api, answer_over_http, load_demo_bank

pytestmark = pytest.mark.live


def test_redis_killed_mid_round_loses_nothing_and_work_catches_up(tmp_path):
    """kill -9 Redis: players still open links and submit; after restart the queued work completes."""
    directory = tmp_path / "redis"
    directory.mkdir()
    socket = directory / "redis.sock"
    url = f"unix://{socket}"
    redis_server = subprocess.Popen(server_args(directory, socket), stdout=subprocess.DEVNULL)
    wait_for(url)
    stack = LiveStack(tmp_path, url, RECONCILE_SECONDS="1", RATELIMIT_ENABLED="true")
    try:
        stack.start()
        load_demo_bank(stack)
        api = Api(stack.url)
        for n in range(1, 13):
            api.register(f"Player {n}", n)
        api.start(1)
        links = {n: api.sms_link(f"+1415555{n:04d}", 1) for n in range(1, 13)}

        os.kill(redis_server.pid, signal.SIGKILL)  # no shutdown, no last write
        redis_server.wait()
        for n in range(1, 11):  # ten players answer while Redis is gone
            answer_over_http(links[n], 1, right=n % 2 == 0)
        late = requests.post(f"{stack.url}/api/register", json={
            "name": "Late", "email": "late@example.com", "phone": "+14155550999"})
        assert late.status_code == 201  # joining still works too
        api.end(1)
        api.start(2)  # its link messages can't be queued now: Redis is down

        redis_server = subprocess.Popen(server_args(directory, socket), stdout=subprocess.DEVNULL)
        wait_for(url)
        board = requests.get(f"{stack.url}/api/leaderboard/1").json()["entries"]
        assert sum(1 for e in board if e["score"] is not None) == 10  # every 2xx submission is there
        survivors = {e["user_id"] for e in board if not e["eliminated"]}
        assert len(survivors) == 5
        deadline = time.monotonic() + 60
        while True:  # the worker's reconcile hands out round 2's links once Redis is back
            progress = requests.get(f"{stack.url}/api/admin/sms-progress/2", headers=api.headers).json()
            if progress["status"] == "completed" and progress["total"] == len(survivors):
                break
            assert time.monotonic() < deadline, progress
            time.sleep(0.5)
        messages = requests.get(f"{stack.url}/api/admin/outbox?limit=100000", headers=api.headers).json()["messages"]
        round_two = [m["to"] for m in messages if m["challenge"] == 2 and m["kind"] == "round_link"]
        assert len(round_two) == len(set(round_two)) == len(survivors)  # each survivor once, nobody twice
    finally:
        stack.stop()
        redis_server.terminate()
        redis_server.wait()
