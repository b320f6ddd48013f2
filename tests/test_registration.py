"""Joining: the HTML form (as a phone posts it) and POST /api/register."""
import html
from collections import Counter

import pytest
from sqlalchemy import func, select

from quiz.extensions import db, get_queue
from quiz.models import FormLink, Message, Participant

from .helpers import post_form

GOOD = {"name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+44 7911 123456",
        "company": "Analytical", "consent": "yes"}


def players() -> int:
    return db.session.scalar(select(func.count()).select_from(Participant))


def test_form_registers_and_confirms_with_what_happens_next(client, load_bank):
    load_bank()
    response = post_form(client, "/register", "/register", GOOD, follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You're in, Ada Lovelace!" in page and "+447911123456" in page and "<svg" in page
    participant = db.session.scalar(select(Participant))
    assert (participant.email, participant.phone) == ("ada@example.com", "+447911123456")
    assert db.session.scalar(select(func.count()).select_from(FormLink)) == 2


@pytest.mark.parametrize("field, value, message", [
    ("name", "", "Please fill this in."),
    ("name", "x" * 81, "under 80 characters"),
    ("name", "Eve\u202eevil", "letters, digits and punctuation"),
    ("email", "not-an-email", "An email address must have an @-sign."),
    ("email", "", "Please enter your email address."),
    ("phone", "call me", "doesn't look like a phone number"),
    ("phone", "12", "isn't valid"),
    ("phone", "+1 555 000 0000", "isn't valid"),
    ("phone", "", "Please enter your mobile number"),
    ("company", "c" * 101, "under 100 characters"),
])
def test_form_errors_inline_with_input_kept(client, field, value, message):
    response = post_form(client, "/register", "/register", {**GOOD, field: value})
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert message in page
    for kept in ("name", "email", "phone", "company"):
        if kept != field:
            assert f'value="{GOOD[kept]}"' in page
    assert players() == 0


@pytest.mark.parametrize("ticked", [True, False])
def test_sponsor_contact_is_a_separate_optional_box(client, load_bank, ticked):
    """Playing needs the SMS box; being a sponsor lead is a second box, unticked by default, never
    required."""
    load_bank()
    page = client.get("/register").get_data(as_text=True)
    assert 'name="sponsor_consent" value="yes" >' in page  # not pre-ticked, not required
    form = GOOD | ({"sponsor_consent": "yes"} if ticked else {})
    assert post_form(client, "/register", "/register", form).status_code == 303
    assert db.session.scalar(select(Participant.sponsor_consent)) is ticked


def test_api_register_takes_sponsor_consent_and_defaults_to_no(client, load_bank):
    load_bank()
    body = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100", "consent": True}
    assert client.post("/api/register", json=body).status_code == 201
    assert client.post("/api/register", json=body | {"email": "bo@example.com",
                                                      "phone": "+14155550101",
                                                      "sponsor_consent": True}).status_code == 201
    assert dict(db.session.execute(select(Participant.email,
                                          Participant.sponsor_consent)).all()) == {
        "ada@example.com": False, "bo@example.com": True}


def test_form_requires_consent(client):
    response = post_form(client, "/register", "/register",
                         {k: v for k, v in GOOD.items() if k != "consent"})
    assert response.status_code == 422
    assert "Needed: your round links come by SMS." in response.get_data(as_text=True)
    assert players() == 0


def test_form_without_csrf_token_is_refused(client):
    response = client.post("/register", data=GOOD)
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert players() == 0


@pytest.mark.parametrize("change, field", [({"phone": "+44 7911 123999"}, "email"),
                                           ({"email": "other@example.com"}, "phone")])
def test_second_registration_gets_a_clear_answer_not_a_second_player(client, change, field):
    assert post_form(client, "/register", "/register", GOOD).status_code == 303
    again = post_form(client, "/register", "/register", {**GOOD, **change})
    assert again.status_code == 409
    assert "already registered" in again.get_data(as_text=True)
    assert players() == 1


def test_api_register_returns_the_design_json(client, load_bank):
    load_bank()
    response = client.post("/api/register", json={**GOOD, "consent": True})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"user_id", "form_urls", "current_form_url", "report_url"}
    assert set(body["form_urls"]) == {"1", "2"}
    assert body["form_urls"]["1"].startswith("http://quiz.test/f/")
    assert body["current_form_url"] == body["form_urls"]["1"]
    assert body["report_url"].startswith("http://quiz.test/r/")
    code = body["form_urls"]["1"].rsplit("/", 1)[1]
    assert len(code) >= 22  # 16 random bytes: 128 bits


