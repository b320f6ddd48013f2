"""The round pages from the copy answered before Flask (quiz/web/page_path.py, page_cache.py
`copy_before_flask`): the Start page, "Answers in ✔" and "Not started yet", whole and as the htmx
fragment, byte for byte what Flask answers (and what a render gives), in every language, with and
without a session cookie; a session with anything of its own goes to Flask. The link page's
language switch and help form carry the link's token (no session needed), and still take the
session's CSRF token of a page rendered before; other pages keep the session's token."""
import threading

import pytest
from sqlalchemy import select, update

from quiz.extensions import db
from quiz.helpdesk import requests_of
from quiz.models import Challenge, FormLink, Participant
from quiz.web.page_cache import EXTENSION

from .helpers import csrf_from, login, press_start, submit, token_field
from .test_page_copy import flash_for
from .test_page_path import both

FRAGMENT = {"HX-Request": "true"}
STATE = {"ready": b'data-start', "submitted": b'data-state="submitted"',
         "not_open": b'data-state="not_open"'}
OUT_OF_DATE = b"This form is out of date"


@pytest.fixture
def pages(app, load_bank, make_participant, api_headers):
    """Round 1 open for four players: the first two have answered; the others see the Start page;
    round 2 not started. {page: [codes]}."""
    load_bank()
    ids = [make_participant(name).id for name in ("Ada", "Grace", "Linus", "<Bob & 'Co'>")]
    assert app.test_client().post("/api/admin/start-challenge/1",
                                  headers=api_headers).status_code == 200

    def code(pid, number):
        return db.session.scalar(select(FormLink.code).join(Challenge).where(
            FormLink.participant_id == pid, Challenge.number == number))
    for pid in ids[:2]:
        phone = app.test_client()
        press_start(phone, code(pid, 1))
        assert submit(phone, code(pid, 1), [["S3"], ["RDS", "DynamoDB"]]).status_code == 303
    return {"ready": [code(ids[2], 1), code(ids[3], 1)],
            "submitted": [code(ids[0], 1), code(ids[1], 1)],
            "not_open": [code(ids[0], 2), code(ids[1], 2)]}


def session_cookie(app, fresh: bool = False) -> str:
    """A phone's session after registering through the web form (its CSRF token) and one page more
    (Flask-Login has marked it as not fresh), or right after registering (`fresh`)."""
    phone = app.test_client()
    phone.get("/register")
    if not fresh:
        phone.get("/register")
    return phone.get_cookie("session").value


def apart(work):
    """`work()` in a thread of its own, so in app contexts of its own (the test's would keep `g`,
    and with it one session's CSRF token, across the clients' requests)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    assert result, "the work failed (see the thread's exception above)"
    return result[0]


def session_post(app, path: str, data: dict):
    """POST `data` as a page rendered before this change sent it: with the session's CSRF token."""
    def post():
        old = app.test_client()
        token = csrf_from(old.get("/register").get_data(as_text=True))
        return old.post(path, data={"csrf_token": token, **data}).status_code
    return apart(post)


def rendered(app, code: str, **headers) -> list:
    """Flask's answer with no copy in the process: a render."""
    app.extensions.pop(EXTENSION, None)
    return both(app, code, served_fast=False, **headers)[1]


@pytest.mark.parametrize("page", ["ready", "submitted", "not_open"])
def test_the_pages_before_flask_are_flask_s_byte_for_byte(app, pages, page):
    """Each page, whole and fragment, in every language, from a phone without a session, with its
    session, and with no stored language but the `lang` cookie: the second player's page (the
    first one's made the copy) before Flask = Flask's answer = a render."""
    first, second = pages[page]
    cookie = session_cookie(app)
    for language in app.config["LANGUAGES"]:
        for own in (True, False):  # the participant's language, or the phone's cookie
            db.session.execute(update(Participant).values(language=language if own else None))
            db.session.commit()
            for fragment in ({}, FRAGMENT):
                for session in (None, cookie):
                    cookies = "; ".join(([f"session={session}"] if session else [])
                                        + ([] if own else [f"lang={language}"]))
                    headers = {**fragment, **({"Cookie": cookies} if cookies else {})}
                    app.extensions.pop(EXTENSION, None)
                    both(app, first, served_fast=False, **headers)  # the copy, made by Flask
                    fast, flask = both(app, second, served_fast=True, **headers)
                    assert fast == flask == rendered(app, second, **headers), (
                        language, own, fragment, session)
                    status, header_list, body = fast
                    assert status == "200 OK" and STATE[page] in body
                    assert f"/f/{second}".encode() in body and f"/f/{first}".encode() not in body
                    assert "Set-Cookie" not in dict(header_list)
                    if not fragment:
                        assert f'<html lang="{language}">'.encode() in body, (
                            language, own, session, db.session.execute(select(
                                Participant.name, Participant.language)).all())
                        assert b"X-CSRFToken" not in body and b'name="csrf_token"' not in body


def staff(app) -> str:
    console = app.test_client()
    assert login(console).status_code in (302, 303)
    return console.get_cookie("session").value


