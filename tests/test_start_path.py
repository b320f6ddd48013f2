"""The Start press answered before Flask (quiz/web/start_path.py): the Start page's form carries the
link's own token; a press with it gets the route's 303, headers, clock, rate limit, metrics and
effects; every refusal and everything else goes to the route, which answers as before."""
import sqlite3
from datetime import timedelta

import gevent
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client

from quiz import answers, stored_forms
from quiz.clock import utcnow
from quiz.effects import CHANNEL
from quiz.extensions import db, get_redis, state
from quiz.models import Challenge, FormLink, Participant, Submission
from quiz.observability import REGISTRY
from quiz.rehearsal_pages import RehearsalError, form_fields
from quiz.submit_read import reader
from quiz.web.start_path import StartFastPath

from .helpers import POSTGRES_URL, round_trips, session_token, submit, text
from .test_submit_read import answer_data

# Round 1 timed (the press sets the player's own window), round 2 to be refused in.
BANK = """
challenges:
  - number: 1
    title: Warm-up
    time_limit_seconds: 60
    keep_fraction: 0.5
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
      - text: Which are databases?
        choices: [RDS, Lambda, DynamoDB]
        answer: [RDS, DynamoDB]
        points: 2
  - number: 2
    title: Second
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("knockout_start_fast_path_total",
                                     {"outcome": outcome}) or 0.0


class Paths:
    """How many presses the fast path answered and handed on since this was made."""

    def __init__(self):
        self.before = counted("answered"), counted("handed_on")

    def counts(self) -> tuple[float, float]:
        return counted("answered") - self.before[0], counted("handed_on") - self.before[1]


def fast_path(app) -> StartFastPath:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, StartFastPath):
        wsgi = wsgi.wrapped
    return wsgi


def token_of(code: str) -> dict:
    return {"form_token": stored_forms.form_token(code)}


def clock(code: str) -> tuple:
    db.session.rollback()  # what is committed now
    return db.session.execute(select(FormLink.started_at, FormLink.window_ends_at)
                              .where(FormLink.code == code)).one()


def code_of(participant_id: int, number: int = 1) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == participant_id, Challenge.number == number))


def start_form(page: str) -> dict:
    """The fields the Start page's form posts, as a phone (and the rehearsal) sends them."""
    return form_fields(page, "/start")


@pytest.fixture
def players(client, load_bank, make_participant, open_round):
    """Grace and Alan, round 1 open (timed), nobody started: their round-1 codes."""
    load_bank(BANK)
    ids = [make_participant(name).id for name in ("Grace", "Alan")]
    open_round()
    codes = [code_of(i) for i in ids]
    db.session.commit()  # nothing begun: a press's session is as fresh as a web process's
    return codes


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_a_press_with_the_link_token_is_answered_before_flask_as_the_route_answers_it(
        app, client, players):
    fast_code, flask_code = players
    paths = Paths()
    latency = REGISTRY.get_sample_value("knockout_request_seconds_count",
                                        {"endpoint": "play.start", "method": "POST"}) or 0.0
    fast = client.post(f"/f/{fast_code}/start", data=token_of(fast_code),
                       headers={"X-Request-ID": "phone-42"})
    assert paths.counts() == (1, 0)
    route_alone = Client(fast_path(app).wrapped, app.response_class)
    through_flask = route_alone.post(f"/f/{flask_code}/start", data=token_of(flask_code),
                                     headers={"X-Request-ID": "phone-42"})
    assert paths.counts() == (1, 0)

    assert fast.status_code == through_flask.status_code == 303
    assert fast.headers["Location"] == f"/f/{fast_code}"
    assert through_flask.headers["Location"] == f"/f/{flask_code}"
    varying = {"Location", "Retry-After", "X-RateLimit-Reset", "Content-Length"}
    assert list(fast.headers.keys()) == list(through_flask.headers.keys())  # in their order
    assert ([(k, v) for k, v in fast.headers if k not in varying]
            == [(k, v) for k, v in through_flask.headers if k not in varying])
    assert fast.headers["X-RateLimit-Remaining"] == "29"
    assert "Set-Cookie" not in fast.headers
    assert (fast.get_data().replace(fast_code.encode(), b"CODE")
            == through_flask.get_data().replace(flask_code.encode(), b"CODE"))
    # the same clock: started now, the player's own 60 s window
    for code in players:
        started_at, ends = clock(code)
        assert ends - started_at == timedelta(seconds=60)
    assert (REGISTRY.get_sample_value("knockout_request_seconds_count",
                                      {"endpoint": "play.start", "method": "POST"})
            - latency == 2)
    assert "Which service stores objects?" in text(client.get(f"/f/{fast_code}"))


