"""Hostile and broken input, table-driven: each case gets the status and message expected, and
nothing changes.

The event is mid-game: round 1 closed (P1 through, P2 and P3 out), round 2 open (P1 has
pressed Start), round 3 not started.
"""
import html
import io
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from quiz.config import TestConfig
from quiz.deal import choice_value
from quiz.extensions import db
from quiz.models import AuditEntry, Challenge, FormLink, Message, Participant, Submission

from .helpers import SMALL_BANK, answer_form, csrf_from, login, start, submit

BANK = SMALL_BANK + """
  - number: 3
    title: Third
    questions:
      - text: Last?
        choices: [yes, no]
        answer: yes
"""


@dataclass
class Event:
    client: object
    links: dict  # (player, round) → code
    token: str
    fields: dict = field(default_factory=dict)  # P1's round-2 question fields → choice values


@pytest.fixture
def event(client, load_bank, make_participant, api_headers):
    load_bank(BANK)
    players = {name: make_participant(name).id for name in ("P1", "P2", "P3")}
    links = {(name, c.number): l.code for name, pid in players.items()
             for l, c in db.session.execute(select(FormLink, Challenge).join(Challenge)
                                            .where(FormLink.participant_id == pid))}
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    start(client, links["P1", 1])
    submit(client, links["P1", 1], [["S3"], ["RDS", "DynamoDB"]])
    start(client, links["P2", 1])
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    start(client, links["P1", 2])
    token, fields = answer_form(client, links["P1", 2])
    return Event(client, links, token, {name: options for name, options in fields.items()})


def snapshot():
    """Everything a request could change."""
    return {
        "participants": db.session.execute(select(Participant.id, Participant.name,
                                                  Participant.eliminated_in)
                                           .order_by(Participant.id)).all(),
        "submissions": db.session.scalar(select(func.count()).select_from(Submission)),
        "rounds": db.session.execute(select(Challenge.number, Challenge.status)
                                     .order_by(Challenge.number)).all(),
        "started": db.session.execute(select(FormLink.code, FormLink.started_at)
                                      .order_by(FormLink.id)).all(),
        "messages": db.session.scalar(select(func.count()).select_from(Message)),
        "audit": db.session.scalar(select(func.count()).select_from(AuditEntry)),
    }


def answers(e: Event, **override) -> dict:
    """A complete, valid round-2 answer form from P1, with some fields replaced."""
    name = next(iter(e.fields))
    data = {"csrf_token": e.token, name: e.fields[name]["4"]}
    data.update(override)
    return data


def q(e: Event) -> str:
    return next(iter(e.fields))


REGISTER = {"name": "Mallory", "email": "mallory@example.com", "phone": "+14155550999",
            "company": "Evil", "consent": "yes"}
API = {"Authorization": "Bearer test-token"}

