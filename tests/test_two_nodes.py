"""Two web nodes behind the project's nginx config, as a scaled deploy runs them: two gunicorn nodes
(2 gevent processes each) in one upstream, two RQ workers, one database and one Redis.

On SQLite both nodes share the file (one machine); on the PostgreSQL pass, one server.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import sqlalchemy

from .live_fixtures import LiveStack
from .nginx import Nginx
from .players import Api, connect, load_demo_bank, ready_phone, round_links, wait_for

PLAYERS = 40


@pytest.fixture
def two_nodes(tmp_path, redis_url):
    """Nodes A and B (each gunicorn + worker.py) on one database and Redis, and nginx in front of
    both; yields (a, b, nginx)."""
    redis.Redis.from_url(redis_url).flushall()
    a = LiveStack(tmp_path, redis_url, TRUSTED_PROXIES="1")
    # the same database, storage folder (instance/) and Redis: only the port differs
    b = LiveStack(tmp_path, redis_url, database=a.env["DATABASE_URL"], TRUSTED_PROXIES="1")
    nginx = None
    try:
        a.start()
        b.start()
        nginx = Nginx(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}").start()
        yield a, b, nginx
    finally:
        if nginx is not None and hasattr(nginx, "process"):
            nginx.stop()
        b.stop()
        a.stop()


def on_node(link: str, node) -> str:
    """The same /f/<code> link, on one node's own address (not through nginx)."""
    return node.url + "/f/" + link.rsplit("/f/", 1)[1]


def stored(database: str) -> tuple[int, int]:
    """Round 1's submissions in the database: rows, and distinct players among them."""
    engine = sqlalchemy.create_engine(database)
    try:
        with engine.connect() as connection:
            return tuple(connection.execute(sqlalchemy.text(
                "SELECT count(*), count(DISTINCT participant_id) FROM submission")).one())
    finally:
        engine.dispose()


@pytest.mark.live
def test_a_socket_on_one_node_sees_a_submission_made_on_the_other(two_nodes):
    a, b, nginx = two_nodes
    load_demo_bank(a)
    api = Api(nginx.url)
    # Through nginx: spread over both nodes. One more player who never answers keeps the round
    # open to the end (once everyone invited has answered, it closes itself).
    for n in range(PLAYERS + 1):
        api.register(f"Player {n}", n)
    api.start(1)
    links = sorted(round_links(api, 1, PLAYERS + 1).values())[:PLAYERS]
    phones = [ready_phone(link, 1) for link in links]  # opened and pressed Start, via nginx

    ws = connect(a)  # the projector's socket, held by node A
    try:
        wait_for(ws, "<strong>0</strong> of")
        phone, answers = phones[0]
        done = phone.post(on_node(links[0], b) + "/submit", data=answers, allow_redirects=False)
        assert done.status_code == 303, done.text[:2000]
        # B's commit → Redis → A's process → this socket
        wait_for(ws, "<strong>1</strong> of", seconds=10)

        # The others' answers, each posted twice at once: one copy to each node.
        def post(job):
            (session, data), link, node = job
            return link, session.post(on_node(link, node) + "/submit", data=data,
                                      allow_redirects=False).status_code
        jobs = [(phone, link, node) for phone, link in zip(phones[1:], links[1:])
                for node in (a, b)]
        with ThreadPoolExecutor(len(jobs)) as pool:
            statuses = list(pool.map(post, jobs))
        by_link = {}
        for link, status in statuses:
            by_link.setdefault(link, []).append(status)
        # exactly one copy stored ("your answers are in"), the other told "already in"
        assert all(sorted(s) == [200, 303] for s in by_link.values()), by_link
        assert stored(a.env["DATABASE_URL"]) == (PLAYERS, PLAYERS)  # nothing lost, no duplicate
        wait_for(ws, f"<strong>{PLAYERS}</strong> of", seconds=10)
    finally:
        ws.close()
