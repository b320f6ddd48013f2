"""Organizer sessions: cookies that last an event and die at logout or a new password; a login
limit per account and address; a failed login that costs the same whether the user exists."""
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from flask import g
from sqlalchemy import select

from quiz import accounts
from quiz.config import Config
from quiz.extensions import db
from quiz.models import AdminUser

from .helpers import login, post_form

REMEMBER = "remember_token"


@pytest.fixture(autouse=True)
def fresh_user_per_request(app):
    """Each request finds its organizer from its cookies, as in production: the tests share one app
    context (and its `g`, where Flask-Login caches the user) across requests."""
    @app.before_request
    def forget_the_last_requests_user():
        g.pop("_login_user", None)


def cookies(client) -> dict:
    return {name: client.get_cookie(name).value for name in ("session", REMEMBER)
            if client.get_cookie(name) is not None}


def console_with(app, jar: dict) -> int:
    """The console's status for a fresh browser holding only these cookies."""
    browser = app.test_client()
    for name, value in jar.items():
        browser.set_cookie(name, value)
    return browser.get("/admin/").status_code


def set_cookie_headers(response) -> dict:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_remember_cookie_lasts_an_event_and_is_httponly_and_lax(client):
    headers = set_cookie_headers(login(client))
    remember = headers[REMEMBER]
    assert "HttpOnly" in remember and "SameSite=Lax" in remember and "Secure" not in remember
    expires = parsedate_to_datetime(remember.split("Expires=")[1].split(";")[0])
    assert expires - datetime.now(timezone.utc) <= timedelta(days=2)
    assert "HttpOnly" in headers["session"] and "SameSite=Lax" in headers["session"]


@pytest.mark.config(PUBLIC_BASE_URL="https://quiz.example")
def test_cookies_are_secure_when_the_site_is_https(client):
    headers = set_cookie_headers(login(client))
    assert "Secure" in headers[REMEMBER] and "Secure" in headers["session"]


def test_logout_revokes_the_old_session_and_remember_cookies(app, client):
    login(client)
    before = cookies(client)
    assert set(before) == {"session", REMEMBER} and console_with(app, before) == 200
    assert console_with(app, {REMEMBER: before[REMEMBER]}) == 200  # remember-me alone logs in
    post_form(client, "/admin/", "/admin/logout", {})
    assert client.get("/admin/").status_code == 302
    # A copy of the cookies taken before logout (another device, a stolen jar) no longer works.
    assert console_with(app, before) == 302
    assert console_with(app, {REMEMBER: before[REMEMBER]}) == 302
    assert login(client).status_code == 303 and client.get("/admin/").status_code == 200


def test_a_new_password_revokes_every_session(app, client, runner):
    login(client)
    before = cookies(client)
    result = runner.invoke(args=["admin", "create", "--password", "new-password"])
    assert result.exit_code == 0, result.output
    assert client.get("/admin/").status_code == 302
    assert console_with(app, {REMEMBER: before[REMEMBER]}) == 302
    assert login(client, "new-password").status_code == 303


def test_a_session_id_without_the_current_token_is_refused(app, client):
    login(client)
    user = accounts.authenticate("admin", "test-password")
    assert accounts.load_organizer(user.get_id()) == user
    for forged in (str(user.id), f"{user.id}:", f"{user.id}:guess", "x:" + user.session_token):
        assert accounts.load_organizer(forged) is None


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_login_limit_is_per_account_and_address(client, runner):
    runner.invoke(args=["admin", "create", "--username", "ops", "--password", "ops-password"])
    statuses = [login(client, f"guess-{n}").status_code for n in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    # Same address, another organizer's account: not locked out by the guessing.
    other = post_form(client, "/admin/login", "/admin/login",
                      {"username": "ops", "password": "ops-password"})
    assert other.status_code == 303


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_successful_logins_do_not_use_up_the_limit(client):
    assert all(login(client).status_code == 303 for _ in range(12))


def test_a_missing_user_still_costs_a_password_check(app, client, monkeypatch):
    """The same check as a real user's: a hash made with the method real ones are."""
    checked = []
    real = accounts.check_password_hash

    def spy(pwhash, password):
        checked.append(pwhash)
        return real(pwhash, password)
    monkeypatch.setattr(accounts, "check_password_hash", spy)
    missing = post_form(client, "/admin/login", "/admin/login",
                        {"username": "nobody", "password": "whatever"})
    method = app.config["PASSWORD_HASH_METHOD"]
    assert missing.status_code == 401 and checked == [accounts.dummy_hash(method)]
    assert login(client).status_code == 303  # the organizer's account, made at the first login
    real = db.session.scalar(select(AdminUser.password_hash))
    assert checked[0].split("$")[0] == real.split("$")[0] == method


@pytest.mark.config(PASSWORD_HASH_METHOD=Config.PASSWORD_HASH_METHOD)
def test_passwords_are_stored_as_scrypt_hashes_outside_the_suite(client):
    """The suite hashes cheaply (TestConfig); a deployment's setting is scrypt, and logs in."""
    assert login(client).status_code == 303
    assert db.session.scalar(select(AdminUser.password_hash)).startswith("scrypt:")


def test_the_session_signer_is_built_once_per_secret_key(app, client):
    """The session cookie's signer is kept between requests (quiz/web/security.SessionCookies), so
    it must follow the key: a cookie signed with the old key is no session once the key changes,
    and is one again with the old key among SECRET_KEY_FALLBACKS."""
    login(client)
    jar = cookies(client)
    interface = app.session_interface
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)
    assert console_with(app, {"session": jar["session"]}) == 200
    old = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret"
    assert console_with(app, {"session": jar["session"]}) == 302  # to the login page
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert console_with(app, {"session": jar["session"]}) == 200
