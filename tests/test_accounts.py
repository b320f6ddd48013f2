"""Staff accounts: hosts add, change, reset and remove them in the console (audited); the event
always keeps a host; the CLI's `admin create --role`; accounts from before roles are hosts."""
import re

import pytest
from flask import g
from flask_migrate import upgrade
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from quiz import staff as accounts
from quiz.errors import QuizError
from quiz.extensions import db
from quiz.models import AdminUser, AuditEntry, Role

from .helpers import csrf_from, post_form, text

PASSWORD = "staff-test-password"
CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


@pytest.fixture
def staff(app):
    """Two hosts, 'ines' and 'hugo', a desk 'dora' and a viewer 'vic'."""
    users = {name: AdminUser(username=name, role=role, password_hash=CHEAP_HASH)
             for name, role in (("ines", Role.HOST), ("hugo", Role.HOST), ("dora", Role.DESK),
                                ("vic", Role.VIEWER))}
    db.session.add_all(users.values())
    db.session.commit()
    return {name: user.id for name, user in users.items()}


def as_(client, username: str, password: str = PASSWORD):
    """Log in as `username` (in any of several browsers); the console's CSRF token."""
    fresh_token()
    response = post_form(client, "/admin/login", "/admin/login",
                         {"username": username, "password": password})
    assert response.status_code == 303, text(response)
    fresh_token()
    return csrf_from(client.get("/admin/").get_data(as_text=True))


def fresh_token() -> None:
    """The tests hold one app context, so `g`, where Flask-WTF keeps the token it rendered, outlives
    a request: forget it, or another browser's page would show this one's."""
    g.pop("csrf_token", None)


def role_of(username: str):
    return db.session.scalar(select(AdminUser.role).where(AdminUser.username == username))


def audit() -> list[tuple[str, str, str]]:
    return [tuple(row) for row in db.session.execute(
        select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id))]


def account_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AdminUser))


