"""The submit from htmx (the questions form's hx-post, static/js/in_place.js): answered with the
player's page itself ("Answers in ✔"), so a phone makes one request where the plain form makes two
(its 303, then the GET). The row, the token, the rate limit and every refusal are the plain
submit's; the page is GET /f/<code>'s, whatever answers that GET; if the page fails, the 303."""
import io
import re

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from quiz.extensions import db
from quiz.models import FormLink, Participant
from quiz.rehearsal_pages import posts_with_htmx
from quiz.web import play, submit_path

from .helpers import csrf_from
from .test_photos import jpeg, photo_round, start_and_read  # noqa: F401
from .test_submit_path import (Paths, close_round, doubled, fields_for, players,  # noqa: F401
                               rows, stored_form_body, time_up)

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/f/CODE",
        "X-Request-ID": "phone-9"}
# What differs between two renderings of one page: the CSRF token's signature (its moment)
SIGNED = re.compile(r'(name="csrf_token" value=")[^"]*(")')


def same_page(response) -> str:
    return SIGNED.sub(r"\1\2", response.get_data(as_text=True))


def route_alone(app) -> Client:
    """A client of the app below the submit's fast path: the route answers every submit."""
    fast_path = app.wsgi_app
    while not isinstance(fast_path, submit_path.SubmitFastPath):
        fast_path = fast_path.wrapped
    return Client(fast_path.wrapped, app.response_class)


def send(client, code: str, data: dict, **headers):
    return client.post(f"/f/{code}/submit", data=data, headers={**HTMX, **headers})


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_an_htmx_submit_gets_the_players_page_in_one_request(app, client, players):
    fast_code, flask_code = players
    paths = Paths()
    _, data = fields_for(client, fast_code)
    # the same phone's session for both (as it was before either page: the first page Flask
    # renders for it marks it, Flask-Login's `_fresh`, and says so with a Set-Cookie)
    session = client.get_cookie("session").value
    fast = send(client, fast_code, stored_form_body(fast_code, data))
    assert (paths.answered(), paths.handed_on()) == (1, 0)
    _, data = fields_for(client, flask_code)
    alone = route_alone(app)
    alone.set_cookie("session", session)
    through_flask = alone.post(f"/f/{flask_code}/submit", data=stored_form_body(flask_code, data),
                               headers=HTMX)
    assert (paths.answered(), paths.handed_on()) == (1, 0)

    assert fast.status_code == through_flask.status_code == 200
    assert fast.headers["HX-Replace-Url"] == f"/f/{fast_code}"
    assert through_flask.headers["HX-Replace-Url"] == f"/f/{flask_code}"
    assert "Location" not in fast.headers and fast.headers["X-Request-ID"] == "phone-9"
    # (a session cookie's signature holds the second it was made)
    varying = {"HX-Replace-Url", "X-RateLimit-Reset", "Retry-After", "Content-Length",
               "X-Request-ID", "Set-Cookie"}
    assert list(fast.headers.keys()) == list(through_flask.headers.keys())  # in their order
    assert ([(k, v) for k, v in fast.headers if k not in varying]
            == [(k, v) for k, v in through_flask.headers if k not in varying])
    assert ([cookie.partition(".")[0] for cookie in fast.headers.getlist("Set-Cookie")]
            == [cookie.partition(".")[0] for cookie in through_flask.headers.getlist("Set-Cookie")])
    assert fast.headers["X-RateLimit-Remaining"] == "29"
    # the page is what a GET of the link gives right after, whole (its <main> is swapped in)
    page = fast.get_data(as_text=True)
    assert "Answers in ✔" in page and "<main" in page
    for code, response in zip(players, (fast, through_flask)):
        assert same_page(response) == same_page(client.get(f"/f/{code}"))
    assert rows() == 2  # each stored once


def test_the_plain_submit_still_answers_303(client, players):
    code = players[0]
    _, data = fields_for(client, code)
    response = client.post(f"/f/{code}/submit", data=stored_form_body(code, data))
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{code}"
    assert "HX-Replace-Url" not in response.headers and rows() == 1


def test_the_page_is_the_get_made_with_the_phones_cookie_and_language(client, players):
    """The GET is built from the submit's request: its session cookie (the page's CSRF token for
    the help form is that session's), its Accept-Language (a player without a language)."""
    code = players[0]
    db.session.execute(db.update(Participant).where(Participant.id == db.session.scalar(
        select(FormLink.participant_id).where(FormLink.code == code))).values(language=None))
    db.session.commit()
    _, data = fields_for(client, code)
    response = send(client, code, stored_form_body(code, data), **{"Accept-Language": "de"})
    assert response.status_code == 200 and "Antworten sind da ✔" in response.get_data(as_text=True)
    assert same_page(response) == same_page(client.get(f"/f/{code}",
                                                       headers={"Accept-Language": "de"}))


def broken_page(code, fragment):
    raise RuntimeError("template gone")


