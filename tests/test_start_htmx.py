"""The Start press from htmx (the Start form's hx-post, static/js/in_place.js): answered with the
questions page itself, so a phone makes one request where the plain form makes two (its 303, then
the GET). The clock, the token, the rate limit and every refusal are the plain press's; the page
is GET /f/<code>'s, byte for byte, before Flask and through it."""
import re

import pytest
from werkzeug.test import Client

from quiz import stored_forms
from quiz.extensions import db
from quiz.models import FormLink
from quiz.rehearsal_pages import form_fields, posts_with_htmx
from quiz.storage import get_storage

from .helpers import POSTGRES_URL, round_trips
from .test_start_path import (BANK, Paths, clock, close_round, code_of, eliminated, fast_path,
                              not_open, time_up, token_of)

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/f/CODE",
        "X-Request-ID": "phone-7"}
COUNTDOWN = re.compile(rb'(data-countdown=")\d+(")|(>)\d+( s<)')


def same_moment(body: bytes) -> bytes:
    """A page with its countdowns' seconds left out (two pages a second apart differ there)."""
    return COUNTDOWN.sub(rb"\1\2\3\4", body)


@pytest.fixture
def players(client, storage, load_bank, make_participant, run_jobs, open_round):
    """Grace and Alan with their stored forms, round 1 open (timed), nobody started: their
    round-1 codes."""
    load_bank(BANK)
    ids = [make_participant(name).id for name in ("Grace", "Alan")]
    run_jobs()
    open_round()
    codes = [code_of(i) for i in ids]
    db.session.commit()  # nothing begun: a press's session is as fresh as a web process's
    return codes


def press(client, code: str, **headers):
    return client.post(f"/f/{code}/start", data=token_of(code), headers={**HTMX, **headers})


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_an_htmx_press_gets_the_questions_in_one_request(app, client, players):
    fast_code, flask_code = players
    paths = Paths()
    fast = press(client, fast_code)
    assert paths.counts() == (1, 0)
    through_flask = Client(fast_path(app).wrapped, app.response_class).post(
        f"/f/{flask_code}/start", data=token_of(flask_code), headers=HTMX)
    assert paths.counts() == (1, 0)

    assert fast.status_code == through_flask.status_code == 200
    assert fast.headers["HX-Replace-Url"] == f"/f/{fast_code}"
    assert through_flask.headers["HX-Replace-Url"] == f"/f/{flask_code}"
    assert "Location" not in fast.headers
    varying = {"HX-Replace-Url", "X-RateLimit-Reset", "Retry-After", "Content-Length"}
    assert list(fast.headers.keys()) == list(through_flask.headers.keys())  # in their order
    assert ([(k, v) for k, v in fast.headers if k not in varying]
            == [(k, v) for k, v in through_flask.headers if k not in varying])
    assert fast.headers["X-RateLimit-Remaining"] == "29"
    assert "Set-Cookie" not in fast.headers
    # the page is the stored form, as a GET of the link gives it now (its <main> is swapped in)
    body = fast.get_data()
    assert b'<main class="page" data-stored-form="forms">' in body
    assert b"Which service stores objects?" in body
    for code, response in zip(players, (fast, through_flask)):
        assert (same_moment(response.get_data())
                == same_moment(client.get(f"/f/{code}").get_data()))
    for code in players:  # the clock started at the press, the player's own 60 s
        started_at, ends = clock(code)
        assert started_at is not None and (ends - started_at).total_seconds() == 60


def test_the_plain_press_still_answers_303(client, players):
    code = players[0]
    response = client.post(f"/f/{code}/start", data=token_of(code))
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{code}"
    assert "HX-Replace-Url" not in response.headers
    assert clock(code)[0] is not None


def test_a_repeat_htmx_press_gets_the_same_page_and_the_clock_starts_once(client, players):
    code = players[0]
    first = press(client, code)
    started = clock(code)
    again = press(client, code)
    assert first.status_code == again.status_code == 200
    assert same_moment(first.get_data()) == same_moment(again.get_data())
    assert clock(code) == started


def test_without_a_stored_form_the_route_answers_with_the_live_questions(client, players):
    """The form not stored (yet, or lost): handed on once the clock runs; the route presses again
    (nothing changes) and answers with the live page, as GET /f/<code> would."""
    code = players[0]
    participant_id = db.session.scalar(
        db.select(FormLink.participant_id).where(FormLink.code == code))
    get_storage().delete(stored_forms.form_key("forms", 1, participant_id))
    paths = Paths()
    response = press(client, code)
    assert paths.counts() == (0, 1)
    assert response.status_code == 200 and response.headers["HX-Replace-Url"] == f"/f/{code}"
    page = response.get_data(as_text=True)
    assert "data-stored-form" not in page and "Which service stores objects?" in page
    assert 'name="csrf_token"' in page  # the live page's own form
    started = clock(code)
    assert started[0] is not None
    assert press(client, code).status_code == 200 and clock(code) == started


