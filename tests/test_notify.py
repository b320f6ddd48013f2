"""SMS: wording, backends (SNS against moto's server over real HTTP), retries, reminders,
reconcile."""
import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from quiz import delivery, notify, sms, sms_templates, tasks
from quiz.clock import utcnow
from quiz.extensions import db
from quiz.models import Challenge, Message, Participant, Reminder
from quiz.reminders import cancel_reminder, schedule_reminder

from .helpers import ROOT, kill_a_worker_mid_batch, start, submit


@pytest.fixture
def sns(app, moto_server, monkeypatch):
    """The sns backend pointed at moto; returns moto's record of every SMS it accepted."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app.config.update(SMS_BACKEND="sns", SNS_ENDPOINT_URL=moto_server, AWS_REGION="us-east-1")
    backend = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.sms_messages.clear()
    return backend.sms_messages


def messages(**where):
    """The SMS (registration's confirmation emails are in the same table: tests/test_email.py)."""
    where.setdefault("channel", "sms")
    query = select(Message).order_by(Message.id)
    for column, value in where.items():
        query = query.where(getattr(Message, column) == value)
    return db.session.scalars(query).all()


def drain(run_jobs, rounds=20):
    """Run the worker until nothing is queued (retries come back through RQ's scheduler)."""
    for _ in range(rounds):
        run_jobs()
        if not db.session.scalar(select(func.count())
                                 .where(Message.status.in_(("queued", "sending")))):
            return
        time.sleep(0.3)
    raise AssertionError("messages still queued")


@pytest.mark.parametrize("kind, body, problem", [
    ("round_link", "", "can't be empty"),
    ("round_link", "Round {number} is open", "must contain {link}"),
    ("round_link", "Go {link} {secret}", "Unknown placeholder {secret}"),
    ("result_out", "Out! {link}", "Unknown placeholder {link}"),
    ("winner", "You won {name", "Curly braces must pair up"),
    ("reminder", "x" * 700, "under 640 characters"),
])
def test_bad_templates_are_refused_with_what_to_fix(app, kind, body, problem):
    with pytest.raises(sms_templates.TemplateError,
                       match=problem.replace("{", r"\{").replace("}", r"\}")):
        sms_templates.save_template(kind, body)
    db.session.rollback()
    assert sms_templates.template_for(kind) == sms_templates.TEMPLATES[kind]


def test_edited_template_is_what_players_get(client, load_bank, make_participant, api_headers,
                                             run_jobs):
    load_bank()
    phone = make_participant("Zoë {braces}").phone
    sms_templates.save_template("round_link", "Hi {name}! {{Round}} {number} ({title}): {link}")
    db.session.commit()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    message = messages(kind="round_link")[0]
    code = message.body.rsplit("/f/", 1)[1]
    assert message.body == f"Hi Zoë {{braces}}! {{Round}} 1 (Warm-up): http://quiz.test/f/{code}"
    assert message.to == phone and message.status == "sent"


def test_results_go_out_after_each_round_and_the_winner_hears_it(
        client, load_bank, make_participant, api_headers, run_jobs):
    from quiz.models import FormLink
    load_bank()
    players = [make_participant(f"P{i}") for i in range(3)]
    ids = [p.id for p in players]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    for participant_id, picks in zip(ids[:2], ([["S3"], ["RDS", "DynamoDB"]], [["S3"], ["RDS"]])):
        code = db.session.scalar(select(FormLink.code).join(Challenge).where(
            FormLink.participant_id == participant_id, Challenge.number == 1))
        start(client, code)
        submit(client, code, picks)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    run_jobs()
    kinds = {m.participant_id: m.kind for m in messages() if m.kind != "round_link"}
    # SHADOW_LEAGUE (on by default) turns "out" into an invitation to play on
    # (tests/test_shadow.py).
    assert kinds == {ids[0]: "result_through", ids[1]: "result_out_shadow",
                     ids[2]: "result_out_shadow"}
    out = messages(kind="result_out_shadow")[0]
    report = db.session.scalar(select(Participant.report_code)
                               .where(Participant.id == out.participant_id))
    assert out.body.endswith(f"http://quiz.test/r/{report}")
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    client.post("/api/admin/end-challenge/2", headers=api_headers)  # nobody answers: no winner
    run_jobs()
    assert not messages(kind="winner")


@pytest.mark.config(SMS_CONFIRMATION=False)  # round links only: their progress, one per phone
def test_sns_with_injected_failures_every_message_ends_sent_or_failed_none_twice(
        client, load_bank, make_participant, api_headers, run_jobs, sns, monkeypatch):
    load_bank()
    phones = [make_participant().phone for _ in range(60)]
    permanent = set(phones[::15])  # these numbers are refused for good
    chance = random.Random(7)
    calls = Counter()

    def inject(params, **_):
        phone = phone_of(params)
        calls[phone] += 1
        if phone in permanent:
            return FakeHTTP(400), {"Error": {"Code": "InvalidParameter",
                                             "Message": "Invalid phone number"}}
        if chance.random() < 0.10:
            return FakeHTTP(400), {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
        return None

    original = sms.SnsBackend.make_client

    def make_client(config):
        client = original(config)
        client.meta.events.register("before-call.sns.Publish", inject)
        return client
    monkeypatch.setattr(sms.SnsBackend, "make_client", staticmethod(make_client))
    monkeypatch.setattr(delivery, "RETRY_BACKOFF", (0, 0, 0, 0))
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    progress = client.get("/api/admin/sms-progress/1", headers=api_headers).get_json()
    assert progress["total"] == 60 and progress["sent"] + progress["failed"] == 60
    assert progress["failed"] == len(permanent) and progress["status"] == "completed"
    delivered = Counter(phone for phone, _ in sns.values())
    assert set(delivered) == set(phones) - permanent and max(delivered.values()) == 1
    failed = messages(status="failed")
    assert ({m.to for m in failed} == permanent
            and all("InvalidParameter" in m.error for m in failed))
    assert sum(calls.values()) > 60  # throttled sends were retried
    assert all(m.provider_id for m in messages(status="sent"))


def phone_of(request_dict) -> str:
    """The PhoneNumber of a Publish request as botocore is about to send it (query or JSON
    protocol)."""
    body = request_dict["body"]
    if isinstance(body, (bytes, str)):
        import json
        body = json.loads(body or "{}")
    return body["PhoneNumber"]


class FakeHTTP:
    def __init__(self, status_code):
        self.status_code, self.headers, self.content = status_code, {}, b""


@pytest.mark.config(SMS_CONFIRMATION=False)  # round links only: a refused number, its retry
def test_retry_failed_and_resend_one(client, load_bank, make_participant, api_headers, run_jobs,
                                     sns, monkeypatch):
    load_bank()
    players = [make_participant() for _ in range(3)]
    ids, phones = [p.id for p in players], [p.phone for p in players]
    refuse = {phones[0]}

    def make_client(config, original=sms.SnsBackend.make_client):
        client = original(config)
        client.meta.events.register("before-call.sns.Publish", lambda params, **_: (
            (FakeHTTP(400), {"Error": {"Code": "OptedOut", "Message": "opted out"}})
            if phone_of(params) in refuse else None))
        return client
    monkeypatch.setattr(sms.SnsBackend, "make_client", staticmethod(make_client))
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    assert [m.to for m in messages(status="failed")] == [phones[0]]
    refuse.clear()  # the player opted back in
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    notify.hand_over(delivery.requeue_failed(challenge), "retry")
    db.session.commit()
    run_jobs()
    assert not messages(status="failed") and len(sns) == 3
    participant = db.session.get(Participant, ids[1])
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    notify.hand_over([delivery.requeue_link(participant, challenge)], "resend")
    db.session.commit()
    run_jobs()
    # the resend is the only repeat
    assert Counter(phone for phone, _ in sns.values())[phones[1]] == 2


def test_reminder_is_sent_by_the_scheduler_and_a_cancelled_one_is_not(
        app, load_bank, make_participant, run_jobs):
    load_bank()
    make_participant()
    make_participant()
    # Far enough ahead that a slow machine's burst worker (which starts a scheduler) runs before it
    # is due.
    send_at = utcnow() + timedelta(seconds=4)
    due = schedule_reminder("Round 2 starts at 14:00 in Hall B", send_at)
    cancelled = schedule_reminder("This one is called off", send_at)
    db.session.commit()
    cancel_reminder(cancelled)
    db.session.commit()
    due_id, cancelled_id = due.id, cancelled.id
    run_jobs()
    assert utcnow() < send_at, "the machine took over 4 s to run one burst of jobs"
    assert not messages(kind="reminder")  # not yet due
    time.sleep((send_at - utcnow()).total_seconds() + 0.5)
    run_jobs()  # the burst worker's scheduler moves due jobs to the queue
    run_jobs()
    sent = messages(kind="reminder")
    assert len(sent) == 2 and {m.reminder_id for m in sent} == {due_id}
    assert sent[0].body == "Knockout: Round 2 starts at 14:00 in Hall B"
    assert db.session.get(Reminder, cancelled_id).status == "cancelled"
    assert tasks.send_reminder(cancelled_id) == 0  # even if its job ran, nothing goes out


@pytest.mark.parametrize("text, when, field", [("", 60, "text"), ("x" * 301, 60, "text"),
                                               ("Soon", -5, "send_at")])
def test_bad_reminders_are_refused(app, text, when, field):
    from quiz.errors import ValidationError
    with pytest.raises(ValidationError) as caught:
        schedule_reminder(text, utcnow() + timedelta(seconds=when))
    assert field in caught.value.fields
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == 0


def test_reconcile_reclaims_messages_of_a_dead_worker(app, load_bank, make_participant, runner,
                                                      run_jobs):
    load_bank()
    for _ in range(3):
        make_participant()
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    challenge.status = "open"
    notify.queue_round_links(challenge)
    db.session.commit()
    ids = [m.id for m in messages()]
    delivery.claim(ids[:1], "worker-that-died")
    db.session.execute(db.update(Message).where(Message.id == ids[0]).values(
        claimed_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    queued = db.session.scalar(select(func.count()).select_from(Message).where(  # the links and
        Message.status == "queued")) + 1  # confirmation emails, and the reclaimed one: all handed
    result = runner.invoke(args=["sms", "reconcile"])
    assert (result.exit_code == 0 and "1 message(s) reclaimed" in result.output
            and f"{queued} queued" in result.output and queued > 3)
    run_jobs()
    assert [m.status for m in messages(kind="round_link")] == ["sent", "sent", "sent"]


def test_warning_when_the_rate_makes_sending_slow(app):
    app.config["SMS_RATE_PER_SECOND"] = 3
    assert delivery.send_time_warning(5000) == "5,000 messages at 3/s ≈ 28 min"
    assert delivery.send_time_warning(100) is None


def test_worker_killed_mid_batch_another_finishes_nothing_twice_nothing_unsent(
        app, client, load_bank, make_participant, api_headers, sns, moto_server, redis_url,
        tmp_path):
    """A real worker process sends through SNS (moto) at 20/s; kill -9 it mid-batch, start
    another."""
    import subprocess
    import sys

    load_bank()
    phones = [make_participant().phone for _ in range(60)]
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": redis_url, "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "x", "ADMIN_API_TOKEN": "x", "SMS_BACKEND": "sns",
           "SNS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "SMS_RATE_PER_SECOND": "20", "LOG_LEVEL": "WARNING"}

    def worker():
        # Its own process group: a kill takes its RQ scheduler too, as a dying machine would.
        return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                                start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count(status):
        db.session.expire_all()
        return db.session.scalar(select(func.count()).where(Message.status == status,
                                                            Message.channel == "sms"))

    client.post("/api/admin/start-challenge/1", headers=api_headers)
    in_doubt, requeued = kill_a_worker_mid_batch(worker, count, total=60, going=15)
    assert requeued > 0
    delivered = Counter(phone for phone, _ in sns.values())
    assert set(delivered) == set(phones)  # nothing unsent
    assert sum(delivered.values()) - 60 <= in_doubt  # a repeat only for a message caught mid-send


def test_queueing_says_how_many_it_queued_on_every_database(app, load_bank, make_participant):
    """The count the "N messages queued" log and the console report (PostgreSQL's driver gave -1
    for an INSERT … SELECT unless asked to keep it); a second call queues none (one per key)."""
    load_bank()
    for _ in range(3):
        make_participant()
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    challenge.status = "open"
    assert notify.queue_round_links(challenge) == 3
    assert notify.queue_round_links(challenge) == 0