def test_a_host_adds_an_account_who_logs_in_with_its_role(client, staff):
    token = as_(client, "ines")
    added = client.post("/admin/staff/", data={"csrf_token": token, "username": "kiosk-1",
                                               "role": "desk", "password": "ten-chars-ok"},
                        follow_redirects=True)
    assert "Account 'kiosk-1' added (desk)" in text(added)
    assert role_of("kiosk-1") == Role.DESK
    assert audit() == [("ines", "add account", "kiosk-1 (desk)")]
    client.post("/admin/logout", data={"csrf_token": token})
    as_(client, "kiosk-1", "ten-chars-ok")
    assert client.get("/admin/checkin").status_code == 200
    assert client.post("/admin/rounds/1/start", data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize("username, password, field, message", [
    ("DORA", "long-enough-1", "username", "There is already an account called 'DORA'"),
    ("new one", "long-enough-1", "username", "no spaces"),
    ("x", "long-enough-1", "username", "Use 2 to 80 letters"),
    ("newbie", "short", "password", "at least 10 characters (this one has 5)"),
])
def test_a_bad_new_account_is_refused_beside_its_field_and_nothing_is_written(
        client, staff, username, password, field, message):
    token = as_(client, "ines")
    refused = client.post("/admin/staff/", data={"csrf_token": token, "username": username,
                                                 "role": "viewer", "password": password})
    assert refused.status_code == 422
    page = text(refused)
    label = re.search(rf'<label class="field[^"]* has-error"><span>{field.capitalize()}[^<]*</span>'
                      rf'.*?</label>', page, re.S)
    assert label and message in label.group(0)
    assert f'value="{username}"' in page  # what was typed is kept
    assert account_count() == 4 and audit() == []


def test_an_account_form_without_its_csrf_token_is_refused(client, staff):
    as_(client, "ines")
    refused = client.post("/admin/staff/", data={"username": "sneaky", "role": "host",
                                                 "password": "long-enough-1"})
    assert refused.status_code == 400 and account_count() == 4


def test_a_role_change_is_audited_and_counts_from_the_next_request(client, app, staff):
    token = as_(client, "ines")
    dora = app.test_client()
    dora_token = as_(dora, "dora")
    assert dora.post("/admin/participants/1/resend/1",
                     data={"csrf_token": dora_token}).status_code != 403
    changed = client.post(f"/admin/staff/{staff['dora']}/role",
                          data={"csrf_token": token, "role": "viewer"}, follow_redirects=True)
    assert "dora is now viewer" in text(changed)
    assert audit()[-1] == ("ines", "change role", "dora: desk → viewer")
    assert dora.post("/admin/participants/1/resend/1",
                     data={"csrf_token": dora_token}).status_code == 403


def test_the_last_host_can_be_neither_demoted_nor_removed(client, staff):
    token = as_(client, "ines")
    client.post(f"/admin/staff/{staff['hugo']}/role", data={"csrf_token": token, "role": "desk"})
    assert role_of("hugo") == Role.DESK
    refused = client.post(f"/admin/staff/{staff['ines']}/role",
                          data={"csrf_token": token, "role": "viewer"})
    assert refused.status_code == 409
    assert "ines is the last host" in text(refused) and role_of("ines") == Role.HOST
    own = client.post(f"/admin/staff/{staff['ines']}/remove",
                      data={"csrf_token": token, "confirmed": "yes"})
    assert own.status_code == 409 and "can't remove the account you are logged in with" in text(own)
    ines = db.session.get(AdminUser, staff["ines"])
    with pytest.raises(QuizError, match="last host"):
        accounts.remove_account(ines, "cli")
    db.session.rollback()
    assert role_of("ines") == Role.HOST and account_count() == 4
    assert [action for _, action, _ in audit()] == ["change role"]


def test_two_hosts_demoting_each_other_leave_one_host(app, staff):
    hugo, ines = db.session.get(AdminUser, staff["hugo"]), db.session.get(AdminUser, staff["ines"])
    accounts.change_role(hugo, Role.VIEWER, "ines")
    db.session.commit()
    with pytest.raises(QuizError, match="ines is the last host"):
        accounts.change_role(ines, Role.VIEWER, "hugo")


def test_a_host_resets_a_password(client, app, staff):
    token = as_(client, "ines")
    short = client.post(f"/admin/staff/{staff['dora']}/password",
                        data={"csrf_token": token, "password": "123"})
    assert short.status_code == 422
    assert re.search(r'id="account-\d+-error">dora: Use a password of at least 10', text(short))
    done = client.post(f"/admin/staff/{staff['dora']}/password",
                       data={"csrf_token": token, "password": "brand-new-secret"},
                       follow_redirects=True)
    assert "New password set for dora" in text(done)
    assert audit() == [("ines", "reset password", "dora")]
    other = app.test_client()
    fresh_token()
    assert post_form(other, "/admin/login", "/admin/login",
                     {"username": "dora", "password": PASSWORD}).status_code == 401
    as_(other, "dora", "brand-new-secret")


def test_a_removed_account_is_logged_out_at_once(client, app, staff):
    token = as_(client, "ines")
    vic = app.test_client()
    as_(vic, "vic")
    removed = client.post(f"/admin/staff/{staff['vic']}/remove",
                          data={"csrf_token": token, "confirmed": "yes"},
                          follow_redirects=True)
    assert "Account 'vic' removed" in text(removed) and role_of("vic") is None
    assert audit() == [("ines", "remove account", "vic (viewer)")]
    assert "/admin/login" in vic.get("/admin/").headers["Location"]


def test_only_hosts_see_the_account_forms(client, app, staff):
    as_(client, "ines")
    host_page = text(client.get("/admin/staff/"))
    assert "Add an account" in host_page and "Set password" in host_page
    viewer = app.test_client()
    as_(viewer, "vic")
    page = text(viewer.get("/admin/staff/"))
    assert "ines" in page and "Add an account" not in page and "Set password" not in page


def test_admin_create_takes_a_role(runner):
    made = runner.invoke(args=["admin", "create", "--username", "volunteer", "--password",
                               "pw-volunteer", "--role", "desk"])
    assert made.exit_code == 0 and "Desk 'volunteer' can log in" in made.output
    host = runner.invoke(args=["admin", "create", "--username", "boss", "--password", "pw-boss"])
    assert host.exit_code == 0 and role_of("boss") == Role.HOST
    # a new password keeps the role unless one is given
    runner.invoke(args=["admin", "create", "--username", "volunteer", "--password", "pw-2"])
    assert role_of("volunteer") == Role.DESK
    last = runner.invoke(args=["admin", "create", "--username", "boss", "--password", "pw-3",
                               "--role", "viewer"])
    assert last.exit_code != 0 and "boss is the last host" in last.output
    assert role_of("boss") == Role.HOST
    bad = runner.invoke(args=["admin", "create", "--username", "x", "--password", "p",
                              "--role", "root"])
    assert bad.exit_code != 0 and role_of("x") is None
    assert [(actor, action) for actor, action, _ in audit()] == [
        ("cli", "add account"), ("cli", "add account"), ("cli", "reset password")]


def test_accounts_from_before_roles_become_hosts(app):
    db.drop_all()
    upgrade(revision="0010_fair_shred")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO admin_user (username, password_hash, "
                                   f"session_token) VALUES ('organizer', '{CHEAP_HASH}', 't0')")
    upgrade()
    assert role_of("organizer") == Role.HOST
