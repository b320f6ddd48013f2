"""Submits first on the real stack (gunicorn's gevent worker, where it lives): a lone submit in
flight holds no read; once a rush of them is in flight, a read waits for it and is answered after.
The submits stay in flight while the test holds the database's write lock (their group commit
waits for it), and /metrics (never held) says what is in flight and what waits."""
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy

from .helpers import POSTGRES_URL
from .live_fixtures import running_stack
from .players import Api, ready_phone, round_links

pytestmark = pytest.mark.live


def metric(stack, name: str) -> float:
    for line in requests.get(f"{stack.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def until(stack, name: str, value: float) -> None:
    deadline = time.monotonic() + 20
    while metric(stack, name) != value:
        assert time.monotonic() < deadline, f"{name} never reached {value}"
        time.sleep(0.05)


class WriteLock:
    """The database's write lock on submissions, held by another connection until `release`."""

    def __init__(self, url: str):
        if POSTGRES_URL:
            self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            self.connection = self.engine.connect()
            self.connection.exec_driver_sql("LOCK TABLE submission IN EXCLUSIVE MODE")
        else:
            self.connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if POSTGRES_URL:
            self.connection.rollback()
            self.connection.close()
            self.engine.dispose()
        else:
            self.connection.execute("ROLLBACK")
            self.connection.close()


@pytest.fixture
def rush_stack(tmp_path, redis_url):
    """One web process; a rush is 2 submits in flight; a read may wait 10 s for one."""
    with running_stack(tmp_path, redis_url, demo_bank=True, workers=1,
                       SUBMIT_PRIORITY_THRESHOLD="2", READ_YIELD_MAX_SECONDS="10",
                       SQLITE_BUSY_TIMEOUT_MS="30000") as stack:
        yield stack


def test_a_read_waits_for_a_rush_of_submits_but_not_for_a_lone_one(rush_stack):
    api = Api(rush_stack.url)
    for n in range(2):
        api.register(f"Rusher {n}", n)
    api.start(1)
    phones = [(link, *ready_phone(link, 1)) for link in round_links(api, 1, 2).values()]
    pool = ThreadPoolExecutor(4)
    lock = WriteLock(rush_stack.env["DATABASE_URL"])
    try:
        submits = [pool.submit(phone.post, f"{link}/submit", data=data, timeout=60,
                               allow_redirects=False)
                   for link, phone, data in phones[:1]]
        until(rush_stack, "knockout_submits_in_flight", 1)
        # a lone submit in flight: the read is answered at once
        assert requests.get(f"{rush_stack.url}/ping", timeout=30).status_code == 200
        assert metric(rush_stack, "knockout_read_held_seconds_count") == 0
        submits += [pool.submit(phone.post, f"{link}/submit", data=data, timeout=60,
                               allow_redirects=False)
                    for link, phone, data in phones[1:]]
        until(rush_stack, "knockout_submits_in_flight", 2)
        read = pool.submit(requests.get, f"{rush_stack.url}/ping", timeout=30)
        until(rush_stack, "knockout_reads_held", 1)
        assert not read.done() and not any(submit.done() for submit in submits)
    finally:
        lock.release()
    answers = [submit.result() for submit in submits]
    assert [r.status_code for r in answers] == [303, 303]  # stored
    assert read.result().status_code == 200 and read.result().text == "ok"
    pool.shutdown()
    assert metric(rush_stack, "knockout_read_held_seconds_count") == 1
    assert metric(rush_stack, "knockout_reads_held") == 0
