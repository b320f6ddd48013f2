"""What operators watch: JSON logs with a request id, /healthz, and Prometheus metrics at
/metrics."""
import json
import logging
import os
import time
import uuid

from flask import Flask, Response, g, jsonify, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from rq import Queue
from rq.worker import Worker
from sqlalchemy import text

from .alert_checks import beating
from .extensions import QUEUE_NAMES, db, get_redis
from .supervisor import RESTARTS_KEY

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
REQUEST_SECONDS = Histogram("knockout_request_seconds", "Request latency", ["endpoint", "method"],
                            registry=REGISTRY,
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
SUBMISSIONS = Counter("knockout_submissions_total", "Submissions stored", registry=REGISTRY)
# The stored form's submit answered before Flask (quiz/web/submit_path.py), or handed on to it.
SUBMIT_PATH = Counter("knockout_submit_fast_path_total", "Submits answered before Flask or handed "
                      "on to it", ["outcome"], registry=REGISTRY)
# Under gunicorn (PROMETHEUS_MULTIPROC_DIR, set in gunicorn.conf.py) every process's counts are
# added up at scrape time; the sockets gauge sums the live processes.
SOCKETS = Gauge("knockout_websockets", "Open websockets", registry=REGISTRY,
                multiprocess_mode="livesum")
# Submits first (quiz/web/priority.py): the submits in flight, the reads waiting for a rush of them
# to pass now, and how many reads waited and how long.
SUBMITS_IN_FLIGHT = Gauge("knockout_submits_in_flight", "Submits in flight", registry=REGISTRY,
                          multiprocess_mode="livesum")
READS_HELD = Gauge("knockout_reads_held", "Reads waiting for a rush of submits to pass",
                   registry=REGISTRY, multiprocess_mode="livesum")
READS_HELD_SECONDS = Histogram("knockout_read_held_seconds", "How long reads waited for a rush "
                               "of submits", registry=REGISTRY,
                               buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
WORKER_STALE_SECONDS = 120


class QueueDepth:
    """knockout_queue_depth{queue}: jobs waiting, read from Redis at scrape time (one truth for
    every process)."""

    def collect(self):
        family = GaugeMetricFamily("knockout_queue_depth", "Jobs waiting", labels=["queue"])
        try:
            for name in QUEUE_NAMES:
                family.add_metric([name], Queue(name, connection=get_redis()).count)
        except Exception:
            log.warning("metrics: Redis unreachable for queue depth")
        yield family


REGISTRY.register(QueueDepth())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        try:
            entry["request_id"] = g.request_id
        except (RuntimeError, AttributeError):
            pass
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def request_id(given: str | None) -> str:
    """A request's id: the one it came with (X-Request-ID, a proxy's), else a new one."""
    return (given or "")[:64] or uuid.uuid4().hex


def _start_request():
    g.request_id = request_id(request.headers.get("X-Request-ID"))
    g.started = time.perf_counter()


def _finish_request(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if "started" in g:
        REQUEST_SECONDS.labels(request.endpoint or "none", request.method).observe(
            time.perf_counter() - g.started)
    return response


def health() -> tuple[dict, bool]:
    """Web, database, Redis and workers: each 'ok' or what is wrong."""
    report, healthy = {"web": "ok"}, True
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as error:
        report["database"], healthy = f"error: {type(error).__name__}", False
    try:
        get_redis().ping()
        report["redis"] = "ok"
        now = time.time()
        # RQ's own heartbeat comes every ~7 minutes from an idle worker: its alerts watcher's beat
        # (every few seconds) says it is alive too.
        workers = {w.name for w in Worker.all(connection=get_redis())
                   if w.last_heartbeat
                   and now - w.last_heartbeat.timestamp() < WORKER_STALE_SECONDS}
        workers |= beating(get_redis(), WORKER_STALE_SECONDS)
        report["workers"] = len(workers)
        report["queues"] = {name: Queue(name, connection=get_redis()).count for name in QUEUE_NAMES}
        restarts = get_redis().hgetall(RESTARTS_KEY)  # `flask demo`'s supervisor counts them
        report["restarts"] = {name.decode(): int(count) for name, count in sorted(restarts.items())}
        if not workers:
            report["worker_status"], healthy = "no live worker: start `python worker.py`", False
    except Exception as error:
        report["redis"], healthy = f"error: {type(error).__name__}", False
    return report, healthy


def healthz():
    """/healthz: 200 when web, database, Redis and at least one worker are fine, else 503."""
    report, healthy = health()
    return jsonify(status="ok" if healthy else "degraded", **report), 200 if healthy else 503


def ping():
    """/ping: the web process answers (no database, no Redis): a load balancer's liveness check, the
    benchmark's ceiling."""
    return "ok"


def metrics():
    """/metrics in Prometheus' text format: every web process's counts added up, queue depth from
    Redis."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(QueueDepth())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    if not app.testing:  # (pytest keeps its own log capture)
        configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/ping", "ping", ping)
    app.add_url_rule("/metrics", "metrics", metrics)
