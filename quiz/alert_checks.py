"""What needs a person, looked at from one process: each check answers for a set of incidents (its
`scope`, a key or a key prefix) with the ones happening now and what to tell the staff. A check that
cannot look (Redis down: no worker heartbeats to read) answers for nothing, so nothing it watches
is called recovered. quiz/alerts.py turns these findings into one alert and one recovery each.

Incident keys: `worker`, `redis`, `database`, `failures:<channel>:<round>`, `unsent:<round>`,
`disk:<folder>`.
"""
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import redis as redis_lib
from flask import current_app
from sqlalchemy import func, literal, select, text

from .clock import utcnow
from .extensions import db
from .models import Challenge, Message, MessageStatus, Participant

BEATS_KEY = "knockout:alerts:workers"  # worker name → the last time its watcher ran (epoch s)
UNSENT = (MessageStatus.QUEUED, MessageStatus.SENDING)


@dataclass
class Finding:
    """For the incidents under `scope`: those happening now (key → what a person should read)."""

    scope: str
    active: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # when it was seen (an older look never wins)


def redis_client():
    """A connection of its own with short timeouts: a hung Redis must not hang the checks."""
    return redis_lib.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=3,
                                    socket_connect_timeout=3)


def redis_reachable(client) -> Finding:
    try:
        client.ping()
        return Finding("redis")
    except redis_lib.RedisError as error:
        return Finding("redis", {"redis": f"Redis unreachable ({type(error).__name__}): queues, "
                                          "live pages and SMS pause (players can still answer)"})


def database_reachable() -> Finding:
    try:
        db.session.execute(text("SELECT 1"))
        return Finding("database")
    except Exception as error:  # any driver's error: the point is that it failed
        db.session.rollback()
        return Finding("database", {"database": f"database unreachable ({type(error).__name__}): "
                                                "players can't register, start or submit"})
    finally:
        db.session.remove()


# Beats are stamped and judged on Redis's clock, in one script each: a beat's time is when it was
# stored, and a judgement's when it read (a process held up between its clock and its write or
# read would otherwise stamp a stale beat or a stale "dead" with another time, and the alert
# would flap between two web processes; nodes' clocks may differ too).
BEAT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400)
"""
NEWEST = """
local clock = redis.call('TIME')
local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {clock[1] .. '.' .. string.format('%06d', tonumber(clock[2])), newest[2] or false}
"""


def beat(client, worker: str) -> None:
    """A worker's watcher says it is alive (RQ's own heartbeat comes every ~7 minutes when idle)."""
    client.eval(BEAT, 1, BEATS_KEY, worker)


def beating(client, within: float) -> set[str]:
    """The workers whose watcher beat in the last `within` seconds."""
    return {name.decode() for name in client.zrangebyscore(BEATS_KEY, time.time() - within, "+inf")}


def worker_alive(client, watching_since: float) -> Finding:
    """`worker`: no worker's watcher has beaten for ALERT_NO_WORKER_SECONDS (counted from when this
    process started looking, if none ever beat). Asked only of a process that has looked that long
    (quiz/alerts.py)."""
    limit = float(current_app.config["ALERT_NO_WORKER_SECONDS"])
    clock, newest = client.eval(NEWEST, 1, BEATS_KEY)
    now = float(clock)  # the moment judged: when Redis read the beats
    last = float(newest) if newest else watching_since
    if now - last < limit:
        return Finding("worker", at=now)
    return Finding("worker", {"worker": f"no live worker for {limit:g} s: SMS, results, reminders "
                                        "and round time limits wait (start `python worker.py`)"},
                   at=now)


def channels():
    """Messages' channel column once there is one (email beside SMS), else every message is SMS."""
    column = Message.__table__.c.get("channel")
    return column if column is not None else literal("sms")


def failure_rates() -> Finding:
    """`failures:<channel>:<round>`: more than ALERT_FAILURE_RATE of a round's finished messages on
    a channel failed, and at least ALERT_FAILURE_MIN of them."""
    config = current_app.config
    rate, least = float(config["ALERT_FAILURE_RATE"]), int(config["ALERT_FAILURE_MIN"])
    channel = channels().label("channel")
    failed = func.count().filter(Message.status == MessageStatus.FAILED)
    rows = db.session.execute(
        select(Challenge.number, channel, failed, func.count())
        .join(Challenge, Challenge.id == Message.challenge_id)
        .where(Message.status.in_((MessageStatus.SENT, MessageStatus.FAILED)))
        .group_by(Challenge.number, channel)).all()
    found = Finding("failures:")
    for number, name, failures, finished in rows:
        if failures >= least and failures > rate * finished:
            found.active[f"failures:{name}:{number}"] = (
                f"round {number}: {failures} of {finished} {name} messages failed "
                f"({failures / finished:.0%}, above {rate:.0%}): see Failed in the console")
    return found


def unsent_links() -> Finding:
    """`unsent:<round>`: an open round's links still not sent when its start window has ended
    (START_WINDOW_SECONDS after it opened, or else its time limit)."""
    window = current_app.config.get("START_WINDOW_SECONDS")
    found = Finding("unsent:")
    now = utcnow()
    for challenge in db.session.scalars(select(Challenge).where(Challenge.is_open)).all():
        seconds = float(window) if window else challenge.time_limit_seconds
        if not seconds or challenge.opened_at is None \
                or challenge.opened_at + timedelta(seconds=seconds) > now:
            continue
        unsent, made = db.session.execute(
            select(func.count().filter(Message.status.in_(UNSENT)), func.count())
            .where(Message.challenge_id == challenge.id, Message.kind == "round_link")).one()
        if not made:  # the links were never even queued (no worker took the job)
            unsent = db.session.scalar(select(func.count()).where(
                Participant.eliminated_in.is_(None), Participant.consent.is_(True)))
        if unsent:
            found.active[f"unsent:{challenge.number}"] = (
                f"round {challenge.number}: {unsent} links still unsent {seconds:g} s after it "
                "started (is a worker running? is the SMS provider slow?)")
    return found


def disk_space() -> Finding:
    """`disk:<folder>`: the instance folder's (or the stored forms' folder's) disk has less than
    ALERT_DISK_FREE_PERCENT free."""
    config = current_app.config
    least = float(config["ALERT_DISK_FREE_PERCENT"])
    folders = {Path(current_app.instance_path)}
    if config["STORAGE_URL"].startswith("file://"):
        folders.add(Path(config["STORAGE_URL"][len("file://"):]))
    found, devices = Finding("disk:"), set()
    for folder in sorted(folders):
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder.stat().st_dev in devices:
            continue  # one incident per disk
        devices.add(folder.stat().st_dev)
        usage = shutil.disk_usage(folder)
        free = 100 * usage.free / usage.total
        if free < least:
            found.active[f"disk:{folder}"] = (
                f"disk almost full: {free:.1f}% free ({usage.free / 2**30:.1f} GiB) where {folder} "
                f"is, below {least:g}%")
    return found