@pytest.mark.parametrize("kwargs, status, message", [
    ({"json": {**GOOD, "email": "bad"}}, 422, "fields"),
    ({"data": "name=x"}, 415, "application/json"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "not a JSON object"),
    ({"json": ["a", "list"]}, 400, "not a JSON object"),
    ({"data": b"\xff\xfe\x00bad", "content_type": "application/json"}, 400, "not a JSON object"),
    ({"data": '{"name": "' + "x" * 70_000 + '"}', "content_type": "application/json"}, 413,
     "more data"),
])
def test_api_register_bad_input(client, kwargs, status, message):
    response = client.post("/api/register", **kwargs)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert players() == 0


def test_api_duplicate_is_409(client):
    assert client.post("/api/register", json=GOOD).status_code == 201
    response = client.post("/api/register",
                           json={**GOOD, "phone": "+44 7911 123999", "email": "ADA@example.com"})
    assert response.status_code == 409
    assert response.get_json()["error"] == "already_registered"
    assert players() == 1


def test_markup_in_names_is_escaped(client, load_bank, make_participant):
    load_bank()
    response = post_form(client, "/register", "/register",
                         {**GOOD, "name": "<script>alert(1)</script>", "company": "<b>Evil</b>"},
                         follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_registration_closes_once_round_one_has_closed(client, load_bank, make_participant,
                                                       api_headers):
    load_bank()
    make_participant()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    response = client.post("/api/register", json=GOOD)
    assert response.status_code == 409
    assert "Registration is closed" in response.get_json()["message"]
    assert "Registration is closed" in client.get("/register").get_data(as_text=True)


def test_players_joining_while_round_one_is_open_get_its_link_once_from_one_job(
        client, load_bank, api_headers, run_jobs):
    load_bank()
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    run_jobs()
    joined = [client.post("/api/register", json={"name": f"Late {n}",
                                                 "email": f"late{n}@example.com",
                                                 "phone": f"+1415555{n:04d}",
                                                 "consent": True}).get_json()["user_id"]
              for n in range(3)]
    # One job stores the three forms, one texts the three links: a rush of late joiners doesn't
    # make a job each. The links' job waits in the links queue, never behind stored forms.
    assert get_queue("forms").count == 1 and get_queue("links").count == 1
    run_jobs()
    texted = Counter(db.session.scalars(select(Message.participant_id)
                                        .where(Message.kind == "round_link")))
    assert {pid: texted[pid] for pid in joined} == {pid: 1 for pid in joined}
    assert db.session.scalar(select(func.count()).select_from(Message).where(
        Message.kind == "round_link", Message.status == "queued")) == 0  # sent, not left waiting


API_GOOD = {**GOOD, "consent": True}


@pytest.mark.parametrize("field", ["name", "email", "phone", "company"])
@pytest.mark.parametrize("value", [{"$gt": ""}, ["Ada"], True, 42, 4.5])
def test_api_refuses_a_non_string_field_by_name(client, field, value):
    response = client.post("/api/register", json={**API_GOOD, field: value})
    assert response.status_code == 422
    body = response.get_json()
    assert set(body["fields"]) == {field} and field in body["message"]
    assert players() == 0


@pytest.mark.parametrize("name", ["\u200b", "\u2060\u2060", "\u3164", "\ufeff", "\u200b \u00ad",
                                  "\u115f\u1160", "\ufe0f", "\u2800", "\U000e0041"])
def test_names_made_of_invisible_characters_are_empty(client, name):
    response = client.post("/api/register", json={**API_GOOD, "name": name})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"name": "Please fill this in."}
    assert players() == 0


def test_bidi_marks_are_stripped_from_names(client):
    name = "\u200fAda\u200e Love\u061clace\u200f"
    assert client.post("/api/register", json={**API_GOOD, "name": name,
                                              "company": "\u200eAnalytical"}).status_code == 201
    assert db.session.execute(select(Participant.name, Participant.company)).one() == (
        "Ada Lovelace", "Analytical")


@pytest.mark.parametrize("consent", [None, False, "no", "", {"$ne": 0}, [True]])
def test_api_requires_consent_like_the_page(client, consent):
    body = {key: value for key, value in API_GOOD.items() if key != "consent"}
    if consent is not None:
        body["consent"] = consent
    response = client.post("/api/register", json=body)
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"consent"}
    assert players() == 0
