"""The console: login, start and end rounds with CSRF-protected forms, audit log."""
import html

from sqlalchemy import select

from quiz.extensions import db
from quiz.models import AuditEntry, Challenge

from .conftest import csrf_from, post_form


def login(client, password="test-password"):
    return post_form(client, "/admin/login", "/admin/login", {"username": "admin", "password": password})


def test_console_needs_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_wrong_password_is_refused(client):
    response = login(client, "nope")
    assert response.status_code == 401
    assert "don't match" in html.unescape(response.get_data(as_text=True))
    assert client.get("/admin/").status_code == 302


def test_organizer_runs_a_round_from_the_console(client, load_bank, make_participant):
    load_bank()
    make_participant("Lin")
    assert login(client).status_code == 303
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "Start round 1" in dashboard
    started = client.post("/admin/rounds/1/start", data={"csrf_token": csrf_from(dashboard)}, follow_redirects=True)
    assert "Round 1 is open" in started.get_data(as_text=True)
    again = client.post("/admin/rounds/1/start", data={"csrf_token": csrf_from(dashboard)}, follow_redirects=True)
    assert "already open" in again.get_data(as_text=True)
    ended = client.post("/admin/rounds/1/end", data={"csrf_token": csrf_from(dashboard)}, follow_redirects=True)
    assert "eliminations are done" in ended.get_data(as_text=True)
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "closed"
    actions = [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["start round", "end round"]
    assert "end round" in client.get("/admin/").get_data(as_text=True)


def test_console_actions_need_csrf(client, load_bank):
    load_bank()
    login(client)
    response = client.post("/admin/rounds/1/start")
    assert response.status_code == 400
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "draft"


def test_admin_create_command_sets_a_password(runner, client):
    result = runner.invoke(args=["admin", "create", "--username", "ops", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    response = post_form(client, "/admin/login", "/admin/login", {"username": "ops", "password": "s3cret-pass"})
    assert response.status_code == 303
