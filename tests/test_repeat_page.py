"""A repeated stored-form submit answered before Flask's view (quiz/web/repeat_page.py): the route's
"already in" page byte for byte, headers included, in the player's language and the event's look;
a page with anything more than the copy puts in goes to the route."""
import flask_wtf.csrf
import gevent
import itsdangerous
import pytest
from flask import g
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client

from quiz import links, waiting
from quiz.extensions import db, state
from quiz.models import Participant, Submission
from quiz.submit_read import reader
from quiz.web import page_cache, repeat_page, submit_path

from .helpers import POSTGRES_URL, session_token, start, text, token_field
from .test_submit_path import Paths, code_of, fields_for, stored_form_body

ALREADY_IN = {"en": "Your answers are already in", "de": "Deine Antworten sind schon da",
              "es": "Tus respuestas ya están"}


@pytest.fixture
def fixed_tokens(monkeypatch):
    """The same session token and signature time for every request: two answers to compare byte
    for byte, Set-Cookie included."""
    monkeypatch.setattr(flask_wtf.csrf.os, "urandom", lambda n: b"\x07" * n)
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: 1_900_000_000)


@pytest.fixture
def renders(monkeypatch):
    """The "already in" pages rendered (not taken from a copy), by code."""
    rendered = []
    original = repeat_page.render_round

    def counted(link, *args, **kwargs):
        rendered.append(link.code)
        return original(link, *args, **kwargs)
    monkeypatch.setattr(repeat_page, "render_round", counted)
    return rendered


@pytest.fixture
def players(client, load_bank, make_participant, open_round):
    """Players in English, German, Spanish and none chosen, each with their answers in (through
    their stored forms): {language: (code, stored-form body)}."""
    load_bank()
    languages = {"en": "Grace", "de": "Grete", "es": "Ana", None: "Alan"}
    ids = {language: make_participant(name).id for language, name in languages.items()}
    open_round()
    posts = {}
    for language, participant_id in ids.items():
        code = code_of(participant_id)
        assert start(client, code).status_code == 303
        body = stored_form_body(code, fields_for(client, code)[1])
        assert client.post(f"/f/{code}/submit", data=body).status_code == 303
        posts[language] = (code, body)
    for language, participant_id in ids.items():
        db.session.get(Participant, participant_id).language = language
    db.session.commit()
    return posts


def both(app, code: str, body: dict, **headers) -> list[tuple]:
    """The repeat answered here, and as before (handed on to the route): (status, headers,
    body) of each."""
    headers = {"X-Request-ID": "phone-7", **headers}
    answers = []
    for handed_on in (False, True):
        # each request its own token, as in a web process (here they share the test's context)
        g.pop("csrf_token", None)
        with pytest.MonkeyPatch.context() as patch:
            if handed_on:
                patch.setattr(submit_path, "repeat_response", lambda *args: None)
            answers.append(Client(app.wsgi_app, use_cookies=False).post(
                f"/f/{code}/submit", data=body, headers=headers))
    return [(r.status, list(r.headers.items()), r.get_data()) for r in answers]


def submissions() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Submission))


@pytest.mark.config(RATELIMIT_ENABLED=True)
@pytest.mark.parametrize("session", ["none", "the live page's"])
def test_a_repeat_gets_the_routes_page_byte_for_byte_rendered_once(
        app, client, players, fixed_tokens, renders, session):
    """A phone without a session (its stored form), or with the one its live page left."""
    headers = {}
    if session != "none":
        session_token(client)  # a session (a phone that registered on the web)
        client.get(f"/f/{players['es'][0]}")  # its live page marked it not fresh
        headers["Cookie"] = f"session={client.get_cookie('session').value}"
    paths = Paths()
    (first, first_body), (second, second_body) = players["en"], players[None]
    fast, route = both(app, first, first_body, **headers)
    assert fast == route
    assert fast[0] == "200 OK" and ALREADY_IN["en"].encode() in fast[2]
    names = [name for name, _ in fast[1]]
    assert "X-Request-ID" in names and "X-RateLimit-Remaining" not in names
    assert "Set-Cookie" not in names  # a link's page asks nothing of the session
    # the next player's page: the copy with their values put in, the same bytes as a render
    fast, route = both(app, second, second_body, **headers, **{"Accept-Language": "en"})
    assert fast == route
    assert b"Playing as <strong>Alan</strong>" in fast[2] and second.encode() in fast[2]
    assert renders == [first]
    assert (paths.answered(), paths.handed_on()) == (2, 2)  # (and 2 as before)
    assert submissions() == 4


