"""Gunicorn settings: gevent workers (websockets included). Override with environment variables."""
import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gunicorn's gevent worker, taking several new connections a pass of its loop and sending each
# response's headers with its first body bytes (web_worker.py)
worker_class = "web_worker.Worker"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "4000"))
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG") or None


def post_worker_init(worker):
    """Let open websockets see a graceful restart coming, so they close with 1012 and clients
    reconnect."""
    worker.wsgi.config["KNOCKOUT_ALIVE"] = lambda: worker.alive
    # Ops alerts a dead worker can't raise (no live worker; Redis and the database): each web
    # process looks every ALERT_CHECK_SECONDS (quiz/alerts.py keeps it to one message).
    from quiz import alerts
    alerts.watch(worker.wsgi, "web")
    if os.environ.get("KNOCKOUT_PROFILE_DIR"):  # the bench's profile of each web process
        import cProfile
        worker.profile = cProfile.Profile()
        worker.profile.enable()


def worker_exit(server, worker):
    """A web process stopping: send what its last requests' commits still owe (quiz/effects.py)."""
    from quiz.extensions import state
    if getattr(worker, "wsgi", None) is not None:  # None when the app failed to load
        state(worker.wsgi).dispatcher.stop()
    if getattr(worker, "profile", None) is not None:
        worker.profile.disable()
        worker.profile.dump_stats(
            Path(os.environ["KNOCKOUT_PROFILE_DIR"]) / f"web-{worker.pid}.prof")


# /metrics adds up every web process (prometheus_client's multiprocess mode: each process writes its
# counts to files here). Set before any worker imports prometheus_client; a directory of its own per
# server.
# A directory made here is removed when the server exits; one the operator set is left alone.
own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                    tempfile.mkdtemp(prefix="knockout-metrics-"))


def on_starting(server):
    """Counts left by an earlier run must not add to this one."""
    for stale in Path(metrics_dir).glob("*.db"):
        stale.unlink()


def on_exit(server):
    """The server stopping: the metrics directory it made goes with it (a start makes a new one)."""
    if own_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def child_exit(server, worker):
    """A web process that ended: its gauges (open sockets) stop counting; its counters stay in the
    totals."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
