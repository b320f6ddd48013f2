"""The confirmation SMS a player gets once they have joined: their results/QR page, at most once,
never lost, after the round links."""
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from quiz import notify, reconcile, sms_templates
from quiz.clock import utcnow
from quiz.effects import Drain, pending_key
from quiz.extensions import db, get_redis
from quiz.models import Message, Participant

from .helpers import ROOT, kill_a_worker_mid_batch, post_form
from .test_notify import sns  # noqa: F401 (a fixture)

JOIN = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 7911 123456",
        "consent": True}


def confirmations() -> list[Message]:
    db.session.expire_all()
    return db.session.scalars(select(Message).where(  # the SMS (an email confirmation goes too)
        Message.kind == "confirmation", Message.channel == "sms").order_by(Message.id)).all()


def test_joining_over_the_api_gets_one_confirmation_with_the_results_page(
        client, load_bank, run_jobs):
    load_bank()
    joined = client.post("/api/register", json=JOIN).get_json()
    run_jobs()
    run_jobs()  # a drain or send job that runs again never texts anyone twice
    [message] = confirmations()
    participant = db.session.get(Participant, joined["user_id"])
    assert (message.to, message.status, message.participant_id) == (
        "+447911123456", "sent", participant.id)
    assert message.body == ("Knockout: you're in, Ada Lovelace! Your round links come by SMS. "
                            f"Your results and QR code: http://quiz.test/r/{participant.report_code}")
    assert joined["report_url"] in message.body and not participant.confirmation_owed


def test_joining_with_the_form_gets_one_confirmation_in_the_organizer_s_wording(
        client, load_bank, run_jobs):
    load_bank()
    sms_templates.save_template("confirmation", "{name}, see {report}")
    db.session.commit()
    form = {**JOIN, "consent": "yes"}  # a ticked box
    assert post_form(client, "/register", "/register", form).status_code == 303
    run_jobs()
    participant = db.session.scalar(select(Participant))
    assert [m.body for m in confirmations()] == [
        f"Ada Lovelace, see http://quiz.test/r/{participant.report_code}"]


@pytest.mark.config(SMS_CONFIRMATION=False)
def test_with_sms_confirmation_off_nobody_is_texted_at_joining(client, load_bank, run_jobs):
    load_bank()
    assert client.post("/api/register", json=JOIN).status_code == 201
    run_jobs()
    assert confirmations() == [] and reconcile.reconcile_messages()["confirmations"] == 0
    assert db.session.scalar(select(func.count()).select_from(Message)
                             .where(Message.channel == "sms")) == 0
    assert not get_redis().exists(pending_key(Drain.CONFIRMATIONS))


def test_a_confirmation_whose_job_was_lost_is_queued_by_reconcile_once(
        client, load_bank, run_jobs):
    load_bank()
    client.post("/api/register", json=JOIN)
    get_redis().flushall()  # its drain job and pending set, lost with Redis
    run_jobs()
    assert confirmations() == []
    assert reconcile.reconcile_messages()["confirmations"] == 0  # just joined: its job may run
    participant = db.session.scalar(select(Participant))
    participant.created_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert reconcile.reconcile_messages()["confirmations"] == 1
    assert reconcile.reconcile_messages()["confirmations"] == 0  # owed no more
    run_jobs()
    assert [(m.to, m.status) for m in confirmations()] == [("+447911123456", "sent")]


def test_confirmations_go_out_after_the_round_links(client, load_bank, make_participant,
                                                    open_round, run_jobs):
    load_bank()
    for _ in range(3):
        make_participant()
    open_round(1)  # links and confirmations owed at once: the links go first
    run_jobs()
    sent = db.session.execute(select(Message.kind, Message.sent_at)
                              .where(Message.channel == "sms")).all()
    links = [at for kind, at in sent if kind == "round_link"]
    confirmed = [at for kind, at in sent if kind == "confirmation"]
    assert len(links) == len(confirmed) == 3 and max(links) < min(confirmed)


def test_worker_killed_mid_batch_of_confirmations_nobody_twice_but_the_one_in_doubt(
        app, load_bank, make_participant, sns, moto_server, redis_url, tmp_path):  # noqa: F811
    """A real worker texts 40 confirmations through SNS (moto) at 20/s; kill -9 it mid-batch,
    start another: everyone gets theirs, at most the one in doubt twice."""
    load_bank()
    phones = [make_participant().phone for _ in range(40)]  # their drain job waits in Redis
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
        return sum(m.status == status for m in confirmations())

    in_doubt, _ = kill_a_worker_mid_batch(worker, count, total=40, going=10)
    delivered = Counter(phone for phone, _ in sns.values())
    assert set(delivered) == set(phones)  # nobody without theirs
    assert sum(delivered.values()) - 40 <= in_doubt  # a repeat only for a message caught mid-send
    assert len(confirmations()) == 40  # one row each, ever