@pytest.mark.parametrize("language", ["de", "es", None])
def test_in_the_players_language_or_the_phones(app, players, fixed_tokens, renders, language):
    code, body = players[language]
    # an English copy first: it must not serve another language
    both(app, *players["en"])
    phone = {"Accept-Language": "es"} if language is None else {}
    fast, route = both(app, code, body, **phone)
    assert fast == route
    assert ALREADY_IN[language or "es"].encode() in fast[2]
    assert f'<html lang="{language or "es"}">'.encode() in fast[2]
    assert len(renders) == 2


@pytest.mark.config(EVENT_NAME="Acme Summit", BRAND_PRIMARY="#FC0", BRAND_ACCENT="0a5f38",
                    SPONSORS="Acme, Globex", EVENT_LOGO="https://cdn.example/acme.png")
def test_with_the_events_look(app, players, fixed_tokens, renders):
    for language in ("en", None):
        fast, route = both(app, *players[language])
        assert fast == route
        assert b"Acme Summit" in fast[2] and b"brand/look.css" in fast[2]
    assert len(renders) == 1


def test_a_session_with_a_flash_message_goes_to_the_route(app, client, players, renders):
    code, body = players["en"]
    with client.session_transaction() as session:
        session["_flashes"] = [("ok", "A message for this page only")]
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data=body)
    assert response.status_code == 200 and ALREADY_IN["en"] in text(response)
    assert "A message for this page only" in text(response)
    assert (paths.answered(), paths.handed_on()) == (0, 1)
    assert renders == []


def test_a_player_who_asked_the_help_desk_gets_the_routes_page(app, client, players, renders):
    code, body = players["en"]
    name, token = token_field(client.get(f"/f/{code}").get_data(as_text=True))
    asked = client.post(f"/f/{code}/help", data={name: token, "kind": "other",
                                                 "text": "Is it in?"})
    assert asked.status_code == 303
    client.get(f"/f/{code}")  # the flash shown and gone: only the help request remains
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data=body)
    assert response.status_code == 200 and ALREADY_IN["en"] in text(response)
    assert "Is it in?" in text(response)
    assert (paths.answered(), paths.handed_on()) == (0, 1)
    assert renders == []


def test_a_copy_never_crosses_players(app, players, renders):
    """Each player's page carries their own name, code, report link and session token."""
    pages = {}
    for language in ("en", None):
        code, body = players[language]
        pages[code] = Client(app.wsgi_app).post(f"/f/{code}/submit", data=body).get_data(True)
    (one, one_page), (other, other_page) = pages.items()
    assert one not in other_page and other not in one_page
    assert "Grace" in one_page and "Grace" not in other_page and "Alan" in other_page
    assert len(renders) == 1 and "\x00" not in one_page + other_page
    assert page_cache.EXTENSION in app.extensions


def test_a_copy_outlives_the_status_read_again(app, players, renders):
    """The process reads the shared status again every STATUS_CACHE_SECONDS (here at every
    look): a render that straddles a refresh of the same status still keeps its copy."""
    app.config["STATUS_CACHE_SECONDS"] = 0
    app.extensions[waiting.EXTENSION].forget()
    for language in ("en", None):
        code, body = players[language]
        assert Client(app.wsgi_app).post(f"/f/{code}/submit", data=body).status_code == 200
    assert len(renders) == 1


def test_a_failed_read_hands_the_repeat_to_the_route(app, client, players, monkeypatch):
    def cut(code):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))
    monkeypatch.setattr(repeat_page, "find_round_page", cut)
    code, body = players["en"]
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data=body)
    assert response.status_code == 200 and ALREADY_IN["en"] in text(response)
    assert (paths.answered(), paths.handed_on()) == (0, 1)
    assert submissions() == 4


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_repeats_at_once_read_their_pages_rows_in_one_query(app, players):
    """In a web process on PostgreSQL the repeats' rows are read together (quiz/submit_read.py):
    each still gets its own page, in its own language."""
    state(app).submit_writer.batched = True  # as in a gevent web process
    group = reader().group(links._page_statements()[links.GROUPED], "code")
    before, paths = group.queries, Paths()
    posts = [(language, code, body) for language, (code, body) in players.items() if language]
    greenlets = [gevent.spawn(Client(app.wsgi_app).post, f"/f/{code}/submit", data=body)
                 for _, code, body in posts]
    gevent.joinall(greenlets, raise_error=True)
    for (language, code, _), greenlet in zip(posts, greenlets):
        assert greenlet.value.status_code == 200
        assert ALREADY_IN[language] in greenlet.value.get_data(as_text=True)
    assert paths.answered() == len(posts) and paths.handed_on() == 0
    assert group.queries == before + 1