def test_the_start_page_carries_the_link_token_from_its_copy_too(app, client, players):
    """The Start page is kept per process with each player's values marked (page_cache.py): the
    second player's page is the copy, with their own token; pressing it is answered here."""
    paths = Paths()
    for code in players:
        page = client.get(f"/f/{code}").get_data(as_text=True)
        assert start_form(page) == token_of(code)  # no session token in the Start form
        assert 'name="csrf_token"' not in page  # nor in the help form or language switch
        assert client.post(f"/f/{code}/start", data=start_form(page)).status_code == 303
        assert clock(code)[0] is not None
    assert paths.counts() == (2, 0)
    # the htmx fragment a waiting phone swaps in carries it too
    db.session.execute(update(FormLink).values(started_at=None, window_ends_at=None))
    db.session.commit()
    fragment = client.get(f"/f/{players[1]}", headers={"HX-Request": "true"})
    assert start_form(fragment.get_data(as_text=True)) == token_of(players[1])
    # once started, the page has no Start form: a synthetic phone is told so
    assert client.post(f"/f/{players[1]}/start", data=start_form(fragment.get_data(as_text=True))
                       ).status_code == 303
    with pytest.raises(RehearsalError, match="no form that posts to …/start"):
        start_form(client.get(f"/f/{players[1]}").get_data(as_text=True))


def test_a_press_answered_here_tells_the_live_pages(client, players):
    listener = get_redis().pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    assert client.post(f"/f/{players[0]}/start", data=token_of(players[0])).status_code == 303
    messages = [listener.get_message(timeout=1) for _ in range(3)]  # the first: the subscription
    listener.close()
    assert {"type": "message", "pattern": None, "channel": CHANNEL.encode(),
            "data": b"changed"} in messages


def test_a_repeat_press_is_answered_and_the_clock_starts_once(client, players):
    code = players[0]
    paths = Paths()
    assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    first = clock(code)
    assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    assert clock(code) == first
    assert paths.counts() == (2, 0)


def test_presses_at_once_start_the_clock_once(client, players):
    """Doubled taps arriving together (gevent, as in a web process): every one a 303, one clock."""
    code = players[0]
    presses = [gevent.spawn(client.post, f"/f/{code}/start", data=token_of(code))
               for _ in range(6)]
    gevent.joinall(presses, raise_error=True)
    assert [p.value.status_code for p in presses] == [303] * 6
    started_at, ends = clock(code)
    assert started_at is not None and ends - started_at == timedelta(seconds=60)


def close_round(client, api_headers, code):
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200


def not_open(client, api_headers, code):
    participant_id = db.session.scalar(select(FormLink.participant_id)
                                       .where(FormLink.code == code))
    return code_of(participant_id, 2)


def time_up(client, api_headers, code):
    started = utcnow() - timedelta(minutes=5)
    db.session.execute(update(FormLink).where(FormLink.code == code).values(
        started_at=started, window_ends_at=started + timedelta(seconds=60)))
    db.session.commit()


def answered(client, api_headers, code):
    assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    assert submit(client, code, [["S3"], ["RDS", "DynamoDB"]]).status_code == 303