@pytest.mark.parametrize("where", ["the page", "the GET"])
def test_a_failed_page_still_answers_303_with_the_row_stored_once(client, players, monkeypatch,
                                                                  where):
    """"2xx/3xx means stored": the row is in, so the 303 (the phone's XHR follows it), never the
    submit handed on (which would answer "already in" for the answers just stored)."""
    code = players[0]
    _, data = fields_for(client, code)
    if where == "the page":
        def fails(*args):
            raise OSError("no space left on device")
        monkeypatch.setattr(submit_path, "page_now", fails)
    else:
        monkeypatch.setattr(play, "page_for", broken_page)  # GET /f/<code> fails in Flask
    paths = Paths()
    response = send(client, code, stored_form_body(code, data))
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{code}"
    assert "HX-Replace-Url" not in response.headers
    assert response.headers["X-Request-ID"] == "phone-9"
    assert (paths.answered(), paths.handed_on()) == (1, 0)
    assert rows() == 1
    monkeypatch.undo()
    again = send(client, code, stored_form_body(code, data))  # the plain post after: already in
    assert again.status_code == 200 and "already in" in again.get_data(as_text=True)
    assert rows() == 1


def test_an_htmx_repeat_gets_the_already_in_page(client, players, api_headers):
    code = players[0]
    _, data = fields_for(client, code)
    doubled(client, api_headers, code)
    response = send(client, code, stored_form_body(code, data))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<main" in page
    assert "Your answers are already in" in page and "HX-Replace-Url" not in response.headers
    assert rows() == 1


@pytest.mark.config(SHADOW_LEAGUE=False)
@pytest.mark.parametrize("arrange, message", [
    (close_round, "Runde 1 ist geschlossen"),
    (time_up, "Deine Zeit für Runde 1 ist um"),
])
def test_an_htmx_submit_refused_gets_the_page_saying_why_in_the_players_language(
        client, players, api_headers, arrange, message):
    code = players[0]
    db.session.execute(db.update(Participant).where(Participant.id == db.session.scalar(
        select(FormLink.participant_id).where(FormLink.code == code))).values(language="de"))
    db.session.commit()
    _, data = fields_for(client, code)
    arrange(client, api_headers, code)
    paths = Paths()
    response = send(client, code, stored_form_body(code, data))
    page = response.get_data(as_text=True)
    assert response.status_code == 409 and message in page and "<main" in page
    assert "HX-Replace-Url" not in response.headers
    assert paths.handed_on() == 1 and rows() == 0


def test_the_routes_htmx_answer_to_the_live_pages_submit(client, players):
    """The live page's form (the session's CSRF token) goes to the route, which answers in place
    too, as GET /f/<code> gives the page."""
    code = players[0]
    token, data = fields_for(client, code)
    paths = Paths()
    response = send(client, code, {"csrf_token": token, **data})
    assert paths.handed_on() == 1
    assert response.status_code == 200 and response.headers["HX-Replace-Url"] == f"/f/{code}"
    assert "Answers in ✔" in response.get_data(as_text=True)
    assert same_page(response) == same_page(client.get(f"/f/{code}"))
    assert rows() == 1
    # without the CSRF token: refused, nothing stored
    other = players[1]
    _, data = fields_for(client, other)
    assert send(client, other, data).status_code == 400 and rows() == 1


def test_the_routes_failed_page_answers_303(client, players, monkeypatch):
    code = players[0]
    token, data = fields_for(client, code)
    monkeypatch.setattr(play, "page_for", broken_page)
    response = send(client, code, {"csrf_token": token, **data})
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{code}"
    assert rows() == 1


def test_the_questions_form_posts_with_htmx_on_the_live_page_and_the_stored_form(
        client, storage, load_bank, make_participant, run_jobs, open_round):
    load_bank()
    participant_id = make_participant("Grace").id
    run_jobs()
    open_round()
    code = db.session.scalar(select(FormLink.code).where(
        FormLink.participant_id == participant_id))
    token = stored_form_body(code, {})["form_token"]
    client.post(f"/f/{code}/start", data={"form_token": token})
    stored = client.get(f"/f/{code}").get_data(as_text=True)
    assert 'data-stored-form="forms"' in stored and posts_with_htmx(stored, "/submit")
    assert "js/in_place.js" in stored and "vendor/htmx-2.0.11.min.js" in stored
    assert 'hx-target="closest main" hx-select="main"' in stored
    live = client.get(f"/f/{code}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert posts_with_htmx(live, "/submit")


def test_a_photo_rounds_htmx_submit_is_answered_in_place_by_the_route(client, photo_round,
                                                                       storage):
    """A photo round's form is multipart (htmx sends it as FormData): the route stores it and
    answers with the page, as GET /f/<code> gives it right after."""
    code = photo_round[0]
    page, found = start_and_read(client, code)
    assert posts_with_htmx(page, "/submit") and 'enctype="multipart/form-data"' in page
    data = {"csrf_token": csrf_from(page), found["choice"]: found["choices"]["S3"],
            found["photo"]: (io.BytesIO(jpeg()), "selfie.jpg", "image/jpeg")}
    response = client.post(f"/f/{code}/submit", data=data, content_type="multipart/form-data",
                            headers=HTMX)
    assert response.status_code == 200 and response.headers["HX-Replace-Url"] == f"/f/{code}"
    assert "Your photo is with the staff" in response.get_data(as_text=True)
    assert same_page(response) == same_page(client.get(f"/f/{code}"))
    assert rows() == 1
