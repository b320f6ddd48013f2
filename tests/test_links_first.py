"""Round links go first: never behind result SMS, reminders or confirmations, within the one shared
rate limit."""
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
import redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from quiz import delivery, notify
from quiz.effects import Job, Task
from quiz.dispatcher import enqueue
from quiz.extensions import db, get_queue
from quiz.clock import utcnow
from quiz.models import Challenge, Message, Reminder

from .live_fixtures import LiveStack
from .players import Api, answer_over_http, load_demo_bank, round_links


def a_reminder() -> Reminder:
    reminder = Reminder(text="Round 2 starts at 14:00", send_at=utcnow() + timedelta(hours=1))
    db.session.add(reminder)
    db.session.flush()
    return reminder


def test_link_messages_are_handed_to_the_links_queue_others_to_notify(
        app, load_bank, make_participant, open_round):
    load_bank()
    for _ in range(3):
        make_participant()
    open_round(1)  # its links job waits in the links queue
    assert [job.func_name for job in get_queue("links").jobs] == [Task.SEND_ROUND_LINKS.path]
    get_queue("notify").empty()
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    notify.queue_round_links(challenge)
    notify.queue_reminder(a_reminder())
    db.session.flush()
    ids = db.session.scalars(select(Message.id).where(Message.channel == "sms")
                             .order_by(Message.id)).all()
    assert notify.hand_over(ids, "mixed") == 2  # one batch each: links, the reminder's
    db.session.commit()
    queues = {name: [job.args[0] for job in get_queue(name).jobs if job.args and
                     isinstance(job.args[0], list)] for name in ("links", "notify")}
    kinds = {name: {db.session.get(Message, i).kind for batch in batches for i in batch}
             for name, batches in queues.items()}
    assert kinds == {"links": {"round_link"}, "notify": {"reminder"}}


def test_a_batch_of_other_messages_gives_way_while_a_links_job_waits(
        app, load_bank, make_participant):
    load_bank()
    for _ in range(4):
        make_participant()
    notify.queue_reminder(a_reminder())
    db.session.commit()
    ids = notify.queued_ids(kind="reminder")
    enqueue(Job(Task.SEND_ROUND_LINKS, (1,)))  # a round's links wait for this worker

    sent, failed, retry = delivery.send_messages(ids)
    db.session.commit()

    assert (sent, failed, retry) == (0, 0, [])
    db.session.expire_all()
    assert {m.status for m in db.session.scalars(select(Message))} == {"queued"}  # claims undone
    registry = ScheduledJobRegistry(queue=get_queue("notify"))
    [later] = [get_queue("notify").fetch_job(i) for i in registry.get_job_ids()]
    assert later.args == (ids,)  # the rest comes back a moment later, after the links

    get_queue("links").empty()
    assert delivery.send_messages(ids)[0] == 4  # nothing waiting: sent


@pytest.mark.live
def test_round_links_overtake_result_sms_being_sent_and_the_rate_stays_shared(
        tmp_path, redis_url, moto_server):
    """A real worker sends round 1's 30 results through SNS (moto's server) at 5/s, each recorded
    as it leaves; round 2 starts meanwhile: its links go out before the rest of the results (by
    the messages' sent times), and no second holds more than the limit."""
    redis.Redis.from_url(redis_url).flushall()
    rate = 5
    stack = LiveStack(tmp_path, redis_url, SMS_RATE_PER_SECOND=str(rate),
                      RESULTS_DELAY_SECONDS="0", SMS_CONFIRMATION="false", SMS_BACKEND="sns",
                      SNS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    try:
        stack.start()
        load_demo_bank(stack)
        api = Api(stack.url)
        for n in range(1, 31):
            api.register(f"Player {n}", n)
        api.start(1)
        links = round_links(api, 1, 30)
        for to in sorted(links)[:20]:  # 20 answer: 10 go through, 20 are out
            answer_over_http(links[to], 1)
        api.end(1)
        wait_until(lambda outbox: sum(m["challenge"] == 1 and m["kind"] != "round_link"
                                      and m["status"] == "sent" for m in outbox) >= 2, api)
        api.start(2)  # while the results are being sent
        outbox = wait_until(lambda outbox: len(outbox) == 30 + 30 + 10
                            and all(m["status"] == "sent" for m in outbox), api)
    finally:
        stack.stop()
    sent = [(m, datetime.fromisoformat(m["sent_at"].rstrip("Z"))) for m in outbox]
    results = sorted(t for m, t in sent if m["challenge"] == 1 and m["kind"] != "round_link")
    new_links = sorted(t for m, t in sent if m["challenge"] == 2)
    assert len(results) == 30 and len(new_links) == 10
    first, last = new_links[0], new_links[-1]
    assert [t for t in results if first <= t <= last] == []  # nothing between the links
    assert results[1] < first < last < results[-1]  # they overtook results being sent
    per_second = Counter(t.replace(microsecond=0) for _, t in sent)
    # The limit counts by the second a send was let through; sent_at is stamped once the provider
    # answered, so a send let through at the very end of a second may be stamped in the next.
    assert max(per_second.values()) <= rate + 1


def wait_until(done, api: Api, seconds: float = 90) -> list[dict]:
    """The outbox, once `done(outbox)` holds."""
    deadline = time.monotonic() + seconds
    while not done(outbox := api.outbox()):
        assert time.monotonic() < deadline, Counter((m["kind"], m["status"]) for m in outbox)
        time.sleep(0.2)
    return outbox


def test_other_messages_wait_while_another_worker_sends_links_never_for_their_own(app):
    assert not delivery.links_waiting("me")
    delivery.mark_links_sending("other")  # another worker is in the middle of a links batch
    assert delivery.links_waiting("me") and not delivery.links_waiting("other")
    delivery.links_sent("me")  # not mine to clear
    assert delivery.links_waiting("me")
    delivery.links_sent("other")  # its batch is done
    assert not delivery.links_waiting("me")