def eliminated(client, api_headers, code):
    """Out in round 1 (no answer; the shadow league is off here), pressing Start in round 2."""
    close_round(client, api_headers, code)
    assert client.post("/api/admin/start-challenge/2", headers=api_headers).status_code == 200
    return not_open(client, api_headers, code)


def check_in(client, api_headers, code):
    db.session.execute(update(Participant).values(checked_in_at=None))
    db.session.commit()


@pytest.mark.config(SHADOW_LEAGUE=False, CHECKIN_REQUIRED=True)
@pytest.mark.parametrize("arrange, status, message", [
    (not_open, 409, "Round 2 hasn't started yet"),
    (close_round, 409, "Round 1 is closed"),
    (time_up, 409, "Your time for round 1 is up"),
    (answered, 409, "Your answers are already in"),
    (eliminated, 403, "knocked out in round 1"),
    (check_in, 403, "only open to players who have checked in"),
])
def test_every_refusal_is_the_routes_own_answer(app, client, players, api_headers, arrange,
                                                status, message):
    db.session.execute(update(Participant).values(checked_in_at=utcnow()))
    db.session.commit()
    code = arrange(client, api_headers, players[0]) or players[0]
    before = clock(code)
    client.get(f"/f/{code}")  # the page, as the phone opens it
    paths = Paths()
    through_here = client.post(f"/f/{code}/start", data=token_of(code))
    assert paths.counts() == (0, 1)
    through_flask = client.post(f"/f/{code}/start", data={"csrf_token": session_token(client)})
    for response in (through_here, through_flask):
        assert response.status_code == status and message in text(response), text(response)[:400]
    assert clock(code) == before


def test_a_refusal_is_worded_in_the_players_language(client, players, api_headers):
    db.session.execute(update(Participant).values(language="de"))
    db.session.commit()
    close_round(client, api_headers, players[0])
    response = client.post(f"/f/{players[0]}/start", data=token_of(players[0]))
    assert response.status_code == 409 and "Runde 1 ist geschlossen" in text(response)


def other_code(code: str) -> str:
    return code[:-1] + ("A" if code[-1] != "A" else "B")


