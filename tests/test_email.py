"""Email beside SMS: a real SMTP server (aiosmtpd, STARTTLS and a login) and moto's SES over HTTP;
confirmation, the failed-SMS fallback and the final results arrive once each with the right links;
unsubscribing; the outbox API's channel; the organizer's wording; bad settings refused at start;
a worker process killed mid-batch."""
import re
import time
from collections import Counter

import boto3
import pytest
from sqlalchemy import func, select, update

from quiz import create_app, delivery, emails, reconcile, sms
from quiz.config import ConfigError
from quiz.extensions import QUEUE_NAMES, db, get_queue
from quiz.models import FormLink, Message, Participant

from .helpers import (POSTGRES_URL, ROOT, csrf_from, kill_a_worker_mid_batch, login, make_config,
                      post_form, text)
from .mail_fixtures import (SENDER, smtp, smtp_certificate, smtp_server,  # noqa: F401 (fixtures)
                            smtp_ssl_server)
from .test_notify import FakeHTTP, phone_of, sns  # noqa: F401 (the sns fixture)


def emails_to(address: str, **where) -> list[Message]:
    query = select(Message).where(Message.channel == "email", Message.to == address)
    for column, value in where.items():
        query = query.where(getattr(Message, column) == value)
    return db.session.scalars(query.order_by(Message.id)).all()


def register(client, n: int = 1, **fields) -> dict:
    data = {"name": f"Player {n}", "email": f"p{n}@example.com", "phone": f"+1415555{n:04d}",
            "consent": True, **fields}
    response = client.post("/api/register", json=data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def drain(run_jobs, rounds=20):
    for _ in range(rounds):
        run_jobs()
        if not db.session.scalar(select(func.count())
                                 .where(Message.status.in_(("queued", "sending")))):
            return
        time.sleep(0.3)
    raise AssertionError("messages still queued")


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


UNSUBSCRIBE = re.compile(r"http://quiz\.test/u/[\w.-]+")


# --- the confirmation ---------------------------------------------------------------------------

def test_confirmation_arrives_once_over_starttls_with_results_link_qr_and_unsubscribe(
        client, load_bank, run_jobs, smtp):
    load_bank()
    joined = register(client, name="Ada <b>Lovelace</b>")
    drain(run_jobs)
    drain(run_jobs)  # a second pass sends nothing again
    [mail] = smtp.to("p1@example.com")
    assert mail["From"] == SENDER and "you're in" in mail["Subject"]
    assert joined["report_url"] in text_of(mail) and joined["report_url"] in html_of(mail)
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in html_of(mail)  # the HTML escapes what players type
    link = UNSUBSCRIBE.search(text_of(mail)).group()
    assert link in html_of(mail) and mail["List-Unsubscribe"] == f"<{link}>"
    [qr] = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert qr["Content-ID"] == "<qr-code>" and 'src="cid:qr-code"' in html_of(mail)
    assert qr.get_content().startswith(b"\x89PNG")
    [row] = emails_to("p1@example.com")
    assert row.status == "sent" and row.kind == "confirmation" and row.provider_id


def test_emails_wait_in_a_queue_of_their_own_that_workers_take_last(
        client, load_bank, api_headers):
    """A registration rush's confirmations never hold up a round's links: one drain job for them
    all, in the queue workers take last."""
    load_bank()
    for n in (1, 2, 3):
        register(client, n)
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    assert QUEUE_NAMES[-1] == "email"
    assert [job.func_name for job in get_queue("email").get_jobs()] == ["quiz.tasks.drain_pending"]
    assert get_queue("notify").count == 1


def test_outbox_backend_keeps_emails_and_the_api_lists_them_by_channel(
        client, load_bank, run_jobs, api_headers, app):
    load_bank()
    joined = register(client)
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    sms_only = client.get("/api/admin/outbox", headers=api_headers).get_json()["messages"]
    assert sorted((m["kind"], m["channel"]) for m in sms_only) == [  # newest first; the SMS only
        ("confirmation", "sms"), ("round_link", "sms")]
    [email] = client.get("/api/admin/outbox?channel=email",
                         headers=api_headers).get_json()["messages"]
    assert (email["channel"], email["kind"], email["to"], email["status"]) == (
        "email", "confirmation", "p1@example.com", "sent")
    assert joined["report_url"] in email["body"] and joined["report_url"] in email["html"]
    bad = client.get("/api/admin/outbox?channel=fax", headers=api_headers)
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_channel"
    assert "channel must be sms or email" in bad.get_json()["message"]


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock")
def test_an_outbox_batch_holds_no_write_lock_while_it_renders(client, load_bank, monkeypatch):
    """The outbox records a batch of emails at its commit: while each email renders (its QR code),
    nothing is written yet, so SQLite's write lock is free for the web processes (a batch that
    flushed each row as it went held it through every render after the first)."""
    load_bank()
    for n in (1, 2, 3):
        register(client, n)
    ids = db.session.scalars(select(Message.id).where(Message.channel == "email")).all()
    writing, qr_png = [], emails.qr_png

    def rendering(code):
        writing.append(db.session.connection().connection.driver_connection.in_transaction)
        return qr_png(code)
    monkeypatch.setattr(emails, "qr_png", rendering)
    assert delivery.send_messages(ids)[:2] == (3, 0)
    assert writing == [False, False, False]
    db.session.expire_all()
    assert [m.status for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))] == [
        "sent"] * 3


