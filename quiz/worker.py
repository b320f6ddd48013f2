"""The worker's side: an RQ worker inside the app, and the reconcile loop beside it
(`python worker.py`)."""
import logging
import threading
import time

from flask import Flask, current_app
from rq import SimpleWorker

from . import alerts, reconcile, stored_forms
from .extensions import QUEUE_NAMES, db, get_queue, get_redis

log = logging.getLogger(__name__)

# How often a worker cleans RQ's registries and, if no live scheduler holds the lock, takes the
# scheduler over (RQ's default is 10 minutes: a worker killed with the lock left scheduled jobs
# waiting that long).
MAINTENANCE_SECONDS = 30


class AppWorker(SimpleWorker):
    """Runs jobs in-process inside the app context, with a fresh database session per job."""

    def perform_job(self, *args, **kwargs):
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            db.session.remove()


def run_worker(burst: bool = False, name: str | None = None) -> bool:
    """Work the forms, notify and default queues (with RQ's scheduler) until stopped, or until
    empty.

    A long-running worker also reconciles every RECONCILE_SECONDS (one worker at a time), so work
    lost in a Redis outage or with a dead worker is found again without anyone asking.
    """
    worker = AppWorker([get_queue(n) for n in QUEUE_NAMES], connection=get_redis(), name=name,
                       maintenance_interval=MAINTENANCE_SECONDS)
    if not burst:
        app = current_app._get_current_object()
        threading.Thread(target=reconcile_forever, args=(app,), name="reconcile",
                         daemon=True).start()
        alerts.watch(app, "worker", worker.name)  # ops alerts, and the heartbeat the web reads
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def reconcile_forever(app: Flask) -> None:
    """Every RECONCILE_SECONDS, messages (and every FORMS_RECONCILE_SECONDS, stored forms), by
    whichever worker takes the turn first."""
    every = float(app.config["RECONCILE_SECONDS"])
    forms_every = float(app.config["FORMS_RECONCILE_SECONDS"])
    while True:
        time.sleep(every)
        with app.app_context():
            try:
                if get_redis().set("knockout:reconcile", "1", nx=True, px=int(every * 800)):
                    result = reconcile.reconcile_messages()
                    if any(result.values()):
                        log.info("reconcile: %s", result)
                if get_redis().set("knockout:reconcile:forms", "1", nx=True,
                                   px=int(forms_every * 1000)):
                    stored_forms.reconcile()
            except Exception:  # Redis or the database away for a moment: try again next time
                log.exception("reconcile failed")
            finally:
                db.session.remove()
