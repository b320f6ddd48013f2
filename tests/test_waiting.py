"""The shared status waiting phones poll (quiz/waiting.py, GET /api/status): its contract, when its
version changes, that it costs no database work while nothing changes, and that it survives Redis
losing it."""
import json
import re

import pytest
import redis
from sqlalchemy import event, insert, select

from quiz import create_app, waiting
from quiz.clock import utcnow
from quiz.config import ConfigError, TestConfig
from quiz.extensions import db
from quiz.helpdesk import ask_for_help
from quiz.models import Challenge, Participant

from .helpers import make_config



def status(client, etag: str | None = None):
    return client.get("/api/status", headers={"If-None-Match": etag} if etag else {})


def test_status_says_which_round_is_open_with_an_etag_and_no_cookie(client, load_bank,
                                                                    open_round):
    load_bank()
    first = status(client)
    body = first.get_json()
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert set(body) == {"version", "open_round", "last_closed_round", "poll_seconds",
                         "rounds_version", "spread_seconds", "result_spread_seconds"}
    assert body["open_round"] is None and body["last_closed_round"] is None
    assert body["poll_seconds"] == 3  # a small room asks often
    # … and fetches its pages at once after a change: nobody to spread them from
    assert body["spread_seconds"] == body["result_spread_seconds"] == 0
    assert first.headers["ETag"] == f'"{body["version"]}"'
    assert first.headers["Cache-Control"] == "public, max-age=1"
    assert "Set-Cookie" not in first.headers
    open_round()
    assert status(client).get_json()["open_round"] == 1


def test_the_version_the_phone_holds_gets_a_304_with_no_body(client, load_bank):
    load_bank()
    etag = status(client).headers["ETag"]
    again = status(client, etag)
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and "Set-Cookie" not in again.headers
    assert status(client, f"W/{etag}").status_code == 304  # a weak match is a match
    assert status(client, '"other", ' + etag).status_code == 304
    assert status(client, '"an-older-version"').status_code == 200
    head = client.head("/api/status")
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == etag


def test_only_reads_are_answered(client):
    refused = client.post("/api/status")
    assert refused.status_code == 405


@pytest.mark.config(RESULTS_DELAY_SECONDS=60)
def test_the_version_changes_on_open_close_and_reopen(client, load_bank, open_round,
                                                      api_headers):
    load_bank()
    seen = [status(client).get_json()]
    open_round()
    seen.append(status(client).get_json())
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    seen.append(status(client).get_json())
    assert client.post("/api/admin/reopen-challenge/1", headers=api_headers).status_code == 200
    seen.append(status(client).get_json())
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    seen.append(status(client).get_json())
    assert [(s["open_round"], s["last_closed_round"]) for s in seen] == [
        (None, None), (1, None), (None, 1), (1, None), (None, 1)]
    versions = [s["version"] for s in seen]
    assert all(a != b for a, b in zip(versions, versions[1:]))
    # Closed again later than the first time: a phone that saw the first close fetches again.
    assert versions[4] != versions[2]
    # Reopened, the round is as it was before its close (the version is a hash of that state): a
    # phone that never saw the close has nothing to fetch.
    assert versions[3] == versions[1]


def test_a_change_made_outside_the_console_is_seen_too(client, load_bank):
    """Whatever path changes a round (here the model itself, as a script would), waiting phones
    hear it once it commits, and not before."""
    load_bank()
    before = status(client).headers["ETag"]
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    challenge.open(utcnow())
    db.session.flush()
    assert status(client, before).status_code == 304  # not committed yet
    db.session.rollback()
    assert status(client, before).status_code == 304  # rolled back: nothing to see
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    challenge.open(utcnow())
    db.session.commit()
    assert status(client, before).get_json()["open_round"] == 1


@pytest.mark.config(STATUS_CACHE_SECONDS=0)
def test_two_app_instances_sharing_redis_give_the_same_version(app, client, load_bank, open_round,
                                                               tmp_path, redis_url):
    load_bank()
    same = {name: app.config[name] for name in ("SQLALCHEMY_DATABASE_URI", "STORAGE_URL")}
    second = create_app(type("Other", (TestConfig,), dict(
        same, INSTANCE_PATH=str(tmp_path / "other"), REDIS_URL=redis_url,
        STATUS_CACHE_SECONDS=0)))
    other = second.test_client()
    try:
        assert status(client).headers["ETag"] == status(other).headers["ETag"]
        open_round()  # through the first instance
        changed = status(other)
        assert changed.get_json()["open_round"] == 1
        assert changed.headers["ETag"] == status(client).headers["ETag"]
    finally:
        with second.app_context():
            db.engine.dispose()