def test_smtp_over_ssl_from_the_first_byte(client, load_bank, run_jobs, app, smtp_ssl_server):
    load_bank()
    app.config.update(smtp_ssl_server.settings(), SMTP_PORT=smtp_ssl_server.port,
                      SMTP_SECURITY="ssl", SMTP_USERNAME="", SMTP_PASSWORD="")
    joined = register(client)
    drain(run_jobs)
    [mail] = smtp_ssl_server.to("p1@example.com")
    assert joined["report_url"] in text_of(mail)


def test_smtp_refuses_a_server_whose_certificate_it_cannot_check(client, load_bank, run_jobs,
                                                                  smtp, app):
    """Without SMTP_CA_FILE the system's CAs don't know the test server: nothing is sent in clear,
    the email waits to be retried."""
    load_bank()
    app.config["SMTP_CA_FILE"] = ""
    register(client)
    run_jobs()
    [row] = emails_to("p1@example.com")
    assert row.status == "queued" and "CERTIFICATE_VERIFY_FAILED" in row.error
    assert not smtp.received


def test_smtp_refusals_map_to_permanent_and_retry(client, load_bank, run_jobs, smtp, monkeypatch):
    load_bank()
    register(client, 1, email="bounce@example.com")
    register(client, 2, email="busy@example.com")
    run_jobs()
    [bounced] = emails_to("bounce@example.com")
    assert bounced.status == "failed" and bounced.error.startswith("550")
    [busy] = emails_to("busy@example.com")
    assert busy.status == "queued" and busy.error.startswith("451") and busy.attempts == 1
    assert smtp.received == []


def test_a_wrong_smtp_login_is_retried_not_failed_for_good(client, load_bank, run_jobs, smtp, app):
    load_bank()
    app.config["SMTP_PASSWORD"] = "wrong"
    register(client)
    run_jobs()
    [row] = emails_to("p1@example.com")
    assert row.status == "queued" and row.error.startswith("535") and not smtp.received


# --- SES (moto's server over HTTP) --------------------------------------------------------------

