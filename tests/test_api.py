"""The JSON API: auth, rounds, SMS progress, outbox, leaderboard."""
import pytest
from sqlalchemy import func, select

from quiz.extensions import db
from quiz.models import AuditEntry, Challenge, FormLink, Message, Participant

from .helpers import start, submit


@pytest.mark.parametrize("headers, status, message", [
    ({}, 401, "Authorization: Bearer"),
    ({"Authorization": "Basic abc"}, 401, "Authorization: Bearer"),
    ({"Authorization": "Bearer wrong"}, 403, "not valid"),
])
@pytest.mark.parametrize("method, path", [
    ("post", "/api/admin/start-challenge/1"), ("post", "/api/admin/end-challenge/1"),
    ("get", "/api/admin/sms-progress/1"), ("get", "/api/admin/outbox")])
def test_admin_api_needs_the_token(client, load_bank, headers, status, message, method, path):
    load_bank()
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == status
    assert message in response.get_json()["message"]
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "draft"


def test_start_sends_links_to_players_in_the_game(client, load_bank, make_participant, api_headers,
                                                  run_jobs):
    load_bank()
    phones = sorted(make_participant().phone for _ in range(3))
    response = client.post("/api/admin/start-challenge/1", headers=api_headers)
    assert response.status_code == 200 and response.get_json()["status"] == "open"
    assert (client.get("/api/admin/sms-progress/1", headers=api_headers).get_json()["status"]
            == "preparing")
    run_jobs()
    progress = client.get("/api/admin/sms-progress/1", headers=api_headers).get_json()
    assert {k: progress[k] for k in ("status", "total", "sent", "failed", "progress_percent")} == {
        "status": "completed", "total": 3, "sent": 3, "failed": 0, "progress_percent": 100.0}
    assert progress["eta_seconds"] == 0 and progress["rate_per_second"] > 0
    messages = client.get("/api/admin/outbox", headers=api_headers).get_json()["messages"]
    assert sorted(m["to"] for m in messages) == phones
    assert all(m["challenge"] == 1 and m["status"] == "sent" and "/f/" in m["body"]
               for m in messages)
    assert set(messages[0]) >= {"to", "body", "challenge", "status", "created_at"}
    run_jobs()  # a job that runs again never texts anyone twice
    assert db.session.scalar(select(func.count()).select_from(Message)
                             .where(Message.channel == "sms")) == 3


@pytest.mark.parametrize("setup, call, status, message", [
    ([], "end-challenge/1", 409, "not open"),
    (["start-challenge/1"], "start-challenge/1", 409, "already open"),
    ([], "start-challenge/2", 409, "Round 1 comes first"),
    (["start-challenge/1"], "start-challenge/2", 409, "Round 1 comes first"),
    ([], "start-challenge/9", 404, "There is no round 9"),
    (["start-challenge/1", "end-challenge/1"], "end-challenge/1", 409, "closed, not open"),
])
def test_round_transitions_are_guarded(client, load_bank, make_participant, api_headers, setup,
                                       call, status, message):
    load_bank()
    make_participant()
    for step in setup:
        assert client.post(f"/api/admin/{step}", headers=api_headers).status_code == 200
    before = [(c.number, c.status)
              for c in db.session.scalars(select(Challenge).order_by(Challenge.number))]
    response = client.post(f"/api/admin/{call}", headers=api_headers)
    assert response.status_code == status
    assert message in response.get_json()["message"]
    db.session.expire_all()
    assert [(c.number, c.status)
            for c in db.session.scalars(select(Challenge).order_by(Challenge.number))] == before