def count_statements(app):
    statements = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    return statements


@pytest.mark.parametrize("cache_seconds", [0, 1])
def test_polling_costs_no_database_query_while_nothing_changes(app, client, load_bank, open_round,
                                                               cache_seconds):
    """With no local copy (each request reads Redis) and with the default one."""
    app.config["STATUS_CACHE_SECONDS"] = cache_seconds
    load_bank()
    open_round()
    etag = status(client).headers["ETag"]  # computed once after the change
    statements = count_statements(app)
    answers = [status(client, etag).status_code for _ in range(200)]
    answers += [status(client).status_code for _ in range(20)]
    assert answers == [304] * 200 + [200] * 20
    assert statements == []


@pytest.mark.config(STATUS_CACHE_SECONDS=0)
def test_redis_losing_the_status_computes_it_again_once(app, client, load_bank, open_round):
    load_bank()
    open_round()
    before = status(client).get_json()
    redis.Redis.from_url(app.config["REDIS_URL"]).flushall()
    statements = count_statements(app)
    after = [status(client).get_json() for _ in range(5)]
    assert after == [before] * 5  # the same version: nothing changed, no phone fetches its page
    assert len(statements) == 2  # the rounds and the players, once: stored again for the others


@pytest.mark.config(STATUS_CACHE_SECONDS=0)
def test_an_older_computation_never_overwrites_a_newer_change(app, client, load_bank,
                                                              monkeypatch):
    """A process reads the database, a round opens and commits, then the first process would store
    what it read: the generation it read first has moved, so it is not stored."""
    load_bank()
    compute = waiting.compute_status

    def compute_then_the_round_opens():
        stale = compute()
        monkeypatch.setattr(waiting, "compute_status", compute)
        challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
        challenge.open(utcnow())
        db.session.commit()
        return stale
    monkeypatch.setattr(waiting, "compute_status", compute_then_the_round_opens)
    assert status(client).get_json()["open_round"] is None  # what that request read
    assert status(client).get_json()["open_round"] == 1  # not the stale copy


@pytest.mark.config(REDIS_URL="redis://127.0.0.1:1/0", STATUS_CACHE_SECONDS=0)
def test_without_redis_the_status_comes_from_the_database(client, load_bank, open_round):
    load_bank()
    answer = status(client)
    assert answer.status_code == 200 and answer.get_json()["open_round"] is None


@pytest.mark.parametrize("players, seconds", [(0, 3), (1200, 3), (1201, 4), (2000, 5),
                                              (4000, 10), (10_000, 10), (100_000, 10)])
def test_the_cadence_grows_with_the_room(players, seconds):
    assert waiting.poll_seconds(players) == seconds
    # total polling stays bounded: about 400 a second below the 10 s cap
    assert players / seconds <= max(400, players / 10)


@pytest.mark.config(STATUS_CACHE_SECONDS=0)
def test_a_big_room_is_told_to_poll_less_often(app, client, load_bank):
    load_bank()
    assert status(client).get_json()["poll_seconds"] == 3
    db.session.execute(insert(Participant), [
        {"name": f"P{i}", "email": f"p{i}@example.com", "phone": f"+1415{i:07d}", "company": "",
         "consent": True, "report_code": f"report-code-{i:08d}", "created_at": utcnow()}
        for i in range(2000)])
    db.session.commit()
    # Registrations don't drop the status: the room's size shows when it is next computed (a round
    # changes, or STATUS_TTL_SECONDS pass).
    before = status(client).get_json()
    redis.Redis.from_url(app.config["REDIS_URL"]).delete(waiting.STATUS_KEY)
    answer = status(client).get_json()
    assert answer["poll_seconds"] == 5
    # … and spreads its page fetches after a change over longer: 2,000 pages at ~250 a second
    assert answer["spread_seconds"] == answer["result_spread_seconds"] == 8
    # The status changed (its ETag), but no page did: no phone fetches its page for this.
    assert answer["version"] != before["version"]
    assert answer["rounds_version"] == before["rounds_version"]


@pytest.mark.parametrize("players, spread, result_spread", [
    (0, 0, 0), (1, 1, 1), (250, 1, 1), (251, 2, 2), (2000, 8, 8), (7_500, 30, 30),
    (10_000, 30, 40), (15_000, 30, 60), (100_000, 30, 60)])