# (id, request builder(e) → (method, url, kwargs), status, message)
CASES = [
    # Links
    ("unknown link", lambda e: ("get", "/f/" + "A" * 22, {}), 404, "This link is not valid"),
    ("truncated link", lambda e: ("get", "/f/" + e.links["P1", 2][:10], {}),
     404, "This link is not valid"),
    ("tampered link", lambda e: ("get", "/f/" + e.links["P1", 2][:-2]
                                 + ("zz" if not e.links["P1", 2].endswith("zz") else "yy"), {}),
     404, "This link is not valid"),
    ("over-long link", lambda e: ("get", "/f/" + "x" * 300, {}), 404, "This link is not valid"),
    ("link with odd characters", lambda e: ("get", "/f/abc%00def%3Cscript%3E", {}),
     404, "This link is not valid"),
    ("unknown report link", lambda e: ("get", "/r/" + "B" * 22, {}),
     404, "report link is not valid"),
    ("start on a round not open yet", lambda e: ("post", f"/f/{e.links['P1', 3]}/start",
                                                 {"data": {"csrf_token": e.token}}),
     409, "hasn't started yet"),
    ("start on a closed round", lambda e: ("post", f"/f/{e.links['P3', 1]}/start",
                                           {"data": {"csrf_token": e.token}}),
     409, "is closed"),
    ("start after elimination", lambda e: ("post", f"/f/{e.links['P2', 2]}/start",
                                           {"data": {"csrf_token": e.token}}),
     403, "knocked out in round 1"),
    ("start on an unknown link", lambda e: ("post", "/f/" + "C" * 22 + "/start",
                                            {"data": {"csrf_token": e.token}}),
     404, "This link is not valid"),
    # Submissions
    ("submit for a round not open", lambda e: ("post", f"/f/{e.links['P1', 3]}/submit",
                                               {"data": answers(e)}),
     409, "hasn't started yet"),
    ("submit to a closed round", lambda e: ("post", f"/f/{e.links['P2', 1]}/submit",
                                            {"data": answers(e)}),
     409, "is closed"),
    ("submit after elimination", lambda e: ("post", f"/f/{e.links['P3', 2]}/submit",
                                            {"data": answers(e)}),
     403, "knocked out in round 1"),
    ("submit again to a finished round", lambda e: ("post", f"/f/{e.links['P1', 1]}/submit",
                                                    {"data": answers(e)}),
     200, "already in"),
    ("answer for a question not in the round", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                                          {"data": answers(e, q999999="0")}),
     422, "not in this round"),
    ("answer for another round's question", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                                       {"data": answers(e, **{"q1": "1"})}),
     422, "not in this round"),
    ("missing answer", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                  {"data": {"csrf_token": e.token}}),
     422, "needs an answer"),
    ("two answers to a one-answer question", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                                        {"data": answers(e, **{q(e): [
                                                            e.fields[q(e)]["3"],
                                                            e.fields[q(e)]["4"]]})}),
     422, "takes one answer"),
    ("the same answer twice", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                         {"data": answers(e, **{q(e): ["1", "1"]})}),
     422, "isn't one of the options"),
    ("choice out of range", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                       {"data": answers(e, **{q(e): "7"})}),
     422, "isn't one of the options"),
    ("negative choice", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                   {"data": answers(e, **{q(e): "-1"})}),
     422, "isn't one of the options"),
    ("choice that is not a number", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                               {"data": answers(e, **{q(e): "four"})}),
     422, "isn't one of the options"),
    ("oversized answer", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                    {"data": answers(e, **{q(e): "9" * 5000})}),
     422, "isn't one of the options"),
    ("a file where a choice is asked", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit", {
        "data": {"csrf_token": e.token, q(e): (io.BytesIO(b"\xff\xd8\xff"), "x.jpg")},
        "content_type": "multipart/form-data"}),
     422, "needs an answer"),
    ("a photo for a question not in the round", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit",
        {"data": {**answers(e), "q999999": (io.BytesIO(b"\xff\xd8\xff"), "x.jpg")},
         "content_type": "multipart/form-data"}),
     422, "not in this round"),
    ("a large photo to a round without photo questions", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit",
        {"data": {**answers(e), "q999999": (io.BytesIO(b"\x00" * 100_000), "x.jpg")},
         "content_type": "multipart/form-data"}),
     413, "more data"),
    ("body over the size limit", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                            {"data": answers(e, padding="x" * 70_000)}),
     413, "more data"),
    ("thousands of answers to one question", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit", {"data": answers(e, **{q(e): ["1"] * 1500})}),
     422, "isn't one of the options"),
    # CSRF
    ("register without CSRF token", lambda e: ("post", "/register", {"data": REGISTER}),
     400, "Reload the page"),
    ("start without CSRF token", lambda e: ("post", f"/f/{e.links['P1', 2]}/start", {"data": {}}),
     400, "Reload the page"),
    ("submit without CSRF token", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                             {"data": answers(e, csrf_token="")}),
     400, "Reload the page"),
    ("submit with a forged CSRF token", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                                   {"data": answers(e, csrf_token="forged")}),
     400, "Reload the page"),
    ("console action without login", lambda e: ("post", "/admin/rounds/2/end",
                                                {"data": {"csrf_token": e.token}}),
     302, ""),
    # Admin API
    ("admin API without token", lambda e: ("post", "/api/admin/end-challenge/2", {}),
     401, "Authorization: Bearer"),
    ("admin API with a wrong token", lambda e: ("post", "/api/admin/end-challenge/2",
                                                {"headers": {"Authorization": "Bearer nope"}}),
     403, "not valid"),
    ("admin token in the query string",
     lambda e: ("post", "/api/admin/end-challenge/2?token=test-token", {}),
     401, "Authorization: Bearer"),
    ("admin API on an unknown round", lambda e: ("post", "/api/admin/start-challenge/99",
                                                 {"headers": API}),
     404, "There is no round 99"),
    ("ending a round twice", lambda e: ("post", "/api/admin/end-challenge/1", {"headers": API}),
     409, "closed, not open"),
    ("registration after round 1 closed", lambda e: ("post", "/api/register", {"json": REGISTER}),
     409, "Registration is closed"),
    ("registration form after round 1 closed",
     lambda e: ("post", "/register", {"data": {**REGISTER, "csrf_token": e.token}}),
     409, "Registration is closed"),
    # JSON bodies
    ("JSON API with a form body", lambda e: ("post", "/api/register", {"data": REGISTER}),
     415, "application/json"),
    ("malformed JSON", lambda e: ("post", "/api/register",
                                  {"data": "{oops", "content_type": "application/json"}),
     400, "not a JSON object"),
    ("JSON that is not an object", lambda e: ("post", "/api/register", {"json": [REGISTER]}),
     400, "not a JSON object"),
    ("non-UTF-8 JSON", lambda e: ("post", "/api/register", {"data": b'{"name": "\xff\xfe"}',
                                                            "content_type": "application/json"}),
     400, "not a JSON object"),
    ("JSON over the size limit", lambda e: ("post", "/api/register",
                                            {"json": {**REGISTER, "name": "x" * 70_000}}),
     413, "more data"),
    # An open round's standings are for staff: a wrong token is refused, not answered as public.
    ("open round's leaderboard with a wrong token",
     lambda e: ("get", "/api/leaderboard/2", {"headers": {"Authorization": "Bearer nope"}}),
     403, "not valid"),
    ("open round's leaderboard with another auth scheme",
     lambda e: ("get", "/api/leaderboard/2", {"headers": {"Authorization": "Basic dGVzdA=="}}),
     401, "Authorization: Bearer"),
    ("open round's leaderboard, public", lambda e: ("get", "/api/leaderboard/2", {}),
     200, '"entries":[],"players":1,"status":"open","submitted":0'),
    # Opaque choices (quiz/deal.py): only this link's own values name a choice. "4" is choice 1.
    ("a bank index as the choice (value 0)", lambda e: ("post", f"/f/{e.links['P1', 2]}/submit",
                                                        {"data": answers(e, **{q(e): "0"})}),
     422, "Reload the page and choose again"),
    ("another player's value for the right choice", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit",
        {"data": answers(e, **{q(e): value_of(e.links["P2", 2], q(e), 1)})}),
     422, "Reload the page and choose again"),
    ("the right choice's value from the player's own round-1 link", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit",
        {"data": answers(e, **{q(e): value_of(e.links["P1", 1], q(e), 1)})}),
     422, "Reload the page and choose again"),
    ("a value made with another secret", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit",
        {"data": answers(e, **{q(e): value_of(e.links["P1", 2], q(e), 1, "guessed")})}),
     422, "Reload the page and choose again"),
    ("a value of one question sent for another", lambda e: (
        "post", f"/f/{e.links['P1', 2]}/submit",
        {"data": answers(e, **{q(e): value_of(e.links["P1", 2], "q1", 1)})}),
     422, "Reload the page and choose again"),
    # Photos to a link that can't take answers: refused on the link's state, nothing decoded
    ("a photo to a finished round's link", lambda e: photo_to(e, e.links["P1", 1]),
     200, "already in"),
    ("a photo to a closed round's link", lambda e: photo_to(e, e.links["P2", 1]), 409, "is closed"),
    ("a photo to a round not open yet", lambda e: photo_to(e, e.links["P1", 3]),
     409, "hasn't started yet"),
    # Numbers past a database integer, JSON nested past any parser's patience, an unknown organizer
    ("round number past a database integer",
     lambda e: ("get", "/api/leaderboard/99999999999999999999", {}),
     404, "nothing at this address"),
    ("admin API on a round number past a database integer",
     lambda e: ("post", "/api/admin/start-challenge/99999999999999999999", {"headers": API}),
     404, "nothing at this address"),
    ("JSON nested 30,000 deep", lambda e: ("post", "/api/register", {
        "data": b'{"name": ' + b"[" * 30_000, "content_type": "application/json"}),
     400, "nested too deeply"),
    ("console login as an unknown organizer", lambda e: ("post", "/admin/login", {"data": {
        "csrf_token": e.token, "username": "nobody", "password": "test-password"}}),
     401, "don't match"),
]