@pytest.mark.parametrize("case", ["flash", "staff", "remember", "garbled", "fresh"])
@pytest.mark.parametrize("page", ["ready", "submitted"])
def test_a_session_of_its_own_goes_to_flask(app, pages, page, case):
    """A flash message, a staff login, a remember cookie, a cookie the app can't read, a session
    Flask-Login has yet to mark: Flask answers (the flash shown once), never the copy."""
    first, second = pages[page]
    app.extensions.pop(EXTENSION, None)
    both(app, first, served_fast=False)  # the copy
    cookie = {"flash": lambda: flash_for(app, session_cookie(app)), "staff": lambda: staff(app),
              "remember": lambda: session_cookie(app), "garbled": lambda: "garbled.cookie.x",
              "fresh": lambda: session_cookie(app, fresh=True)}[case]()
    cookies = f"session={cookie}" + ("; remember_token=1|abc" if case == "remember" else "")
    fast, flask = both(app, second, served_fast=False, Cookie=cookies)
    assert fast[0] == "200 OK" and STATE[page] in fast[2]
    if case == "flash":
        assert b"A message for this page only" in fast[2]
        assert b"A message for this page only" not in flask[2] or fast == flask
    else:
        assert fast == flask
    if case == "staff":
        assert b' data-role="' in fast[2]
    if case == "fresh":
        assert "Set-Cookie" in dict(fast[1])  # Flask-Login marked it: the copy can't say so
    # the next plain phone: the copy again
    both(app, second, served_fast=True)


def test_the_language_switch_takes_the_link_s_token(app, client, pages):
    """The switch on a link page posts the link's token: the choice stored and the cookie set; a
    bad or missing token is refused with the CSRF error's message; a page rendered before this
    (the session's CSRF token) still works."""
    code = pages["ready"][0]
    page = client.get(f"/f/{code}").get_data(as_text=True)
    assert token_field(page)[0] == "form_token" and 'action="/f/%s/lang"' % code in page
    name, token = token_field(page)
    answer = client.post(f"/f/{code}/lang", data={name: token, "lang": "de"})
    assert answer.status_code == 303 and "lang=de" in answer.headers["Set-Cookie"]
    assert db.session.scalar(select(Participant.language).join(FormLink).where(
        FormLink.code == code)) == "de"
    for data in ({"form_token": "0" * 32}, {"form_token": ""}, {}):
        refused = app.test_client().post(f"/f/{code}/lang", data={**data, "lang": "es"})
        assert refused.status_code == 400 and OUT_OF_DATE in refused.get_data()
    assert session_post(app, f"/f/{code}/lang", {"lang": "es"}) == 303
    assert db.session.scalar(select(Participant.language).join(FormLink).where(
        FormLink.code == code)) == "es"


def test_the_help_form_takes_the_link_s_token(app, client, pages):
    """The help form on a link page posts the link's token: the request made; a bad or missing
    token is refused with the CSRF error's message (none made); the session's token still works."""
    code = pages["submitted"][0]
    pid = db.session.scalar(select(FormLink.participant_id).where(FormLink.code == code))
    page = client.get(f"/f/{code}").get_data(as_text=True)
    name, token = token_field(page)
    assert name == "form_token" and f'action="/f/{code}/help"' in page
    for data in ({"form_token": "0" * 32}, {"form_token": ""}, {}):
        refused = app.test_client().post(f"/f/{code}/help",
                                         data={**data, "kind": "no_sms", "text": "Hello"})
        assert refused.status_code == 400 and OUT_OF_DATE in refused.get_data()
    assert requests_of(pid) == []
    asked = client.post(f"/f/{code}/help", data={name: token, "kind": "no_sms",
                                                 "text": "My phone is slow"})
    assert asked.status_code == 303
    assert [r.text for r in requests_of(pid)] == ["My phone is slow"]
    assert b"Your request is with the help desk" in client.get(f"/f/{code}").get_data()
    assert session_post(app, f"/f/{code}/help", {"kind": "no_sms", "text": "Still slow"}) == 303
    assert len(requests_of(pid)) == 2


def test_other_pages_keep_the_session_s_token(app, client, pages):
    """The report page's switch and help form, the registration page and the console: the session's
    CSRF token, and htmx's X-CSRFToken header on the page."""
    code = pages["submitted"][0]
    report = db.session.scalar(select(Participant.report_code).join(FormLink).where(
        FormLink.code == code))
    page = client.get(f"/r/{report}").get_data(as_text=True)
    assert 'name="form_token"' not in page and page.count('name="csrf_token"') >= 2
    assert "X-CSRFToken" in page
    assert "X-CSRFToken" in client.get("/register").get_data(as_text=True)
    def console_page():
        console = app.test_client()
        assert login(console).status_code in (302, 303)
        return console.get("/admin/").get_data(as_text=True)
    assert "X-CSRFToken" in apart(console_page)
    # the report's help form refuses the link's token (it is not a link page's form)
    refused = client.post(f"/r/{report}/help", data={"form_token": token_field(
        client.get(f"/f/{code}").get_data(as_text=True))[1], "kind": "no_sms", "text": "Hi"})
    assert refused.status_code == 400 and OUT_OF_DATE in refused.get_data()


@pytest.mark.parametrize("page", ["ready", "submitted", "not_open"])
def test_a_fragment_of_a_session_flask_login_has_yet_to_mark_goes_to_flask(app, pages, page):
    """A fragment's render looks at the login too (Flask-Login's context processor): a session it
    has yet to mark gets Flask's answer, with the cookie it sets."""
    first, second = pages[page]
    app.extensions.pop(EXTENSION, None)
    headers = {**FRAGMENT, "Cookie": f"session={session_cookie(app, fresh=True)}"}
    # the copy made as a web process makes it: in contexts of its own (the test's `g` would say
    # the login was looked at, by the requests before)
    apart(lambda: both(app, first, served_fast=False, **headers))
    fast, flask = both(app, second, served_fast=False, **headers)
    assert fast == flask and STATE[page] in fast[2]
    assert "Set-Cookie" in dict(fast[1])
