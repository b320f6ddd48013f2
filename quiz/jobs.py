"""Side effects after commit: jobs are enqueued only once the rows they need are visible."""
import logging
import threading
import time
from datetime import datetime, timezone
from functools import partial

import redis
from rq import Retry, SimpleWorker
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import QUEUE_NAMES, db, get_queue, get_redis

log = logging.getLogger(__name__)

PENDING = "knockout_after_commit"


def after_commit(callback, *args, **kwargs) -> None:
    """Run `callback` once the current transaction has committed (dropped on rollback)."""
    db.session.info.setdefault(PENDING, []).append(partial(callback, *args, **kwargs))


def enqueue(func: str, *args, queue: str = "default", at: datetime | None = None, description: str = "",
            timeout: int = 300) -> None:
    """Enqueue a job now; retried with backoff if it fails."""
    options = dict(job_timeout=timeout, description=description or func, retry=Retry(max=3, interval=[2, 10, 30]))
    q = get_queue(queue)
    if at is None:
        q.enqueue(func, *args, **options)
    else:
        q.enqueue_at(at.replace(tzinfo=timezone.utc), func, *args, **options)


def enqueue_after_commit(func: str, *args, **options) -> None:
    """Enqueue a job once the current transaction has committed."""
    after_commit(enqueue, func, *args, **options)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for callback in session.info.pop(PENDING, []):
        try:
            callback()
        except redis.RedisError:
            # The commit stands; reconcile finds the work again once Redis is back.
            log.exception("side effect %s failed after commit", callback)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


class AppWorker(SimpleWorker):
    """Runs jobs in-process inside the app context, with a fresh database session per job."""

    def perform_job(self, *args, **kwargs):
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            db.session.remove()


def run_worker(burst: bool = False, name: str | None = None) -> bool:
    """Work the forms, notify and default queues (with RQ's scheduler) until stopped, or until empty.

    A long-running worker also reconciles every RECONCILE_SECONDS (one worker at a time),
    so work lost in a Redis outage or with a dead worker is found again without anyone asking.
    """
    worker = AppWorker([get_queue(n) for n in QUEUE_NAMES], connection=get_redis(), name=name)
    if not burst:
        app = current_app._get_current_object()
        threading.Thread(target=_reconcile_forever, args=(app,), name="reconcile", daemon=True).start()
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def _reconcile_forever(app) -> None:
    from .tasks import reconcile_forms, reconcile_messages
    every = float(app.config["RECONCILE_SECONDS"])
    forms_every = float(app.config["FORMS_RECONCILE_SECONDS"])
    while True:
        time.sleep(every)
        with app.app_context():
            try:
                if get_redis().set("knockout:reconcile", "1", nx=True, px=int(every * 800)):
                    result = reconcile_messages()
                    if any(result.values()):
                        log.info("reconcile: %s", result)
                if get_redis().set("knockout:reconcile:forms", "1", nx=True, px=int(forms_every * 1000)):
                    reconcile_forms()
            except Exception:  # Redis or the database away for a moment: try again next time
                log.exception("reconcile failed")
            finally:
                db.session.remove()
