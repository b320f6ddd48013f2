"""Security controls: headers and CSP, rate limits keyed by link (not only by address)."""
import time

import pytest
from sqlalchemy import select

from quiz.extensions import db
from quiz.models import FormLink

from .helpers import csrf_from, login, session_token


def test_pages_carry_a_csp_without_unsafe_eval_and_no_referrer(client):
    response = client.get("/register")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.get_data(as_text=True)  # nothing inline for the CSP to block


def test_personal_pages_are_not_cached_by_shared_caches(client, load_bank, make_participant):
    load_bank()
    participant = make_participant()
    code = db.session.scalar(select(FormLink.code).where(FormLink.participant_id == participant.id))
    assert client.get(f"/f/{code}").headers["Cache-Control"] == "no-store"
    # The report may be reused by this browser only (private), briefly, and is revalidated by ETag.
    cache = client.get(f"/r/{participant.report_code}").headers["Cache-Control"]
    assert cache.startswith("private, max-age=") and "public" not in cache


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_start_is_limited_per_link_not_per_address(client, load_bank, make_participant,
                                                   api_headers):
    from sqlalchemy import select

    from quiz.extensions import db
    from quiz.models import FormLink
    load_bank()
    ids = [make_participant().id for _ in range(2)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    codes = [db.session.scalar(select(FormLink.code).where(FormLink.participant_id == i,
                                                           FormLink.challenge_id == 1))
             for i in ids]
    token = session_token(client)
    statuses = [client.post(f"/f/{codes[0]}/start", data={"csrf_token": token}).status_code
                for _ in range(31)]
    assert statuses[:30] == [303] * 30 and statuses[30] == 429
    # Another player behind the same address is not affected.
    assert client.post(f"/f/{codes[1]}/start", data={"csrf_token": token}).status_code == 303


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_registration_limit_is_per_address_and_phone(client):
    body = {"name": "X", "email": "x@example.com", "phone": "+14155550100", "consent": True}
    statuses = [client.post("/api/register",
                            json={**body, "email": f"x{i}@example.com"}).status_code
                for i in range(11)]
    assert statuses[0] == 201 and statuses[10] == 429
    assert "Too many tries" in client.post("/api/register", json=body).get_json()["message"]
    other = client.post("/api/register",
                        json={**body, "email": "y@example.com", "phone": "+14155550101"})
    assert other.status_code == 201


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_a_limited_request_makes_one_redis_round_trip_with_the_same_headers(
        client, app, load_bank, make_participant, api_headers):
    """The submit's limit (and every other): counted and its headers answered by one script, not
    the script, a GET and a TTL (three yields a submit under gevent)."""
    import redis
    load_bank()
    code = db.session.scalar(select(FormLink.code).where(
        FormLink.participant_id == make_participant().id, FormLink.challenge_id == 1))
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    token = session_token(client)
    server = redis.Redis.from_url(app.config["REDIS_URL"])

    def calls() -> dict:
        stats = server.info("commandstats")  # (a script's own commands count too: its TTL)
        return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
                for name in ("evalsha", "eval", "get", "ttl", "script|load")}
    first = client.post(f"/f/{code}/start", data={"csrf_token": token})  # loads the script
    assert first.status_code == 303
    assert first.headers["X-RateLimit-Limit"] == "30"
    assert first.headers["X-RateLimit-Remaining"] == "29"
    assert 0 <= int(first.headers["X-RateLimit-Reset"]) - time.time() <= 61
    before = calls()
    second = client.post(f"/f/{code}/start", data={"csrf_token": token})
    after = calls()
    # one script run, no GET, and no TTL but the script's own
    assert {name: after[name] - before[name] for name in after} == {
        "evalsha": 1, "eval": 0, "get": 0, "ttl": 1, "script|load": 0}
    assert second.headers["X-RateLimit-Remaining"] == "28"
    assert 0 <= int(second.headers["X-RateLimit-Reset"]) - time.time() <= 61


HUGE = "99999999999999999999"


@pytest.mark.parametrize("method, url", [
    ("get", f"/api/leaderboard/{HUGE}"), ("get", "/api/leaderboard/2147483648"),
    ("post", f"/api/admin/start-challenge/{HUGE}"), ("get", f"/api/admin/sms-progress/{HUGE}"),
    ("post", f"/admin/rounds/{HUGE}/start"), ("get", f"/admin/rounds/{HUGE}/results"),
    ("post", f"/admin/participants/{HUGE}/disqualify"),
])
def test_an_id_past_what_the_database_holds_is_a_404(client, load_bank, api_headers, method, url):
    load_bank()
    login(client)
    token = csrf_from(client.get("/admin/").get_data(as_text=True))
    response = getattr(client, method)(url, headers=api_headers, data={"csrf_token": token})
    assert response.status_code == 404
    assert "nothing at this address" in response.get_data(as_text=True)


def test_the_largest_id_a_column_holds_still_reaches_the_view(client, load_bank):
    load_bank()
    response = client.get("/api/leaderboard/2147483647")
    assert response.status_code == 404 and "no round 2147483647" in response.get_json()["message"]


@pytest.mark.parametrize("body", [b"[" * 30_000, b'{"name": ' + b"{" * 30_000,
                                  b'{"name": "Ada", "x": ' + b"[" * 33 + b"]" * 33 + b"}"])
def test_deeply_nested_json_is_refused_before_parsing(client, body):
    response = client.post("/api/register", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.get_json()["message"]


def test_brackets_inside_strings_are_not_nesting(client, load_bank):
    load_bank()
    response = client.post("/api/register", json={
        "name": "[" * 40, "email": "a@example.com", "phone": "+14155550100", "consent": True,
        "company": "{\"[" * 30})
    assert response.status_code == 201, response.get_json()
