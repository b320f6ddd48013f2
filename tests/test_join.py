"""The join form with htmx: each field checked as the person leaves it (POST
/register/check/<field>)
and the submit answered in place. Without JavaScript it is the full page post of
test_registration.py."""
import re

import pytest
from flask import g
from sqlalchemy import func, select

from quiz.extensions import db
from quiz.models import Participant

from .helpers import csrf_from, text

GOOD = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 7911 123456",
        "company": "Analytical", "consent": "yes"}
HTMX = {"HX-Request": "true"}


@pytest.fixture
def check(client):
    """POST one field's value as htmx sends it when the field is left: that value alone, the CSRF
    token in the X-CSRFToken header (from <body hx-headers>)."""
    token = csrf_from(client.get("/register").get_data(as_text=True))

    def check_(field: str, value: str, **headers):
        return client.post(f"/register/check/{field}", data={field: value},
                           headers={**HTMX, "X-CSRFToken": token, **headers})
    return check_


BAD = [
    ("name", "", "Please fill this in."),
    ("name", "\u200b\u3164", "Please fill this in."),
    ("name", "x" * 81, "under 80 characters"),
    ("name", "Eve\u202eevil", "letters, digits and punctuation"),
    ("email", "not-an-email", "An email address must have an @-sign."),
    ("email", "ada@", "There must be something after the @-sign."),
    ("email", "", "Please enter your email address."),
    ("email", "a" * 250 + "@x.io", "That email address is too long."),
    ("phone", "call me", "doesn't look like a phone number"),
    ("phone", "12", "isn't valid"),
    ("phone", "+1 555 000 0000", "isn't valid"),
    ("phone", "", "Please enter your mobile number"),
    ("phone", "1" * 33, "too long for a phone number"),
    ("company", "c" * 101, "under 100 characters"),
    ("company", "Acme\x07", "letters, digits and punctuation"),
]


@pytest.mark.parametrize("field, value, message", BAD)
def test_a_bad_field_answers_its_partial_with_the_message_tied_to_the_input(check, field, value,
                                                                             message):
    """200: the check worked and its answer is the field as it stands (htmx swaps 2xx as they
    are); the message is what to fix, tied to the input for a screen reader."""
    response = check(field, value)
    assert response.status_code == 200
    page = text(response)
    assert message in page
    assert page.count('id="field-') == 1 and f'id="field-{field}"' in page  # that field alone
    assert f'id="{field}-message"' in page and 'class="error"' in page
    input_tag = re.search(r"<input[^>]*>", page, re.S).group(0)
    assert 'aria-invalid="true"' in input_tag
    assert f'aria-describedby="{field}-message"' in input_tag
    assert f'name="{field}"' in input_tag
    assert "<html" not in page  # a fragment
    # what was typed is kept as typed
    assert f'value="{value}"' in page or len(value) > 80


@pytest.mark.parametrize("field, value, note", [
    ("name", "Ada Lovelace", "Shown on the big screen if you do well."),
    ("email", "Ada@Example.com", None),
    ("phone", "+44 7911 123456", "Your round links come by SMS to +44 7911 123456 (GB)."),
    ("phone", "415 555 0100", "Your round links come by SMS to +1 415-555-0100 (US)."),
    ("company", "", None),
    ("company", "Analytical Engines", None),
])
def test_a_good_field_clears_its_message(check, field, value, note):
    """After a bad value, a good one comes back without a message; a phone is read back with the
    country it was read in (PHONE_DEFAULT_REGION when typed without +country)."""
    check(field, "\u202e" if field != "phone" else "call me")
    response = check(field, value)
    assert response.status_code == 200
    page = text(response)
    assert 'aria-invalid' not in page and 'class="error"' not in page
    assert "has-error" not in page
    if note:
        assert note in page and f'aria-describedby="{field}-message"' in page
    else:
        assert f'id="{field}-message"' not in page and "aria-describedby" not in page


