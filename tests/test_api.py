"""The JSON API: auth, rounds, SMS progress, outbox, leaderboard."""
import pytest
from sqlalchemy import func, select

from quiz.extensions import db
from quiz.models import AuditEntry, Challenge, Message

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
    assert db.session.scalar(select(func.count()).select_from(Message)) == 3


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
    live = client.get("/api/leaderboard/1").get_json()
    assert ([e["rank"] for e in live["entries"]] == [1, 2, 3, 4]
            and not any(e["eliminated"] for e in live["entries"]))
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
