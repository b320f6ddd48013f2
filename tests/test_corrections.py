"""Correcting a participant's details (API and console), and the console's test SMS."""
import pytest
from sqlalchemy import select

from quiz.extensions import db
from quiz.models import AuditEntry, Message, Participant
from quiz.storage import get_storage
from quiz.stored_forms import form_key

from .helpers import csrf_from, login, text


@pytest.fixture
def two(load_bank, make_participant):
    """Two registered players, round 1 not started."""
    load_bank()
    return make_participant("Ann Typo", company="Acme").id, make_participant("Bob").id


def patch(client, api_headers, pid, body):
    return client.patch(f"/api/admin/participants/{pid}", headers=api_headers, json=body)


def test_correct_name_and_phone_re_renders_forms_and_resends_the_link_to_the_new_number(
        client, api_headers, two, run_jobs):
    ann, _ = two
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    answer = patch(client, api_headers, ann, {"name": "  Ann  Smith ", "phone": "+1 415 555 0199",
                                              "resend": True})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["name"], body["phone"], body["changed"], body["link_resent"]) == (
        "Ann Smith", "+14155550199", ["name", "phone"], True)
    run_jobs()
    db.session.expire_all()
    link = db.session.scalar(select(Message).where(Message.participant_id == ann,
                                                   Message.kind == "round_link"))
    assert (link.to, link.status, link.attempts) == ("+14155550199", "sent", 1)
    stored = get_storage().get(form_key("forms", 1, ann)).decode()
    assert "Ann Smith" in stored and "Ann Typo" not in stored
    assert db.session.scalar(select(AuditEntry.detail).where(
        AuditEntry.action == "correct participant")) == "Ann Smith (#1): name, phone; link resent"


def test_a_text_still_queued_goes_to_the_corrected_number(client, api_headers, two, run_jobs):
    ann, _ = two
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    db.session.execute(db.update(Message).values(status="queued"))  # not out yet
    db.session.commit()
    assert patch(client, api_headers, ann, {"phone": "+14155550177"}).status_code == 200
    assert db.session.scalar(select(Message.to).where(Message.participant_id == ann)) \
        == "+14155550177"
    assert db.session.scalar(select(Message.to).where(Message.participant_id == ann)) \
        == "+14155550177"


@pytest.mark.parametrize("body, field, words", [
    ({"email": "not-an-email"}, "email", "@"),
    ({"phone": "12"}, "phone", "phone number"),
    ({"name": "   "}, "name", "fill this in"),
    ({"company": "x" * 101}, "company", "under 100"),
    ({"consent": False}, "consent", "Only name, email, phone and company"),
    ({"name": 5}, "name", "as text"),
    ({"resend": "yes"}, "resend", "true or false"),
])
def test_bad_corrections_are_refused_naming_the_field(client, api_headers, two, body, field,
                                                      words):
    ann, _ = two
    answer = patch(client, api_headers, ann, body)
    assert answer.status_code == 422
    assert words in answer.get_json()["fields"][field]
    db.session.expire_all()
    assert db.session.get(Participant, ann).name == "Ann Typo"


@pytest.mark.parametrize("field, value", [("email", "P2@example.com"), ("phone", "+14155550002")])
def test_another_player_s_email_or_phone_is_a_conflict(client, api_headers, two, field, value):
    ann, _ = two
    answer = patch(client, api_headers, ann, {field: value})
    assert answer.status_code == 409
    assert "Bob is registered with this" in answer.get_json()["fields"][field]


def test_resend_without_an_open_round_changes_nothing(client, api_headers, two):
    ann, _ = two
    answer = patch(client, api_headers, ann, {"name": "Ann Smith", "resend": True})
    assert answer.status_code == 409 and "No round is open" in answer.get_json()["message"]
    db.session.expire_all()
    assert db.session.get(Participant, ann).name == "Ann Typo"


def test_patch_needs_the_token_and_a_known_participant(client, api_headers, two):
    assert client.patch("/api/admin/participants/1", json={"name": "X"}).status_code == 401
    assert patch(client, api_headers, 999, {"name": "X"}).status_code == 404


def test_console_form_corrects_a_participant_and_shows_errors_inline(client, two):
    ann, _ = two
    login(client)
    page = client.get(f"/admin/participants/{ann}/edit").get_data(as_text=True)
    assert 'value="Ann Typo"' in page
    fields = {"csrf_token": csrf_from(page), "name": "Ann Smith", "email": "p2@example.com",
              "phone": "+14155550001", "company": "Acme"}
    taken = client.post(f"/admin/participants/{ann}/edit", data=fields)
    assert taken.status_code == 409 and "Bob is registered with this email" in text(taken)
    bad = client.post(f"/admin/participants/{ann}/edit", data={**fields, "email": "nope"})
    assert bad.status_code == 422 and 'value="Ann Smith"' in bad.get_data(as_text=True)
    done = client.post(f"/admin/participants/{ann}/edit",
                       data={**fields, "email": "ann@example.com"}, follow_redirects=True)
    assert "Saved: name, email." in text(done)
    db.session.expire_all()
    assert db.session.get(Participant, ann).email == "ann@example.com"
    assert "Correct details" in client.get("/admin/participants").get_data(as_text=True)


def test_test_sms_of_any_kind_goes_through_the_backend(client, run_jobs):
    login(client)
    page = client.get("/admin/messages").get_data(as_text=True)
    sent = client.post("/admin/test-sms", data={"csrf_token": csrf_from(page), "kind": "winner",
                                                "phone": "+1 415 555 0123"},
                       follow_redirects=True)
    assert "Test SMS (winner) on its way to +14155550123" in text(sent)
    run_jobs()
    message = db.session.scalar(select(Message))
    assert (message.kind, message.to, message.status) == ("test", "+14155550123", "sent")
    assert message.body.startswith("Knockout: Ada Lovelace, you won!")
    assert db.session.scalar(select(AuditEntry.detail).where(
        AuditEntry.action == "send test SMS")) == "winner to +14155550123"


@pytest.mark.parametrize("kind, phone, words", [
    ("winner", "123", "phone number"), ("nonsense", "+14155550123", "Pick one of the message"),
])
def test_a_bad_test_sms_is_refused_inline(client, kind, phone, words):
    login(client)
    page = client.get("/admin/messages").get_data(as_text=True)
    answer = client.post("/admin/test-sms", data={"csrf_token": csrf_from(page), "kind": kind,
                                                  "phone": phone})
    assert answer.status_code == 422 and words in text(answer)
    assert db.session.scalar(select(Message.id)) is None