@pytest.mark.parametrize("field, registered, new", [
    ("email", "ada@example.com", "bo@example.com"),
    ("email", "ADA@Example.com", "BO@Example.com"),
    ("phone", "+44 7911 123456", "+44 7911 123457"),
])
def test_no_existence_oracle(check, make_participant, field, registered, new):
    """A registered email or phone checks exactly like a new one: only the submit says it is
    taken."""
    make_participant(email="ada@example.com", phone="+447911123456")
    check("name", "Ada")  # the session's first answer sets its cookie (Flask-Login): not compared
    taken, fresh = check(field, registered), check(field, new)
    assert taken.status_code == fresh.status_code == 200
    assert dict(taken.headers).keys() == dict(fresh.headers).keys()
    body_taken = taken.get_data(as_text=True)
    body_fresh = fresh.get_data(as_text=True)
    # The same page but for the value itself (and, for a phone, its read-back).
    if field == "phone":
        body_taken = body_taken.replace("7911 123456", "X")
        body_fresh = body_fresh.replace("7911 123457", "X")
    assert body_taken.replace(registered, "X") == body_fresh.replace(new, "X")
    assert "already registered" not in body_taken


def test_only_the_join_fields_are_checked(check):
    assert check("consent", "yes").status_code == 404
    assert check("password", "x").status_code == 404


def test_a_check_without_the_csrf_token_is_refused(client):
    client.get("/register")
    response = client.post("/register/check/email", data={"email": "a@b.co"}, headers=HTMX)
    assert response.status_code == 400
    assert "Reload the page" in text(response)


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_checks_are_rate_limited_per_browser(check, client):
    statuses = [check("name", f"Ada {i}").status_code for i in range(61)]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429
    # another browser (its own session) behind the same address still checks
    g.pop("csrf_token", None)  # the tests' app context outlives requests: its cached token goes
    other = client.application.test_client()
    token = csrf_from(other.get("/register").get_data(as_text=True))
    assert other.post("/register/check/name", data={"name": "Bo"},
                      headers={**HTMX, "X-CSRFToken": token}).status_code == 200


def test_the_page_carries_each_field_partial_with_its_check(client):
    page = client.get("/register").get_data(as_text=True)
    for field in ("name", "email", "phone", "company"):
        assert f'id="field-{field}"' in page
        assert f'hx-post="/register/check/{field}"' in page
        assert f'<label for="{field}-input">' in page
    assert 'hx-post="/register" hx-target="#join"' in page
    assert "js/join.js" in page


def test_htmx_submit_swaps_in_the_confirmation_and_moves_to_the_players_page(client, load_bank):
    load_bank()
    token = csrf_from(client.get("/register").get_data(as_text=True))
    response = client.post("/register", data={"csrf_token": token, **GOOD}, headers=HTMX)
    assert response.status_code == 200
    participant = db.session.scalar(select(Participant))
    assert response.headers["HX-Push-Url"] == f"/r/{participant.report_code}?welcome=1"
    page = text(response)
    assert page.startswith("<div id=\"join\">") or '<div id="join">' in page[:400]
    assert "<html" not in page
    assert "You're in, Ada Lovelace!" in page and "+447911123456" in page
    assert 'class="qr-badge"' in page and "<svg" in page
    assert f'href="/r/{participant.report_code}"' in page


def test_htmx_submit_with_errors_answers_the_form_alone(client):
    token = csrf_from(client.get("/register").get_data(as_text=True))
    response = client.post("/register", data={"csrf_token": token, **GOOD, "email": "nope"},
                           headers=HTMX)
    assert response.status_code == 422
    page = text(response)
    assert "<html" not in page and '<div id="join">' in page
    assert "An email address must have an @-sign." in page
    assert 'value="Ada Lovelace"' in page
    assert "HX-Request" in response.headers["Vary"]
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 0


def test_htmx_submit_of_a_registered_email_says_so_on_submit(client, make_participant):
    make_participant(email="ada@example.com")
    token = csrf_from(client.get("/register").get_data(as_text=True))
    response = client.post("/register", data={"csrf_token": token, **GOOD}, headers=HTMX)
    assert response.status_code == 409
    page = text(response)
    assert "This email address is already registered." in page and "<html" not in page
