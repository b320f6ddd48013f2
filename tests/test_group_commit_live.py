"""Group commit on the real stack (gunicorn's gevent workers, where each process's writer runs):
registrations and submissions sent at once, repeats among them, each stored exactly once and each
answered only once stored."""
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy

from .players import Api, load_demo_bank, ready_phone, round_links

PLAYERS = 24


def test_a_burst_of_registrations_and_submissions_is_stored_once_each(live_stack):
    load_demo_bank(live_stack)
    api = Api(live_stack.url)
    bodies = [{"name": f"Burst {n}", "email": f"burst{n}@example.com",
               "phone": f"+1415555{n:04d}", "consent": True} for n in range(PLAYERS)]
    bodies.append(dict(bodies[0]))  # a double tap on Join
    with ThreadPoolExecutor(len(bodies)) as pool:
        joined = list(pool.map(lambda body: requests.post(f"{api.url}/api/register", json=body,
                                                          timeout=30), bodies))
    assert sorted(r.status_code for r in joined) == [201] * PLAYERS + [409]
    api.start(1)
    phones = [(link, *ready_phone(link, 1)) for link in round_links(api, 1, PLAYERS).values()]
    posts = phones + phones[:3]  # three retried POSTs
    with ThreadPoolExecutor(len(posts)) as pool:
        answered = list(pool.map(
            lambda post: post[1].post(f"{post[0]}/submit", data=post[2], timeout=30), posts))
    assert all(r.status_code == 200 for r in answered), [r.status_code for r in answered]
    assert sum("already in" in r.text for r in answered) == 3
    engine = sqlalchemy.create_engine(live_stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT participant_id, count(*) FROM submission GROUP BY participant_id").all()
            players = connection.exec_driver_sql("SELECT count(*) FROM participant").scalar()
    finally:
        engine.dispose()
    assert players == PLAYERS
    assert len(rows) == PLAYERS and {count for _, count in rows} == {1}