def test_the_spread_grows_with_the_room_within_its_bounds(players, spread, result_spread):
    """The room's page fetches after a change come at about 250 a second: a round's questions
    within 30 s at most, a result (nobody races a clock for it) within 60 s."""
    body = json.loads(waiting.build_status([(1, "open", None, None)], players, 250).body)
    assert (body["spread_seconds"], body["result_spread_seconds"]) == (spread, result_spread)


@pytest.mark.config(STATUS_PAGES_PER_SECOND="1000", STATUS_CACHE_SECONDS=0)
def test_a_box_that_serves_more_pages_spreads_them_less(client, player):
    assert status(client).get_json()["spread_seconds"] == 1
    assert waiting.build_status([], 4000, 1000).body == waiting.build_status([], 4000, 1000.0).body
    assert json.loads(waiting.build_status([], 4000, 1000).body)["spread_seconds"] == 4


@pytest.mark.parametrize("value", ["0", "-5", "fast", "", "inf"])
def test_a_page_rate_that_is_no_rate_is_refused_at_start(tmp_path, redis_url, value):
    with pytest.raises(ConfigError, match="STATUS_PAGES_PER_SECOND=.*a number above 0"):
        create_app(make_config(tmp_path, redis_url, STATUS_PAGES_PER_SECOND=value))


def test_waiting_pages_carry_the_version_they_were_rendered_at(client, player, open_round):
    _, links = player
    version = status(client).get_json()["version"]
    rounds = status(client).get_json()["rounds_version"]
    page = client.get(f"/f/{links[1]}").get_data(as_text=True)
    assert f'data-status-version="{version}"' in page and 'data-poll-seconds="3"' in page
    assert (f'data-rounds-version="{rounds}" data-round="1" data-state="not_open"' in page)
    # what the phone says at once when the status tells it the round opened, for screen readers too
    assert re.search(r'<div class="round-news" role="status" aria-live="polite"\s+'
                     r'data-opened="Round 1 is open — loading your questions…"', page)
    assert re.search(r'<button type="button" class="[^"]*round-now" hidden>Show my questions now',
                     page)
    assert "js/waiting.js" in page
    # without JavaScript: the page reloads itself at the room's cadence
    assert re.search(r'<noscript><meta http-equiv="refresh" content="3"></noscript>', page)
    open_round()
    ready = client.get(f"/f/{links[1]}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Ready?" in ready and "data-status-version" not in ready
    assert json.loads(status(client).data)["version"] != version


def count_reads(monkeypatch) -> list:
    """Every statement meanwhile, the page's row read (`links.page_row`, through the driver on
    PostgreSQL, where SQLAlchemy's events don't see it) as one entry "link row"."""
    from quiz.web import page_path
    statements, row = [], page_path.page_row

    def counted(code):
        statements.append("link row")
        return row(code)
    monkeypatch.setattr(page_path, "page_row", counted)
    event.listen(db.engine, "before_cursor_execute", lambda *args: args[2].startswith(
        "SELECT form_link.code, form_link.participant_id") or statements.append(args[2]))
    return statements


def test_the_herd_after_start_costs_one_query_a_page(app, client, player, open_round,
                                                     monkeypatch):
    """Every phone opens its link within seconds of "Start round": the link, its player, its round
    whether they answered and asked for help come in one query, one plain row (the round's
    question count is read once per process after it opened: quiz/links.round_facts)."""
    participant, links = player
    open_round()
    status(client)  # the shared status, computed once after the change
    client.get("/register")  # the event's look: read by each process once every 2 s, not a page
    statements = count_reads(monkeypatch)
    # the first page of the round in this process: the link's row before Flask, the round's
    # question count (read once per process), then Flask's view (it renders the page and keeps a
    # copy) reads the link's objects
    client.get(f"/f/{links[1]}")
    assert len(statements) == 4 and "FROM question" in statements[2], statements
    statements.clear()
    page = client.get(f"/f/{links[1]}")
    assert "Ready?" in page.get_data(as_text=True) and statements == ["link row"]
    statements.clear()
    client.get(f"/f/{links[1]}", headers={"HX-Request": "true"})
    assert len(statements) == 2  # the first fragment of the process: Flask's too, and kept
    statements.clear()
    client.get(f"/f/{links[1]}", headers={"HX-Request": "true"})
    assert statements == ["link row"]
    # Someone who asked the help desk sees their requests: Flask's page (the row, the link's
    # objects, the requests)
    ask_for_help(participant, "other", "Where is my link?", utcnow())
    db.session.commit()
    statements.clear()
    page = client.get(f"/f/{links[1]}").get_data(as_text=True)
    assert "Where is my link?" in page and len(statements) == 3
