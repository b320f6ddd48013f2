"""Ops alerts: ALERT_WEBHOOK_URL (Slack- or Discord-compatible) hears once when something needs a
person, and once when it is over; the console lists them too. The checks: quiz/alert_checks.py.

Who looks: every web process (no live worker, Redis, the database: what a dead worker can't see)
and every worker (Redis, the database, failure rates, unsent links, disk), each every
ALERT_CHECK_SECONDS, from a thread of its own (`watch`).

One message per incident, however many processes see it:
- Processes sharing an instance folder (a machine, a compose volume) share its `alerts.json`: the
  incidents open and the messages owed, read and written under a lock (`alerts.lock`), replaced
  atomically. An incident already in it is not announced again, whichever process sees it.
- Across instance folders, while Redis answers: announcing takes a claim (SET NX on
  `knockout:alerts:claim:<incident>`, kept alive by its owner; it expires if that folder's
  processes all stop, and another takes over). Only the owner announces the incident and its end.
- Redis down: the file alone decides, so each instance folder announces that incident once.
- A webhook that fails is logged; what it owes stays in the file for the next check.
"""
import json
import logging
import secrets
import threading
import time
from pathlib import Path

import redis as redis_lib
from flask import Flask, current_app

from . import alert_checks as checks
from .alert_state import CLAIM, EVENTS_KEY, KEEP_EVENTS, Ledger, Shared
from .extensions import db

log = logging.getLogger(__name__)

KEEP_OWED = 100  # a webhook dead for long: the oldest owed messages go (logged)


def record(findings: list[checks.Finding], state: dict, shared: Shared, now: float) -> list[str]:
    """Open the incidents found, close those over (each within its finding's scope); returns the
    messages owed for what this folder announces."""
    incidents = state.setdefault("open", {})
    said = []
    for key, incident in incidents.items():
        if incident["owner"]:
            incident["owner"] = shared.keep(key, incident)
    observed = state.setdefault("observed", {})
    for finding in findings:
        # Processes look, then queue for the file: a look older than one recorded already (another
        # process's, newer) would open or close again what that one just decided.
        if finding.at < observed.get(finding.scope, 0):
            continue
        observed[finding.scope] = finding.at
        for key, text in finding.active.items():
            if key in incidents:
                incidents[key]["text"] = text
                continue
            ours, new = shared.claim(key, {"since": now, "text": text})
            incidents[key] = {"since": now, "text": text, "owner": ours}
            if ours and new:
                said.append(owe(state, shared, "alert", key, text, now))
        for key in [k for k in incidents if k.startswith(finding.scope)
                    and k not in finding.active]:
            incident = incidents.pop(key)
            if incident["owner"]:
                shared.release(key)
                said.append(owe(state, shared, "resolved", key, incident["text"], now,
                                incident["since"]))
    return said


def owe(state: dict, shared: Shared, kind: str, key: str, text: str, now: float,
        since: float | None = None) -> str:
    """The message for an alert or a recovery: in the console's list, and owed to the webhook."""
    event = {"at": now, "kind": kind, "key": key, "text": text}
    if since is not None:
        event["lasted"] = round(now - since)
    state["events"] = [event] + state.get("events", [])[:KEEP_EVENTS - 1]
    shared.note(event)
    name = current_app.config["EVENT_NAME"]
    message = (f"[{name}] ALERT: {text}" if kind == "alert" else
               f"[{name}] RESOLVED after {duration(now - since)}: {text}")
    log.warning("alerts: %s", message)
    if current_app.config["ALERT_WEBHOOK_URL"]:
        owed = state.setdefault("owed", [])
        owed.append({"id": secrets.token_hex(8), "text": message})
        if len(owed) > KEEP_OWED:
            log.error("alerts: webhook down too long, dropping %s", owed.pop(0)["text"])
    return message


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


class WebhookError(Exception):
    """The webhook could not be reached, or said no."""


def post(url: str, text: str) -> None:
    """Slack reads `text`, Discord `content` (at most 2,000 characters)."""
    import requests  # only a process with something to post pays for the import
    try:
        response = requests.post(url, json={"text": text, "content": text[:2000]}, timeout=5)
        response.raise_for_status()
    except requests.RequestException as error:
        raise WebhookError(str(error)) from error


def deliver(ledger: Ledger, url: str) -> int:
    """Post what is owed, oldest first, outside the lock (one process at a time: a mark in the file
    says who is posting, until when); the first failure stops, the rest waits for the next check."""
    now = time.time()
    with ledger.locked() as state:
        batch = state.get("owed", [])[:20]
        if not batch or state.get("posting_until", 0) > now:
            return 0
        state["posting_until"] = now + 6 * len(batch) + 5
    done = []
    for item in batch:
        try:
            post(url, item["text"])
        except WebhookError as error:
            log.warning("alerts: webhook failed (%s); %s message(s) kept for the next check",
                        error, len(batch) - len(done))
            break
        done.append(item["id"])
    with ledger.locked() as state:
        state["owed"] = [item for item in state.get("owed", []) if item["id"] not in done]
        state.pop("posting_until", None)
    return len(done)