def test_end_eliminates_and_leaderboard_shows_it(client, load_bank, make_participant, api_headers):
    load_bank()
    players = [make_participant(f"P{i}") for i in range(5)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    codes = {}
    for participant in players:
        from quiz.models import FormLink
        codes[participant.id] = db.session.scalar(select(FormLink.code).join(Challenge).where(
            FormLink.participant_id == participant.id, Challenge.number == 1))
    picks = [[["S3"], ["RDS", "DynamoDB"]], [["S3"], ["RDS"]], [["EC2"], ["RDS", "DynamoDB"]],
             [["EC2"], ["RDS"]]]
    for participant, pick in zip(players, picks):  # the fifth never answers
        start(client, codes[participant.id])
        submit(client, codes[participant.id], pick)
    # While the round is open the public gets counts only; staff with the token, the standings.
    assert client.get("/api/leaderboard/1").get_json() == {
        "challenge": 1, "entries": [], "status": "open", "submitted": 4, "players": 5}
    live = client.get("/api/leaderboard/1", headers=api_headers).get_json()
    assert ([e["rank"] for e in live["entries"]] == [1, 2, 3, 4] and live["status"] == "open"
            and not any(e["eliminated"] for e in live["entries"]))
    wrong = client.get("/api/leaderboard/1", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "entries" not in wrong.get_json()
    result = client.post("/api/admin/end-challenge/1", headers=api_headers).get_json()
    assert result == {"challenge": 1, "status": "closed", "submitted": 4, "kept": 2,
                      "eliminated_unanswered": 1, "eliminated_ranked_out": 2, "winner_id": None}
    board = client.get("/api/leaderboard/1").get_json()
    assert board["challenge"] == 1
    assert [(e["name"], e["score"], e["rank"], e["eliminated"], e["elimination_challenge"])
            for e in board["entries"]] == [
        ("P0", 3, 1, False, None), ("P2", 2, 2, False, None), ("P1", 1, None, True, 1),
        ("P3", 0, None, True, 1), ("P4", None, None, True, 1)]
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 2


def test_leaderboard_of_unknown_round_is_404(client):
    response = client.get("/api/leaderboard/7")
    assert response.status_code == 404
    assert "no round 7" in response.get_json()["message"]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=1000000"])
def test_outbox_limit_is_checked(client, api_headers, query):
    response = client.get("/api/admin/outbox" + query, headers=api_headers)
    assert response.status_code == 400
    assert "limit must be between" in response.get_json()["message"]


def test_unknown_api_path_and_method_answer_json(client):
    assert client.get("/api/nothing").get_json()["error"] == "not_found"
    response = client.get("/api/register")
    assert response.status_code == 405 and "does not take" in response.get_json()["message"]


# --- LINKS_IN_REGISTRATION: round links by SMS only --------------------------------------------

JOIN = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100", "company": "Acme",
        "consent": True}


def test_links_in_registration_follows_the_sms_backend_unless_set(monkeypatch):
    from quiz.config import _optional_flag, links_in_registration
    assert links_in_registration({"SMS_BACKEND": "outbox", "LINKS_IN_REGISTRATION": None})
    assert not links_in_registration({"SMS_BACKEND": "sns", "LINKS_IN_REGISTRATION": None})
    assert links_in_registration({"SMS_BACKEND": "sns", "LINKS_IN_REGISTRATION": True})
    assert not links_in_registration({"SMS_BACKEND": "outbox", "LINKS_IN_REGISTRATION": False})
    for value, flag in (("", None), ("false", False), ("0", False), ("true", True), ("1", True)):
        monkeypatch.setenv("LINKS_IN_REGISTRATION", value)
        assert _optional_flag("LINKS_IN_REGISTRATION") is flag
    monkeypatch.delenv("LINKS_IN_REGISTRATION")
    assert _optional_flag("LINKS_IN_REGISTRATION") is None


@pytest.mark.config(SMS_BACKEND="sns")
def test_with_the_sns_backend_links_are_off_by_default(app, client, load_bank):
    load_bank()
    assert app.config["LINKS_IN_REGISTRATION"] is False
    body = client.post("/api/register", json=JOIN).get_json()
    assert set(body) == {"user_id", "report_url"}


@pytest.mark.config(LINKS_IN_REGISTRATION=False)
def test_links_by_sms_only_registration_answers_without_them_but_staff_get_them(
        client, load_bank, api_headers, open_round):
    load_bank()
    response = client.post("/api/register", json=JOIN)
    assert response.status_code == 201 and set(response.get_json()) == {"user_id", "report_url"}
    staff = client.post("/api/register", headers=api_headers, json={
        **JOIN, "email": "bo@example.com", "phone": "+14155550101"}).get_json()
    assert (set(staff["form_urls"]) == {"1", "2"}
            and staff["current_form_url"] == staff["form_urls"]["1"])
    # a wrong token is refused before anyone is registered
    wrong = client.post("/api/register", headers={"Authorization": "Bearer nope"}, json={
        **JOIN, "email": "cy@example.com", "phone": "+14155550102"})
    assert wrong.status_code == 403 and "not valid" in wrong.get_json()["message"]
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 2
    # Nor on the page after registering, or later on the player's page: only by SMS.
    report = response.get_json()["report_url"].removeprefix("http://quiz.test")
    open_round()
    codes = db.session.scalars(select(FormLink.code).where(
        FormLink.participant_id == response.get_json()["user_id"])).all()
    for url in (report + "?welcome=1", report):
        page = client.get(url).get_data(as_text=True)
        assert "/f/" not in page and not any(code in page for code in codes)
        assert "1. Warm-up" in page  # the rounds are still listed


def test_links_in_registration_on_keeps_them_in_the_answer_and_on_the_page(client, load_bank):
    load_bank()
    body = client.post("/api/register", json=JOIN).get_json()
    assert set(body["form_urls"]) == {"1", "2"} and body["current_form_url"] == body[
        "form_urls"]["1"]
    page = client.get(body["report_url"].removeprefix("http://quiz.test")).get_data(as_text=True)
    assert all(url.removeprefix("http://quiz.test") in page for url in body["form_urls"].values())
