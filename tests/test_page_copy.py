"""The waiting round pages from the per-process copy (quiz/web/page_cache.py), as the Start page
already is: "Answers in ✔" while the round is open and "Not started yet", whole and as the htmx
fragment a waiting phone fetches. Byte for byte what a render gives, headers (the session cookie)
included, in every language the event offers; a page with more on it than the copy puts in (a flash
message, a help request, a staff login) is rendered, and a status change makes a new copy."""
import threading

import flask_wtf.csrf
import itsdangerous
import pytest
from flask import template_rendered
from sqlalchemy import select, update
from werkzeug.test import Client

from quiz import waiting
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Participant
from quiz.web.page_cache import EXTENSION

from .helpers import login, press_start, submit, token_field

FRAGMENT = {"HX-Request": "true"}
# Plain names; one to escape; the event's name and the round's title (words of the page itself,
# never kept as a mark).
NAMES = ["Ada", "<Bob & 'Co'>", "Knockout", "Warm-up", "Grace Hopper"]
HEADING = {"submitted": "Answers in ✔", "not_open": "Not started yet"}


def fetch(app, path: str, cookie: str | None = None, **headers) -> tuple:
    """GET `path` as a web process serves it: in a thread of its own, so in app and request
    contexts of its own (the test's app context would keep `g`, and with it the CSRF token and the
    user, across requests). (status, headers, body, templates rendered)."""
    headers = {"X-Request-ID": "phone-7", **headers}
    if cookie:
        headers["Cookie"] = f"session={cookie}"
    answer, rendered = [], []

    def get():
        answer.append(Client(app, use_cookies=False).get(path, headers=headers))

    def counted(sender, template, context, **extra):
        if threading.current_thread() is thread:
            rendered.append(template.name)
    thread = threading.Thread(target=get)
    with template_rendered.connected_to(counted, app):
        thread.start()
        thread.join()
    response = answer[0]
    return response.status, list(response.headers.items()), response.get_data(), rendered


def page(app, path: str, cookie: str | None = None, **headers) -> tuple:
    """What the phone gets (status, headers, body), whether from a copy or not."""
    return list(fetch(app, path, cookie, **headers)[:3])


def rendered_page(app, path: str, cookie: str | None = None, **headers) -> tuple:
    """The same page rendered: no copy to take it from."""
    app.extensions.pop(EXTENSION, None)
    answer = fetch(app, path, cookie, **headers)
    assert answer[3], "rendered"
    return list(answer[:3])


@pytest.fixture
def fixed_tokens(monkeypatch):
    """The same session token, signature time and jitter (the help status's poll) for every
    request: two answers to compare byte for byte, Set-Cookie included. (os.urandom's too: after
    the links are made.)"""
    def fix():
        monkeypatch.setattr("random.uniform", lambda low, high: low)
        monkeypatch.setattr(flask_wtf.csrf.os, "urandom", lambda n: b"\x07" * n)
        monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp",
                            lambda self: 1_900_000_000)
    return fix


@pytest.fixture
def room(app, load_bank, make_participant, api_headers):
    """The players, round 1 open and each one's answers in through their own phone: (the phones'
    session cookies, {"submitted": round-1 codes, "not_open": round-2 codes})."""
    load_bank()
    ids = [make_participant(name).id for name in NAMES]
    organizer = app.test_client()
    assert organizer.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    codes = {state: [db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == pid, Challenge.number == number)) for pid in ids]
        for state, number in (("submitted", 1), ("not_open", 2))}
    cookies = []
    for code in codes["submitted"]:
        phone = app.test_client()
        press_start(phone, code)
        assert submit(phone, code, [["S3"], ["RDS", "DynamoDB"]]).status_code == 303
        cookies.append(phone.get_cookie("session").value)
    return cookies, codes


