"""SMS_BACKEND=twilio: Twilio's official library against a local server that speaks its Messages
API over real HTTP (tests/twilio_server.py): sent, retried, refused for good; progress; settings."""
import pytest
from sqlalchemy import select

from quiz import create_app, delivery, sms
from quiz.config import ConfigError
from quiz.extensions import db
from quiz.models import Message

from .helpers import make_config
from .test_notify import drain, messages
from .twilio_server import ACCOUNT_SID, AUTH_TOKEN, TwilioServer

SENDER = "+14155550100"
SERVICE = "MG" + "fedcba9876543210" * 2


@pytest.fixture
def twilio(app):
    """The twilio backend pointed at a local Twilio; the server (what it accepted, auth seen)."""
    server = TwilioServer()
    # Round links only (what these tests count): no confirmation SMS at registration.
    app.config.update(SMS_CONFIRMATION=False, SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                      TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM=SENDER, TWILIO_API_URL=server.url)
    yield server
    server.stop()


def test_links_go_out_through_twilio_each_sent_with_its_sid(
        client, load_bank, make_participant, api_headers, run_jobs, twilio):
    load_bank()
    phones = [make_participant().phone for _ in range(5)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    sent = messages(kind="round_link")
    assert {m.to for m in sent} == set(phones) and all(m.status == "sent" for m in sent)
    by_sid = {m.sid: m for m in twilio.sent}
    assert {m.provider_id for m in sent} == set(by_sid)  # each message keeps Twilio's SM… id
    for message in sent:
        accepted = by_sid[message.provider_id]
        assert (accepted.to, accepted.body) == (message.to, message.body)
        assert accepted.sender == {"From": SENDER}
    # The account SID and token went as basic auth, to the account's own Messages resource (the
    # server answers 401 / 404 otherwise).
    assert set(twilio.auth_seen) == {(ACCOUNT_SID, AUTH_TOKEN)}
    progress = client.get("/api/admin/sms-progress/1", headers=api_headers).get_json()
    assert progress | {"rate_per_second": 0, "eta_seconds": 0} == {
        "status": "completed", "total": 5, "sent": 5, "failed": 0, "progress_percent": 100.0,
        "rate_per_second": 0, "eta_seconds": 0}


def test_a_send_through_twilio_logs_no_request_lines(app, twilio, load_bank, make_participant,
                                                     caplog):
    """The library would log each request's URL and headers at INFO: ten lines an SMS."""
    load_bank()
    participant = make_participant()
    message = Message(participant_id=participant.id, to=participant.phone, body="Hi", kind="test",
                      key="test:quiet")
    db.session.add(message)
    db.session.commit()
    with caplog.at_level("INFO"):
        assert delivery.send_messages([message.id])[0] == 1
    assert not [r for r in caplog.records if "Twilio API Request" in r.getMessage()]


def test_a_messaging_service_sid_is_sent_as_one(app, twilio, load_bank, make_participant,
                                                client, api_headers, run_jobs):
    app.config["TWILIO_FROM"] = SERVICE
    load_bank()
    make_participant()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    assert [m.sender for m in twilio.sent] == [{"MessagingServiceSid": SERVICE}]
    app.config["TWILIO_FROM"] = "MGM Event"  # an alphanumeric sender ID that starts with MG
    assert sms.TwilioBackend().sender == {"from_": "MGM Event"}


def test_throttled_and_unavailable_sends_come_back_later_invalid_numbers_fail_once(
        client, load_bank, make_participant, api_headers, run_jobs, twilio, monkeypatch):
    monkeypatch.setattr(delivery, "RETRY_BACKOFF", (0, 0, 0, 0))
    load_bank()
    phones = [make_participant().phone for _ in range(8)]
    twilio.fail(phones[0], 429, 20429, "Too Many Requests", times=2)
    twilio.fail(phones[1], 503, 20503, "Service unavailable")
    twilio.fail(phones[2], 400, 21211, f"The 'To' number {phones[2]} is not a valid phone number.")
    twilio.fail(phones[3], 400, 21610, "Attempt to send to unsubscribed recipient")
    twilio.fail(phones[4], 400, 21614, f"'To' number {phones[4]} is not a mobile number")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    # After the first pass: the throttled and the unavailable are queued again for a later try,
    # with what Twilio said; the refused have failed for good.
    first = {m.to: m for m in messages(kind="round_link")}
    assert first[phones[0]].status == first[phones[1]].status == "queued"
    assert "20429" in first[phones[0]].error and "20503" in first[phones[1]].error
    drain(run_jobs)
    final = {m.to: m for m in messages(kind="round_link")}
    assert {to for to, m in final.items() if m.status == "failed"} == set(phones[2:5])
    assert final[phones[2]].error.startswith("21211: ") and "invalid 'To'" in final[phones[2]].error
    assert "21610" in final[phones[3]].error and "unsubscribed" in final[phones[3]].error
    assert "21614" in final[phones[4]].error and "not a mobile" in final[phones[4]].error
    assert (final[phones[0]].attempts, final[phones[1]].attempts) == (3, 2)
    assert all(final[p].status == "sent" and final[p].provider_id for p in phones[:2] + phones[5:])
    # Refused numbers were asked once, never again; everyone else got exactly one text.
    assert [twilio.attempts[p] for p in phones[2:5]] == [1, 1, 1]
    assert [twilio.delivered(p) for p in phones] == [1, 1, 0, 0, 0, 1, 1, 1]
    progress = client.get("/api/admin/sms-progress/1", headers=api_headers).get_json()
    assert (progress["status"], progress["total"], progress["sent"], progress["failed"]) == (
        "completed", 8, 5, 3)
    assert progress["sent"] + progress["failed"] == progress["total"]


def test_a_wrong_token_fails_with_twilios_reason_not_endless_retries(
        app, twilio, load_bank, make_participant, client, api_headers, run_jobs):
    app.config["TWILIO_AUTH_TOKEN"] = "not-the-token"
    load_bank()
    make_participant()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    [message] = messages(kind="round_link")
    assert message.status == "failed" and message.error.startswith("20003: ")
    assert "TWILIO_AUTH_TOKEN" in message.error and not twilio.sent


def test_twilio_unreachable_is_retried(app, twilio, load_bank, make_participant, run_jobs):
    """A network error (nothing listening) is the moment, not the number: queued again."""
    twilio.stop()
    load_bank()
    participant = make_participant()
    message = Message(participant_id=participant.id, to=participant.phone, body="Hello",
                      kind="test", key="test:unreachable")
    db.session.add(message)
    db.session.commit()
    sent, failed, retry = delivery.send_messages([message.id])
    assert (sent, failed, retry) == (0, 0, [message.id])
    stored = db.session.scalar(select(Message).where(Message.id == message.id))
    assert stored.status == "queued" and stored.error.startswith("network: ")


@pytest.mark.parametrize("status, code, permanent", [
    (400, 21211, True), (400, 21610, True), (400, 21614, True), (401, 20003, True),
    (400, 21408, True), (400, 21612, True), (400, 99999, True),  # any other 4xx: the request
    (429, 20429, False), (429, None, False), (500, 20500, False), (503, 20503, False),
    (502, None, False), (None, None, False),  # no answer at all
])
def test_twilio_error_codes_map_to_retry_or_permanent(status, code, permanent):
    assert sms.TwilioBackend.classify(status, code) is permanent


@pytest.mark.parametrize("settings, problem", [
    ({}, "needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "t"}, "needs TWILIO_FROM: "),
    ({"TWILIO_ACCOUNT_SID": "SK" + "0" * 32, "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": SENDER},
     "TWILIO_ACCOUNT_SID is AC followed by 32 hex digits"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "0415 555"},
     "TWILIO_FROM is a number in E.164 form"),
])
def test_twilio_without_its_settings_is_refused_at_start(tmp_path, redis_url, settings, problem):
    config = make_config(tmp_path, redis_url, SMS_BACKEND="twilio", **settings)
    with pytest.raises(ConfigError, match=problem):
        create_app(config)


@pytest.mark.parametrize("sender", [SENDER, SERVICE, "Knockout", "55501"])
def test_twilio_with_its_settings_starts(tmp_path, redis_url, sender):
    config = make_config(tmp_path, redis_url, SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                         TWILIO_AUTH_TOKEN="t", TWILIO_FROM=sender)
    app = create_app(config)
    assert app.config["LINKS_IN_REGISTRATION"] is False  # a real provider: links by SMS only