def value_of(code: str, field: str, index: int, secret: str = TestConfig.SECRET_KEY) -> str:
    """The value link `code` would send for choice `index` of the question in `field`."""
    return choice_value(secret, code, int(field[1:]), index)


def photo_to(e: Event, code: str):
    """A multipart submit carrying an image file (a PNG header, then nothing a decoder wants)."""
    photo = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000)
    return ("post", f"/f/{code}/submit", {"content_type": "multipart/form-data", "data": {
        "csrf_token": e.token, "q1": (photo, "bomb.png")}})


# Joining, while registration is open (one player, "Taken", already in).
SIGNUP_CASES = [
    ("over-long name", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "name": "N" * 81}}), 422, "under 80 characters"),
    ("over-long company", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "company": "C" * 101}}), 422, "under 100 characters"),
    ("control characters in a name", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "name": "Mal\x07lory"}}), 422, "letters, digits"),
    ("bidi override in a name", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "name": "Mal\u202elory"}}), 422, "letters, digits"),
    ("non-UTF-8 form body", lambda e: ("post", "/register", {
        "data": b"csrf_token=" + e.token.encode() + b"&name=Mal%FF%FElory&email=m%40example.com"
                b"&phone=%2B14155550999&consent=yes",
        "content_type": "application/x-www-form-urlencoded"}), 400, "isn't UTF-8"),
    ("phone made of letters", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "phone": "call me"}}),
     422, "doesn't look like a phone number"),
    ("phone too short", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "phone": "+1 415"}}), 422, "isn't valid"),
    ("email without @", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "email": "mallory"}}), 422, "must have an @-sign"),
    ("email with a display name", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "email": "Mal <m@example.com>"}}), 422, "email"),
    ("no consent", lambda e: ("post", "/register", {
        "data": {k: v for k, v in REGISTER.items() if k != "consent"} | {"csrf_token": e.token}}),
     422, "Needed"),
    ("email already registered, other case", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "email": "TAKEN@example.com"}}),
     409, "already registered"),
    ("phone already registered, other format", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "phone": "(415) 555-0001"}}), 409, "already registered"),
    ("API: phone already registered", lambda e: ("post", "/api/register", {"json": {
        **REGISTER, "phone": "+1 415 555 0001"}}), 409, "already registered"),
    ("API: invalid email and phone", lambda e: ("post", "/api/register", {"json": {
        **REGISTER, "email": "x@", "phone": "1"}}), 422, "Please fix the highlighted fields"),
    # Asking for the round links with a wrong admin token: refused before anyone is registered.
    ("API: register with a wrong admin token", lambda e: ("post", "/api/register", {
        "json": REGISTER, "headers": {"Authorization": "Bearer nope"}}), 403, "not valid"),
    ("API: an object as a name", lambda e: ("post", "/api/register", {"json": {
        **REGISTER, "name": {"$gt": ""}}}), 422, "Please send name as text"),
    ("API: a list as a phone", lambda e: ("post", "/api/register", {"json": {
        **REGISTER, "phone": ["+14155550999"]}}), 422, "Please send phone as text"),
    ("API: a number as an email", lambda e: ("post", "/api/register", {"json": {
        **REGISTER, "email": 42}}), 422, "Please send email as text"),
    ("API: true as a company", lambda e: ("post", "/api/register", {"json": {
        **REGISTER, "company": True}}), 422, "Please send company as text"),
    ("a name of invisible characters", lambda e: ("post", "/register", {"data": {
        **REGISTER, "csrf_token": e.token, "name": "\u200b\u2060\u3164\ufeff"}}),
     422, "Please fill this in"),
    ("API: no consent", lambda e: ("post", "/api/register", {"json": {
        k: v for k, v in REGISTER.items() if k != "consent"}}), 422, "Needed"),
]