@pytest.mark.parametrize("state", ["submitted", "not_open"])
def test_the_waiting_pages_from_the_copy_are_the_pages_a_render_gives(app, room, fixed_tokens,
                                                                       state):
    """Every player's page, whole and fragment, from a phone without a session and from its own:
    the copy (made from whichever player's page came first) with their values put in, the same
    bytes and headers as a render; in each language the event offers."""
    fixed_tokens()
    cookies, codes = room
    codes = codes[state]
    served_from_copy = 0
    for language in app.config["LANGUAGES"]:
        db.session.execute(update(Participant).values(language=language))
        db.session.commit()
        for headers in ({}, FRAGMENT):
            for phone in (None, "own"):
                app.extensions.pop(EXTENSION, None)
                for code, cookie, name in zip(codes, cookies, NAMES):
                    cookie = cookie if phone else None
                    *from_copy, renders = fetch(app, f"/f/{code}", cookie, **headers)
                    served_from_copy += not renders
                    rendered = rendered_page(app, f"/f/{code}", cookie, **headers)
                    assert from_copy == rendered, (language, headers, phone, name)
                    assert from_copy[0] == "200 OK"
                    body = rendered[2].decode()
                    assert f'data-state="{state}"' in body and f"/f/{code}" in body
                    if not headers:
                        assert (f"<strong>{__import__('html').escape(name)}</strong>"
                                .replace("&#x27;", "&#39;") in body)
                        assert f'<html lang="{language}">' in body
                    if language == "en":
                        assert HEADING[state] in body
                    names = [header for header, _ in rendered[1]]
                    # a link's page asks nothing of the session (its forms carry the link's
                    # token): no cookie
                    assert "Set-Cookie" not in names
                    fetch(app, f"/f/{codes[0]}", cookie, **headers)  # a copy again
    # the copies served: all but the first page of each pass, but for the names of the page
    assert served_from_copy >= len(app.config["LANGUAGES"]) * 4 * 3


@pytest.mark.parametrize("state", ["submitted", "not_open"])
def test_the_second_players_page_is_not_rendered(app, room, state):
    """The herd's pages: the first player's is rendered and kept, the next ones are not rendered
    at all (whole and fragment)."""
    cookies, codes = room
    first, second = codes[state][0], codes[state][4]
    for headers in ({}, FRAGMENT):
        assert fetch(app, f"/f/{first}", cookies[0], **headers)[3]
        status, _, body, renders = fetch(app, f"/f/{second}", cookies[4], **headers)
        assert status == "200 OK" and renders == []
        assert f"/f/{second}".encode() in body and f"/f/{first}".encode() not in body
        if not headers:
            assert b"Playing as <strong>Grace Hopper</strong>" in body


def flash_for(app, cookie: str) -> str:
    phone = app.test_client()
    phone.set_cookie("session", cookie)
    with phone.session_transaction() as session:
        session["_flashes"] = [("ok", "A message for this page only")]
    return phone.get_cookie("session").value


def ask_for_help(app, code: str, cookie: str) -> str:
    phone = app.test_client()
    phone.set_cookie("session", cookie)
    name, token = token_field(phone.get(f"/f/{code}").get_data(as_text=True))
    assert phone.post(f"/f/{code}/help", data={name: token, "kind": "no_sms",
                                              "text": "My phone is slow"}).status_code == 303
    phone.get(f"/f/{code}")  # the flash message read: the request remains
    return phone.get_cookie("session").value


def staff(app, cookie: str) -> str:
    console = app.test_client()
    assert login(console).status_code in (302, 303)
    return console.get_cookie("session").value


@pytest.mark.parametrize("state", ["submitted", "not_open"])
@pytest.mark.parametrize("case, shown", [
    ("flash", b"A message for this page only"), ("help", b"My phone is slow"),
    ("staff", b' data-role="')])
def test_a_page_with_more_on_it_is_rendered_and_never_kept(app, room, fixed_tokens, state, case,
                                                           shown):
    fixed_tokens()
    cookies, codes = room
    codes = codes[state]
    special = {"flash": flash_for, "staff": staff}.get(case)
    cookie = (ask_for_help(app, codes[1], cookies[1]) if case == "help"
              else special(app, cookies[1]))
    app.extensions.pop(EXTENSION, None)
    assert fetch(app, f"/f/{codes[0]}", cookies[0])[3]  # the copy, from the first player's page
    *answer, renders = fetch(app, f"/f/{codes[1]}", cookie)
    assert renders and shown in answer[2]
    assert answer == rendered_page(app, f"/f/{codes[1]}", cookie) or case == "flash"  # read once
    # the next player's page: from the copy, without what the other one's page had
    fetch(app, f"/f/{codes[0]}", cookies[0])
    *plain, renders = fetch(app, f"/f/{codes[2]}", cookies[2])
    assert not renders and shown not in plain[2]
    assert plain == rendered_page(app, f"/f/{codes[2]}", cookies[2])