@pytest.fixture
def ses(app, moto_server, monkeypatch):
    """The ses backend pointed at moto's server; returns moto's record of what it accepted."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    app.config.update(EMAIL_BACKEND="ses", SES_ENDPOINT_URL=moto_server, AWS_REGION="us-east-1",
                      EMAIL_FROM="quiz@example.com")
    boto3.client("ses", endpoint_url=moto_server, region_name="us-east-1").verify_email_identity(
        EmailAddress="quiz@example.com")
    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.sent_messages.clear()
    return backend.sent_messages


def test_ses_sends_the_confirmation_once_with_its_links(client, load_bank, run_jobs, ses):
    load_bank()
    joined = register(client)
    drain(run_jobs)
    drain(run_jobs)
    [sent] = ses
    assert sent.destinations == ["p1@example.com"] and sent.source == "quiz@example.com"
    from email import message_from_string, policy
    mail = message_from_string(sent.raw_data, policy=policy.default)
    assert joined["report_url"] in text_of(mail) and UNSUBSCRIBE.search(text_of(mail))
    [row] = emails_to("p1@example.com")
    assert row.status == "sent" and row.provider_id == sent.id


def test_ses_refusing_the_sender_fails_the_email_for_good(client, load_bank, run_jobs, ses, app):
    load_bank()
    app.config["EMAIL_FROM"] = "nobody@unverified.example"
    register(client)
    run_jobs()
    [row] = emails_to("p1@example.com")
    assert row.status == "failed" and row.error.startswith("MessageRejected") and not ses


# --- the fallback when a link SMS failed for good -----------------------------------------------

def refuse_phones(monkeypatch, refused: set[str]) -> None:
    original = sms.SnsBackend.make_client

    def make_client(config):
        client = original(config)
        client.meta.events.register("before-call.sns.Publish", lambda params, **_: (
            (FakeHTTP(400), {"Error": {"Code": "InvalidParameter", "Message": "Invalid number"}})
            if phone_of(params) in refused else None))
        return client
    monkeypatch.setattr(sms.SnsBackend, "make_client", staticmethod(make_client))


@pytest.mark.parametrize("links_in_registration", [True, False])
def test_a_failed_link_sms_brings_the_link_by_email_once(
        client, load_bank, run_jobs, api_headers, sns, smtp, app, monkeypatch,
        links_in_registration):
    load_bank()
    app.config["LINKS_IN_REGISTRATION"] = links_in_registration
    for n in (1, 2, 3):
        register(client, n)
    refuse_phones(monkeypatch, {"+14155550002"})
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    assert reconcile.reconcile_messages()["email_fallbacks"] == 0  # queued with the failure
    drain(run_jobs)
    got = Counter(address for recipients, _ in smtp.received for address in recipients)
    assert got == {"p1@example.com": 1, "p2@example.com": 2, "p3@example.com": 1}
    [fallback] = [m for m in smtp.to("p2@example.com") if "round 1" in m["Subject"]]
    code = db.session.scalar(select(FormLink.code).join(Participant).where(
        Participant.email == "p2@example.com", FormLink.challenge_id == 1))
    if links_in_registration:
        assert f"http://quiz.test/f/{code}" in text_of(fallback)
        assert f"http://quiz.test/f/{code}" in html_of(fallback)
    else:  # an email address is no proof of a phone: no round link in any email
        # (the words of each email, text and HTML: an inline QR code's base64 may hold "/f/")
        assert "/f/" not in text_of(fallback) + html_of(fallback)
        assert "help desk" in text_of(fallback)
        assert all("/f/" not in text_of(m) + html_of(m) for _, m in smtp.received)
    assert UNSUBSCRIBE.search(text_of(fallback))


def test_no_fallback_email_to_a_player_who_unsubscribed(
        client, load_bank, run_jobs, api_headers, sns, smtp, monkeypatch):
    load_bank()
    register(client, 1)
    drain(run_jobs)
    path = UNSUBSCRIBE.search(text_of(smtp.to("p1@example.com")[0])).group().removeprefix(
        "http://quiz.test")
    page = client.get(path).get_data(as_text=True)
    assert client.post(path, data={"csrf_token": csrf_from(page)}).status_code == 200
    refuse_phones(monkeypatch, {"+14155550001"})
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    assert reconcile.reconcile_messages()["email_fallbacks"] == 0
    assert not emails_to("p1@example.com", kind="link_fallback") and len(smtp.received) == 1


def test_reconcile_queues_a_fallback_a_dead_worker_never_did(
        client, load_bank, run_jobs, api_headers, sns, smtp, monkeypatch):
    """The SMS is recorded failed but its fallback email is missing (a worker died between the two
    in an older version, or a row was repaired by hand): reconcile queues it, once."""
    load_bank()
    register(client, 1)
    refuse_phones(monkeypatch, {"+14155550001"})
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    db.session.execute(update(Message).where(Message.kind == "link_fallback")
                       .values(key="moved-aside", kind="moved"))
    db.session.commit()
    assert reconcile.reconcile_messages()["email_fallbacks"] == 1
    assert reconcile.reconcile_messages()["email_fallbacks"] == 0
    drain(run_jobs)
    assert len(emails_to("p1@example.com", kind="link_fallback", status="sent")) == 1


# --- unsubscribing ------------------------------------------------------------------------------

def test_unsubscribe_asks_on_get_records_on_post_and_later_emails_are_skipped(
        client, load_bank, run_jobs, api_headers, smtp):
    load_bank()
    register(client, 1)
    register(client, 2)
    drain(run_jobs)
    link = UNSUBSCRIBE.search(text_of(smtp.to("p1@example.com")[0])).group()
    path = link.removeprefix("http://quiz.test")
    page = client.get(path)
    assert page.status_code == 200 and "Unsubscribe</button>" in page.get_data(as_text=True)
    player = db.session.scalar(select(Participant).where(Participant.email == "p1@example.com"))
    assert player.email_opted_out_at is None  # a mail scanner's GET changes nothing
    done = client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert done.status_code == 200 and "no more emails" in done.get_data(as_text=True)
    db.session.expire_all()
    assert player.email_opted_out_at is not None
    again = client.get(path).get_data(as_text=True)
    assert "already unsubscribed" in again
    # an email queued before they unsubscribed is not sent; the final results skip them
    queued = Message(channel="email", kind="test", key="email:test:1", to=player.email,
                     participant_id=player.id, subject="s", body="b", html="<p>b</p>")
    db.session.add(queued)
    db.session.commit()
    delivery.send_messages([queued.id])
    assert queued.status == "failed" and "unsubscribed" in queued.error
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    drain(run_jobs)
    assert len(smtp.to("p1@example.com")) == 1 and not emails_to("p1@example.com", kind="results")
    [results] = [m for m in smtp.to("p2@example.com") if "final results" in m["Subject"]]
    assert "http://quiz.test/r/" in text_of(results)


def test_a_bad_unsubscribe_link_is_a_404_saying_what_to_do(client):
    for token in ("nonsense", "MQ.forged-signature"):
        response = client.get(f"/u/{token}")
        assert response.status_code == 404
        assert "unsubscribe link isn&#39;t valid" in response.get_data(as_text=True)
        assert client.post(f"/u/{token}").status_code in (400, 404)


def test_final_results_email_once_per_player_even_if_run_twice(
        client, load_bank, run_jobs, api_headers, smtp):
    load_bank()
    for n in (1, 2, 3):
        register(client, n)
    for number in (1, 2):
        client.post(f"/api/admin/start-challenge/{number}", headers=api_headers)
        client.post(f"/api/admin/end-challenge/{number}", headers=api_headers)
    drain(run_jobs)
    from quiz.models import Challenge
    assert emails.send_final_results(db.session.scalar(select(Challenge).where(
        Challenge.number == 2))) == 0
    results = [m for _, m in smtp.received if "final results" in m["Subject"]]
    assert sorted(m["To"] for m in results) == [f"p{n}@example.com" for n in (1, 2, 3)]


# --- the console ----------------------------------------------------------------------------------

def test_organizer_edits_email_wording_and_new_emails_use_it(client, load_bank, run_jobs, smtp):
    load_bank()
    login(client)
    page = text(client.get("/admin/emails"))
    assert "Registration confirmation" in page and "{{ unsubscribe }}" in page
    saved = post_form(client, "/admin/emails", "/admin/emails/confirmation", {
        "subject": "Welcome to {{ event }}",
        "text": "Hello {{ name }}! Results: {{ report }} Stop: {{ unsubscribe }}",
        "html": "<h1>Hello {{ name }}</h1><img src=\"{{ qr }}\"> "
                "<a href=\"{{ unsubscribe }}\">stop</a>"})
    assert saved.status_code == 303
    joined = register(client, name="Ada & Co")
    drain(run_jobs)
    [mail] = smtp.to("p1@example.com")
    assert mail["Subject"] == "Welcome to Knockout"
    assert text_of(mail).startswith(f"Hello Ada & Co! Results: {joined['report_url']} Stop: ")
    assert "<h1>Hello Ada &amp; Co</h1>" in html_of(mail)
    reset = post_form(client, "/admin/emails", "/admin/emails/confirmation/reset",
                      {"confirmed": "yes"})  # the page's Yes (tests/test_console_confirm.py)
    assert reset.status_code == 303
    assert "you&#39;re in" in client.get("/admin/emails").get_data(as_text=True)


def test_a_test_email_arrives_with_sample_values_and_a_bad_address_is_refused(
        client, run_jobs, smtp):
    login(client)
    sent = post_form(client, "/admin/emails", "/admin/emails/test",
                     {"kind": "link_fallback", "to": "me@example.com"}, follow_redirects=True)
    assert "Test email (link_fallback) on its way to me@example.com" in text(sent)
    run_jobs()
    [mail] = smtp.to("me@example.com")
    assert "https://quiz.example/f/sample" in text_of(mail) and "Ada Lovelace" in text_of(mail)
    refused = post_form(client, "/admin/emails", "/admin/emails/test",
                        {"kind": "confirmation", "to": "not-an-address"})
    assert refused.status_code == 422 and "@-sign" in text(refused)
    assert len(smtp.received) == 1


@pytest.mark.parametrize("part, typed, says", [
    ("text", "Hi {{ nme }} {{ unsubscribe }}", "Unknown value {{ nme }} in the text"),
    ("html", "<p>Hi {{ name }}</p>", "must contain {{ unsubscribe }}"),
    ("text", "Hi {{ name } {{ unsubscribe }}", "isn't a valid template (line 1)"),
    ("subject", "", "The subject can't be empty"),
    # the sandbox: no reaching into Python objects from a template
    ("text", "{{ name.__class__.__mro__ }} {{ unsubscribe }}", "can't be filled in"),
    ("html", "{{ unsubscribe }} {% for x in ().__class__.__base__.__subclasses__() %}{% endfor %}",
     "can't be filled in"),
])
def test_email_wording_that_cannot_be_sent_is_refused_beside_its_field(
        client, part, typed, says):
    login(client)
    words = {"subject": "Hi", "text": "Hi {{ name }} {{ unsubscribe }}",
             "html": "<p>Hi {{ name }} {{ unsubscribe }}</p>", part: typed}
    response = post_form(client, "/admin/emails", "/admin/emails/confirmation", words)
    assert response.status_code == 422 and says in text(response)
    from quiz.models import EmailTemplate
    assert db.session.scalar(select(func.count()).select_from(EmailTemplate)) == 0


def test_the_round_panel_shows_its_emails_beside_the_sms(
        client, load_bank, run_jobs, api_headers, sns, smtp, monkeypatch):
    load_bank()
    register(client, 1)
    register(client, 2)
    refuse_phones(monkeypatch, {"+14155550002"})
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    login(client)
    panel = text(client.get("/admin/rounds/1/sms"))
    assert "1/2 sent" in panel and "email 1/1 sent" in panel
    assert "email 1/1 sent" in text(client.get("/admin/"))


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, says", [
    ({"EMAIL_BACKEND": "pigeon"}, "EMAIL_BACKEND='pigeon' is not one of: outbox, smtp, ses"),
    ({"EMAIL_BACKEND": "smtp", "EMAIL_FROM": "quiz@example.com"}, "needs SMTP_HOST"),
    ({"EMAIL_BACKEND": "ses"}, "needs EMAIL_FROM"),
    ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail", "EMAIL_FROM": "not an address"},
     "needs EMAIL_FROM"),
    ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY='tls' is not one of: starttls"),
    ({"SMTP_PORT": "smtp"}, "SMTP_PORT='smtp' is not a number"),
    ({"SMTP_PORT": "70000"}, "is not a port"),
    ({"EMAIL_RATE_PER_SECOND": "fast"}, "EMAIL_RATE_PER_SECOND='fast' is not a number"),
    ({"EMAIL_RATE_PER_SECOND": "-1"}, "can't be negative"),
    ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail", "EMAIL_FROM": "q@example.com",
      "SMTP_USERNAME": "quiz"}, "Set SMTP_USERNAME and SMTP_PASSWORD together"),
    ({"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail", "EMAIL_FROM": "q@example.com",
      "SMTP_USERNAME": "quiz", "SMTP_PASSWORD": "x", "SMTP_SECURITY": "none"}, "clear text"),
])
def test_bad_email_settings_are_refused_at_start(tmp_path, redis_url, settings, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        create_app(make_config(tmp_path, redis_url, **settings))


def test_smtp_port_defaults_follow_the_security(tmp_path, redis_url):
    for security, port in (("starttls", 587), ("ssl", 465), ("none", 25)):
        app = create_app(make_config(tmp_path, redis_url, SMTP_SECURITY=security.upper()))
        assert (app.config["SMTP_SECURITY"], app.config["SMTP_PORT"]) == (security, port)


# --- a worker process killed mid-batch ----------------------------------------------------------

def test_worker_killed_mid_batch_sends_no_email_twice_and_none_is_lost(
        app, client, load_bank, redis_url, smtp_server, tmp_path):
    """A real worker process sends 60 emails (one batch) over SMTP at 20/s; kill -9 it mid-batch,
    reconcile, start another: every address gets its email, a repeat only for the one in doubt."""
    import subprocess
    import sys

    load_bank()
    for n in range(1, 61):
        register(client, n)
    for name in QUEUE_NAMES:  # the 60 one-email jobs gone: reconcile hands them over as one batch
        get_queue(name).empty()
    assert reconcile.reconcile_messages(forgotten_after=0)["requeued"] == 60
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": redis_url, "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "x", "ADMIN_API_TOKEN": "x", "EMAIL_RATE_PER_SECOND": "20",
           "LOG_LEVEL": "WARNING", **smtp_server.settings()}

    def worker():
        return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                                start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count(status):
        db.session.expire_all()
        return db.session.scalar(select(func.count()).where(Message.status == status))

    in_doubt, requeued = kill_a_worker_mid_batch(worker, count, total=60, going=15)
    assert requeued > 0
    got = Counter(address for recipients, _ in smtp_server.received for address in recipients)
    assert set(got) == {f"p{n}@example.com" for n in range(1, 61)}  # nothing unsent
    assert sum(got.values()) - 60 <= in_doubt  # a repeat only for a message caught mid-send