@pytest.fixture
def signup(client, load_bank, make_participant):
    load_bank(BANK)
    make_participant("Taken", email="taken@example.com", phone="+14155550001")
    return Event(client, {}, csrf_from(client.get("/register").get_data(as_text=True)))


@pytest.mark.parametrize("build, status, message", [c[1:] for c in SIGNUP_CASES],
                         ids=[c[0] for c in SIGNUP_CASES])
def test_bad_registrations_get_a_clear_answer_and_change_nothing(signup, build, status, message):
    check(signup, build, status, message)


# With SHADOW_LEAGUE on (the default) a knocked-out player may play on, apart: those cases run with
# it off (tests/test_shadow.py covers the league, and the disqualified, who are never let in).
SHADOW_OFF = pytest.mark.config(SHADOW_LEAGUE=False)


@pytest.mark.parametrize("build, status, message", [
    pytest.param(*c[1:], marks=SHADOW_OFF if "after elimination" in c[0] else ()) for c in CASES],
    ids=[c[0] for c in CASES])
def test_hostile_input_gets_a_clear_answer_and_changes_nothing(event, build, status, message):
    check(event, build, status, message)


def check(event: Event, build, status: int, message: str) -> None:
    before = snapshot()
    method, url, kwargs = build(event)
    response = getattr(event.client, method)(url, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    assert message in html.unescape(response.get_data(as_text=True))
    db.session.expire_all()
    assert snapshot() == before


def test_there_are_at_least_forty_cases():
    assert len(CASES) + len(SIGNUP_CASES) >= 40


def test_markup_in_names_is_shown_as_text_on_projector_and_console(client, load_bank, api_headers):
    load_bank()
    client.post("/api/register", json={**REGISTER, "name": "<img src=x onerror=alert(1)>",
                                       "company": "<script>x</script>"})
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    display = client.get("/display").get_data(as_text=True)
    assert "<img src=x" not in display and "&lt;img src=x onerror=alert(1)&gt;" in display
    login(client)
    console = client.get("/admin/").get_data(as_text=True)
    assert "<script>x</script>" not in console