@pytest.mark.parametrize("state", ["submitted", "not_open"])
def test_shadow_league_players_get_their_own_copy(app, room, fixed_tokens, state):
    """Knocked out before this round (shadow league on): their page says so; the others' don't."""
    fixed_tokens()
    cookies, codes = room
    app.config["SHADOW_LEAGUE"] = True
    out = db.session.scalars(select(FormLink.participant_id).where(
        FormLink.code.in_(codes["submitted"][::2]))).all()
    db.session.execute(update(Participant).where(Participant.id.in_(out)).values(eliminated_in=0))
    db.session.commit()
    note = b"Shadow league" if state == "submitted" else b'id="shadow-note"'
    for headers in ({}, FRAGMENT):
        app.extensions.pop(EXTENSION, None)
        for index, (code, cookie) in enumerate(zip(codes[state], cookies)):
            answer = page(app, f"/f/{code}", cookie, **headers)
            assert answer == rendered_page(app, f"/f/{code}", cookie, **headers)
            assert (note in answer[2]) == (index % 2 == 0)


def version_of(body: bytes, name: str = "status") -> bytes:
    return body.split(f'data-{name}-version="'.encode())[1].split(b'"')[0]


def cadence(app, pages_per_second: float) -> None:
    """The room's pages a second: the status's spread, and so its version, changes with it."""
    app.config["STATUS_PAGES_PER_SECOND"] = pages_per_second
    waiting.invalidate_status()
    app.extensions[waiting.EXTENSION].forget()


def test_a_status_change_between_two_pages_makes_a_new_copy(app, room, api_headers,
                                                            fixed_tokens):
    """A waiting page embeds the shared status it was rendered at: the second player's page after
    a change carries the new versions, never the first's (whole and fragment)."""
    fixed_tokens()
    cookies, codes = room
    usual = app.config["STATUS_PAGES_PER_SECOND"]
    for headers in ({}, FRAGMENT):
        cadence(app, usual)
        app.extensions.pop(EXTENSION, None)
        before = page(app, f"/f/{codes['not_open'][0]}", cookies[0], **headers)
        waited = page(app, f"/f/{codes['submitted'][0]}", cookies[0], **headers)
        # the cadence changes: the status's version, not the rounds'
        cadence(app, usual / 1000)
        code = codes["submitted"][4]
        after = page(app, f"/f/{code}", cookies[4], **headers)
        assert version_of(after[2]) != version_of(waited[2])
        assert after == rendered_page(app, f"/f/{code}", cookies[4], **headers)
    cadence(app, usual)
    # the rounds change: round 1 ends, round 2's pages still wait
    assert app.test_client().post("/api/admin/end-challenge/1",
                                  headers=api_headers).status_code == 200
    for headers in ({}, FRAGMENT):
        code = codes["not_open"][4]
        after = page(app, f"/f/{code}", cookies[4], **headers)
        assert version_of(after[2]) != version_of(before[2])
        assert version_of(after[2], "rounds") != version_of(before[2], "rounds")
        assert after == rendered_page(app, f"/f/{code}", cookies[4], **headers)
        status = app.test_client().get("/api/status").get_json()
        assert f'data-rounds-version="{status["rounds_version"]}"'.encode() in after[2]


def round_one_open(app, load_bank, make_participant, api_headers) -> list[str]:
    """Three players, round 1 open (none has pressed Start): their round-1 codes."""
    load_bank()
    ids = [make_participant(name).id for name in NAMES[:3]]
    assert app.test_client().post("/api/admin/start-challenge/1",
                                  headers=api_headers).status_code == 200
    return [db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == pid, Challenge.number == 1)) for pid in ids]


def test_the_start_fragment_from_the_copy_asks_nothing_of_the_session(app, load_bank,
                                                                    make_participant,
                                                                    api_headers, fixed_tokens):
    """The Start page (and its fragment: a waiting phone's swap when its round opens) carries the
    link's own token, not the session's: from the copy as from a render, a phone without a session
    gets no cookie."""
    codes = round_one_open(app, load_bank, make_participant, api_headers)
    fixed_tokens()
    for headers in (FRAGMENT, {}):
        app.extensions.pop(EXTENSION, None)
        fetch(app, f"/f/{codes[0]}", **headers)
        *answer, renders = fetch(app, f"/f/{codes[2]}", **headers)
        assert not renders and b'data-start' in answer[2]
        assert answer == rendered_page(app, f"/f/{codes[2]}", **headers)
        assert not any(name == "Set-Cookie" for name, _ in answer[1])


@pytest.mark.config(CHECKIN_REQUIRED=True)
def test_check_in_first_is_rendered_for_each_player(app, load_bank, make_participant,
                                                    api_headers):
    """"Check in first" polls its own fragment after a delay jittered per render: never a copy."""
    codes = round_one_open(app, load_bank, make_participant, api_headers)
    for headers in ({}, FRAGMENT):
        for code in codes:
            status, _, body, renders = fetch(app, f"/f/{code}", **headers)
            assert status == "200 OK" and b'data-state' not in body and b"delay:" in body
            assert renders
    assert not app.extensions.get(EXTENSION)