def look(role: str, watching_since: float):
    """Run this role's checks (those that can run now); the Redis connection if it answered."""
    client = checks.redis_client()
    reached = checks.redis_reachable(client)
    database = checks.database_reachable()
    findings, redis_up = [reached, database], not reached.active
    wanted = []
    # A process that started looking less than ALERT_NO_WORKER_SECONDS ago says nothing of the
    # worker: a beat older than its start is as stale to it as to the others (two web processes,
    # one booted late, would otherwise disagree, and the alert flap), yet a worker starting beside
    # it deserves that long for its first beat.
    if role in ("web", "all") and redis_up and (
            time.time() - watching_since >= float(current_app.config["ALERT_NO_WORKER_SECONDS"])):
        wanted.append(lambda: checks.worker_alive(client, watching_since))
    if role in ("worker", "all") and not database.active:
        wanted += [checks.failure_rates, checks.unsent_links]
    if role in ("worker", "all"):
        wanted.append(checks.disk_space)
    for check in wanted:
        try:
            findings.append(check())
        except Exception:  # it answers for nothing this time
            log.exception("alerts: a check failed")
            db.session.rollback()
    return findings, client if redis_up else None


def check(role: str = "all", watching_since: float = 0.0) -> list[str]:
    """One pass: look, record what changed, post what is owed. Returns the new messages."""
    try:
        findings, client = look(role, watching_since)
    finally:
        db.session.remove()
    ledger = Ledger(Path(current_app.instance_path))
    ttl = max(60, int(6 * float(current_app.config["ALERT_CHECK_SECONDS"])))
    with ledger.locked() as state:
        group = state.setdefault("group", secrets.token_hex(6))
        said = record(findings, state, Shared(client, group, ttl), time.time())
    if current_app.config["ALERT_WEBHOOK_URL"]:
        deliver(ledger, current_app.config["ALERT_WEBHOOK_URL"])
    return said


def watch(app: Flask, role: str, worker: str | None = None,
          stop: threading.Event | None = None) -> threading.Thread:
    """Check every ALERT_CHECK_SECONDS in a thread of this process (a web process, a worker); a
    worker also beats in a thread of its own, three times a ALERT_NO_WORKER_SECONDS, however long
    its checks take (a slow database check must not make a live worker look dead). Until `stop` is
    set, if given."""
    stop = stop or threading.Event()
    if worker:
        with app.app_context():
            client = checks.redis_client()
        forever(app, "heartbeat", float(app.config["ALERT_NO_WORKER_SECONDS"]) / 3,
                lambda: heartbeat(client, worker), stop)
    since = time.time()
    return forever(app, f"alerts-{role}", float(app.config["ALERT_CHECK_SECONDS"]),
                   lambda: check(role, since), stop)


def heartbeat(client, worker: str) -> None:
    try:
        checks.beat(client, worker)
    except redis_lib.RedisError:
        pass  # Redis away: the checks say so, once, not this beat every few seconds


def forever(app: Flask, name: str, every: float, step, stop: threading.Event) -> threading.Thread:
    """`step` every `every` seconds until `stop`, in the app's context, in a daemon thread; a step
    that fails is logged and tried again next time (never the process's end)."""
    def loop():
        while not stop.wait(every):
            with app.app_context():
                try:
                    step()
                except Exception:
                    log.exception("alerts: %s failed", name)
    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def report() -> dict:
    """For the console: incidents open (this folder's file, and every folder's claims in Redis) and
    the latest alerts and recoveries."""
    state = Ledger(Path(current_app.instance_path)).read()
    incidents = {key: dict(value) for key, value in state.get("open", {}).items()}
    events = state.get("events", [])
    try:
        client = checks.redis_client()
        for name in client.scan_iter(CLAIM + "*", count=100):
            raw = client.get(name)
            if raw:
                incidents.setdefault(name.decode()[len(CLAIM):], json.loads(raw))
        shared = [json.loads(raw) for raw in client.lrange(EVENTS_KEY, 0, KEEP_EVENTS - 1)]
        seen = {(e["at"], e["key"], e["kind"]) for e in events}
        events = sorted(events + [e for e in shared if (e["at"], e["key"], e["kind"]) not in seen],
                        key=lambda e: -e["at"])[:KEEP_EVENTS]
    except redis_lib.RedisError:
        pass  # the file's own view
    now = time.time()
    return {"open": sorted(({"key": key, "text": value["text"],
                             "for": duration(now - value["since"])}
                            for key, value in incidents.items()), key=lambda i: i["key"]),
            "events": [{**e, "ago": duration(now - e["at"])} for e in events]}