@pytest.mark.parametrize("body", [
    {}, {"form_token": ""}, {"form_token": "f" * 32}, {"csrf_token": "f" * 32},
    "the token of another link", "the token twice, the first wrong",
])
def test_a_bad_or_missing_token_is_refused_by_the_route(client, players, body):
    code = players[0]
    client.get(f"/f/{code}")  # the phone holds a session (as a cross-site POST would carry)
    if body == "the token of another link":
        body = token_of(other_code(code))
    elif body == "the token twice, the first wrong":
        body = f"form_token={'f' * 32}&form_token={token_of(code)['form_token']}"
    paths = Paths()
    response = client.post(f"/f/{code}/start", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "Reload the page" in text(response)
    assert paths.counts() == (0, 1)
    assert clock(code) == (None, None)


def test_a_cross_site_post_cannot_press_start_for_a_player(client, players):
    """Another site's page posts the form for a player whose browser holds the session: it has no
    way to the link's token without the code (and whoever has the code is the player)."""
    code = players[0]
    client.get(f"/f/{code}")
    for body in ({}, {"form_token": stored_forms.form_token("")},
                 {"csrf_token": "", "form_token": "x"}):
        response = client.post(f"/f/{code}/start", data=body, headers={
            "Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"})
        assert response.status_code == 400 and "Reload the page" in text(response)
    assert clock(code) == (None, None)


def test_a_page_from_before_presses_with_the_session_token(client, players):
    """A Start page rendered before the form carried the link's token: the route takes the
    session's CSRF token as before."""
    code = players[0]
    token = session_token(client)
    paths = Paths()
    assert client.post(f"/f/{code}/start", data={"csrf_token": token}).status_code == 303
    assert paths.counts() == (0, 1)
    assert clock(code)[0] is not None


def test_an_unknown_link_and_other_bodies_get_the_routes_answer(client, players):
    unknown = "Z" * 22
    paths = Paths()
    response = client.post(f"/f/{unknown}/start", data=token_of(unknown))
    assert response.status_code == 404 and "This link is not valid" in text(response)
    code = players[0]
    garbled = client.post(f"/f/{code}/start",
                          data=f"form_token={token_of(code)['form_token']}&x=%FF".encode(),
                          content_type="application/x-www-form-urlencoded")
    assert garbled.status_code == 400 and "garbled" in text(garbled)
    assert clock(code) == (None, None)
    multipart = client.post(f"/f/{code}/start", data=token_of(code),
                            content_type="multipart/form-data")
    assert multipart.status_code == 303  # the route checks the same token
    assert paths.counts() == (0, 3)
    assert clock(code)[0] is not None


@pytest.mark.config(RATELIMIT_ENABLED=True)
@pytest.mark.parametrize("last", ["link token", "session token"])
def test_the_fast_path_and_the_route_count_against_one_limit(client, players, last):
    code = players[0]
    token = session_token(client)
    statuses = [client.post(f"/f/{code}/start", data=token_of(code)).status_code
                for _ in range(15)]
    statuses += [client.post(f"/f/{code}/start", data={"csrf_token": token}).status_code
                 for _ in range(15)]
    assert statuses == [303] * 30
    over = client.post(f"/f/{code}/start",
                       data=token_of(code) if last == "link token" else {"csrf_token": token})
    assert over.status_code == 429 and "Too many" in text(over)
    # another player behind the same address is not affected
    assert client.post(f"/f/{players[1]}/start", data=token_of(players[1])).status_code == 303


def test_an_error_before_the_write_hands_the_press_to_the_route(client, players, monkeypatch):
    from quiz.web import start_path

    def clock_fails():
        raise RuntimeError("clock source gone")
    monkeypatch.setattr(start_path, "utcnow", clock_fails)
    paths = Paths()
    assert client.post(f"/f/{players[0]}/start", data=token_of(players[0])).status_code == 303
    assert paths.counts() == (0, 1)
    assert clock(players[0])[0] is not None


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock; PostgreSQL drops backends")
@pytest.mark.config(SQLITE_BUSY_TIMEOUT_MS=100)
def test_a_locked_database_gives_the_routes_503_and_the_press_again_counts(client, players):
    code = players[0]
    blocker = sqlite3.connect(db.engine.url.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock past the busy timeout
    paths = Paths()
    try:
        busy = client.post(f"/f/{code}/start", data=token_of(code))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    assert "press the button again" in text(busy)
    assert paths.counts() == (0, 1)
    assert clock(code) == (None, None)
    assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    assert clock(code)[0] is not None


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock")
@pytest.mark.config(SQLITE_BUSY_TIMEOUT_MS=2000)
def test_a_press_waits_for_sqlites_lock_without_holding_the_process(client, players, monkeypatch):
    """Another process (the worker storing forms, say) holds SQLite's write lock: in a web process
    the press tries again between cooperative sleeps, so the process's other requests (here, the
    greenlet that lets the lock go) keep running. In SQLite's busy handler the whole process would
    wait out the busy timeout: every request of it held, then a 503."""
    from quiz import group_commit
    monkeypatch.setattr(group_commit, "under_gevent", lambda: True)  # as in a gevent web process
    code = players[0]
    blocker = sqlite3.connect(db.engine.url.database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    pressed, released = [], []

    def release_soon():
        gevent.sleep(0.2)  # the press is waiting for the lock by now
        released.append(list(pressed))  # ran while the press was still waiting
        blocker.execute("ROLLBACK")

    helper = gevent.spawn(release_soon)
    pressed.append(client.post(f"/f/{code}/start", data=token_of(code)).status_code)
    helper.join()
    blocker.close()
    assert released == [[]] and pressed == [303]
    assert clock(code)[0] is not None


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres)")
@pytest.mark.config(DATABASE_PING_IDLE_SECONDS=3600)  # as in a rush: no check before use
def test_a_dropped_connection_is_retried_and_the_clock_starts_once(client, players):
    import sqlalchemy
    code = players[0]
    db.session.commit()
    admin = sqlalchemy.create_engine(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
    try:
        with admin.connect() as connection:
            cut = connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid()").all()
    finally:
        admin.dispose()
    assert len(cut) >= 1
    paths = Paths()
    assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    assert paths.counts() == (1, 0)  # retried inside the write, on a fresh connection
    started = clock(code)
    assert started[0] is not None
    assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    assert clock(code) == started


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres)")
def test_a_press_is_two_round_trips_and_a_repeat_one(client, players):
    """On PostgreSQL the press's read and its UPDATE are each their own transaction: no BEGIN
    before them, no COMMIT after (quiz/start_press.py)."""
    code = players[0]
    paths = Paths()
    with round_trips(db.engine) as first:
        assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    with round_trips(db.engine) as repeat:
        assert client.post(f"/f/{code}/start", data=token_of(code)).status_code == 303
    assert paths.counts() == (2, 0)
    assert [trip.split()[0] for trip in first] == ["SELECT", "UPDATE"], first
    assert [trip.split()[0] for trip in repeat] == ["SELECT"], repeat
    started_at, ends = clock(code)
    assert ends - started_at == timedelta(seconds=60)


# In a web process (under gevent, PostgreSQL) a press reads its link with the other presses' and
# submits' of the same moment: the submit's group read (quiz/answers.py `grouped_link`).
@pytest.fixture
def batched(app):
    state(app).submit_writer.batched = True  # as in a gevent web process


def at_once(*requests):
    greenlets = [gevent.spawn(request) for request in requests]
    gevent.joinall(greenlets, raise_error=True)
    return [g.value for g in greenlets]


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_presses_and_a_submit_at_once_read_their_links_in_one_query(client, players, batched):
    group = reader().group(answers._statements()["links"], "code")
    grace, alan = players
    client.post(f"/f/{alan}/start", data=token_of(alan))
    press, answer = token_of(grace), answer_data(client, alan)
    db.session.commit()
    before, paths = group.queries, Paths()
    with round_trips(db.engine) as trips:
        responses = at_once(lambda: client.post(f"/f/{grace}/start", data=press),
                            lambda: client.post(f"/f/{grace}/start", data=press),  # doubled
                            lambda: client.post(f"/f/{alan}/submit", data=answer))
    assert group.queries == before + 1
    assert [r.status_code for r in responses] == [303, 303, 303]
    assert paths.counts() == (2, 0)
    # the group's read (no press nor the submit reads its link alone), then one UPDATE a press
    # (the doubled one changes nothing), and the submit's group commit
    assert not [trip for trip in trips if trip.startswith("SELECT form_link")], trips
    assert sum(trip.startswith("UPDATE form_link") for trip in trips) == 2, trips
    started_at, ends = clock(grace)
    assert ends - started_at == timedelta(seconds=60)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 1


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_presses_whose_group_query_failed_read_alone(client, players, batched, monkeypatch):
    group = reader().group(answers._statements()["links"], "code")

    def broken(connection, params):
        raise OperationalError("SELECT", params, Exception("server closed the connection"))
    monkeypatch.setattr(group.many, "all", broken)
    paths, presses = Paths(), {code: token_of(code) for code in players}
    responses = at_once(*[lambda code=code: client.post(f"/f/{code}/start", data=presses[code])
                          for code in players])
    assert [r.status_code for r in responses] == [303, 303]
    assert paths.counts() == (2, 0)
    assert all(clock(code)[0] is not None for code in players)


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_an_unknown_code_among_grouped_presses_is_not_found(client, players, batched):
    unknown = "Z" * 22
    known, guessed = token_of(players[0]), token_of(unknown)
    responses = at_once(lambda: client.post(f"/f/{players[0]}/start", data=known),
                        lambda: client.post(f"/f/{unknown}/start", data=guessed))
    assert [r.status_code for r in responses] == [303, 404]