def test_a_press_that_lost_the_race_is_handed_on_and_gets_the_questions(client, players,
                                                                        monkeypatch):
    """Another press started the clock between this one's read and its UPDATE (which then
    changes nothing): its page isn't made from the read (the clock's end unknown there), but
    handed on; the route presses again (nothing changes) and answers with the questions."""
    from quiz import start_press
    code = players[0]
    window_end_of, raced = start_press.clocks.window_end_of, []

    def other_press_first(*args):
        ends = window_end_of(*args)
        if not raced:  # this press's: a press in another process, committed meanwhile
            raced.append(args[-1])
            with db.engine.begin() as other:
                other.execute(db.update(FormLink).where(FormLink.code == code).values(
                    started_at=args[-1], window_ends_at=ends))
        return ends
    monkeypatch.setattr(start_press.clocks, "window_end_of", other_press_first)
    paths = Paths()
    response = press(client, code)
    assert paths.counts() == (0, 1)
    assert response.status_code == 200 and response.headers["HX-Replace-Url"] == f"/f/{code}"
    assert b"Which service stores objects?" in response.get_data()
    started_at, ends = clock(code)
    assert started_at == raced[0] and (ends - started_at).total_seconds() == 60


@pytest.mark.parametrize("arrange, status, message", [
    (close_round, 409, "Round 1 is closed"),
    (time_up, 409, "Your time for round 1 is up"),
    (not_open, 409, "hasn't started"),
    (eliminated, 403, "knocked out in round 1"),
])
@pytest.mark.config(SHADOW_LEAGUE=False)
def test_a_refused_htmx_press_is_the_routes_page_whole(client, players, api_headers, arrange,
                                                        status, message):
    """A refusal is the page saying why, whole (static/js/in_place.js swaps its <main> in)."""
    code = arrange(client, api_headers, players[0]) or players[0]
    before = clock(code)
    paths = Paths()
    response = press(client, code)
    assert paths.counts() == (0, 1)
    page = response.get_data(as_text=True)
    assert response.status_code == status and message in page
    assert "<main" in page and "HX-Replace-Url" not in response.headers
    assert clock(code) == before


def test_an_htmx_press_needs_the_token_too(client, players):
    code = players[0]
    response = client.post(f"/f/{code}/start", data={"form_token": "f" * 32}, headers=HTMX)
    assert response.status_code == 400
    assert clock(code)[0] is None


def test_the_start_form_posts_with_htmx_from_the_page_and_its_fragment(client, players):
    """What a phone (and the rehearsal's synthetic ones) reads off the page: the Start form posts
    with htmx, its answer swapped in for the page's main."""
    code = players[0]
    for headers in ({}, {"HX-Request": "true"}):
        page = client.get(f"/f/{code}", headers=headers).get_data(as_text=True)
        assert posts_with_htmx(page, "/start")
        assert form_fields(page, "/start") == token_of(code)
        assert 'hx-target="closest main" hx-select="main"' in page
    press(client, code)
    submit_page = client.get(f"/f/{code}").get_data(as_text=True)
    assert posts_with_htmx(submit_page, "/submit")  # answered in place too (test_submit_htmx)


@pytest.mark.config(FORMS_DELIVERY="redirect")
def test_with_forms_delivered_by_pre_signed_urls_the_htmx_press_goes_to_the_link(client, players):
    """FORMS_DELIVERY=redirect: the page is a pre-signed URL's (storage's own host, which an htmx
    request can't fetch): the press's answer sends the browser to the link, as the 303 did."""
    code = players[0]
    response = press(client, code)
    assert response.status_code == 200
    if get_storage().presigns:
        assert response.headers["HX-Redirect"] == f"/f/{code}" and not response.get_data()
        assert client.get(f"/f/{code}").status_code == 303  # on to the pre-signed URL
    else:  # a folder has no pre-signed URLs: the page is served as ever
        assert b'data-stored-form="forms"' in response.get_data()
    assert clock(code)[0] is not None


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres)")
def test_an_htmx_press_reads_the_link_once(client, players, monkeypatch):
    """The questions page it answers with is made from the press's own read: on PostgreSQL the
    read and the UPDATE, two round trips (no transaction around them, no second read)."""
    from quiz import branding
    # the event's look, kept (else read again once LOOK_CACHE_SECONDS have passed: a slow machine)
    monkeypatch.setattr(branding, "LOOK_CACHE_SECONDS", 3600)
    branding.forget_look()
    branding.current_look()
    db.session.commit()
    paths = Paths()
    with round_trips(db.engine) as trips:
        response = press(client, players[0])
    assert paths.counts() == (1, 0)
    assert response.status_code == 200 and b"Which service stores objects?" in response.get_data()
    assert [trip.split()[0] for trip in trips] == ["SELECT", "UPDATE"], trips
