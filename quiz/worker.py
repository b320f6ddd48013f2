"""The worker's side: an RQ worker inside the app, and the reconcile loop beside it
(`python worker.py`)."""
import logging
import os
import re
import threading
import time
from contextlib import contextmanager

from flask import Flask, current_app
from rq import SimpleWorker
from rq.scheduler import RQScheduler

from . import alerts, reconcile, stored_forms
from .extensions import QUEUE_NAMES, db, get_queue, get_redis

log = logging.getLogger(__name__)

# Scheduled jobs (delayed results, reminders, a round's close) run on time with one worker's RQ
# scheduler, which holds a lock. RQ's lock lives 61 s past its last refresh, a worker looks for a
# lapsed lock at its maintenance (RQ: every 10 minutes) and an idle worker only between waits for a
# job (RQ: 405 s). Here a killed holder's lock lapses within SCHEDULER_LOCK_SECONDS, and every
# worker looks at least every MAINTENANCE_SECONDS + DEQUEUE_WAIT_SECONDS: another worker, or the
# same one restarted, takes the scheduler over within 35 s.
SCHEDULER_LOCK_SECONDS = 15
MAINTENANCE_SECONDS = 10
DEQUEUE_WAIT_SECONDS = 10
WORKER_TTL_SECONDS = DEQUEUE_WAIT_SECONDS + 15  # RQ waits for a job this long, less 15 s


class QuietMaintenance(logging.Filter):
    """RQ logs its registries' cleaning at INFO at each maintenance: here every MAINTENANCE_SECONDS,
    six lines each time on the terminal `make run` shows the organizer, burying what matters (a
    job's failure, a restart). Those lines are left out; the cleaning itself is unchanged."""

    CLEANING = re.compile(r"cleaning (group )?registries")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.CLEANING.search(record.getMessage())


QUIET_MAINTENANCE = QuietMaintenance()


class AppScheduler(RQScheduler):
    """RQ's scheduler (a process the worker forks) with a lock that lapses SCHEDULER_LOCK_SECONDS
    after its last refresh (every second), and that stops when its worker is gone: a worker
    killed alone must not leave an orphan holding the lock."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Made in the worker, which forks the scheduler: its pid is the parent to watch. (Read
        # by the child when its loop began, it was already 1 when the worker died in between,
        # and that orphan never saw its worker go: the suite's takeover test caught it.)
        self.worker_pid = os.getpid()

    def acquire_locks(self, auto_start=False):
        with self._short_locks():
            locks = super().acquire_locks()
        if self._acquired_locks and auto_start and not (self._process
                                                        and self._process.is_alive()):
            self.start()  # (RQ's auto_start, outside: the forked scheduler keeps its interval)
        return locks

    def heartbeat(self):
        if os.getppid() != self.worker_pid:
            log.warning("scheduler: its worker died; stopping (another takes over)")
            self._stop_requested = True  # the loop stops next: locks released
            return
        with self._short_locks():
            super().heartbeat()

    @contextmanager
    def _short_locks(self):
        """RQ sets and refreshes its locks (and its scheduler's record) to lapse `interval` + 60 s
        later; meanwhile, that is SCHEDULER_LOCK_SECONDS. Shortening them after RQ's call instead
        left a lock of 61 s whenever the holder died between the two (a killed machine), and the
        scheduler was taken over a minute late."""
        interval, self.interval = self.interval, SCHEDULER_LOCK_SECONDS - 60
        try:
            yield
        finally:
            self.interval = interval


class AppWorker(SimpleWorker):
    """Runs jobs in-process inside the app context, with a fresh database session per job; its
    scheduler is an AppScheduler."""

    def perform_job(self, *args, **kwargs):
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            db.session.remove()

    def unsubscribe(self):
        """RQ's, with the pubsub thread told to stop before the UNSUBSCRIBE goes out: its reply then
        wakes the thread to end. In RQ's order the thread could read the reply first and wait for
        the next message again (60 s), and the join gave up only after its full second: every other
        stop took a second longer (a burst run, the tests' run_jobs, 25 ms or 1 s)."""
        if self.pubsub_thread:
            self.pubsub_thread.stop()
        super().unsubscribe()

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=None,
                         log_format=None):
        """RQ's own (rq.worker.base), with an AppScheduler: try for the lock now; maintenance
        tries again."""
        options = {"date_format": date_format, "log_format": log_format}
        self.scheduler = AppScheduler(self.queues, connection=self.connection,
                                      logging_level=logging_level or self.log.level,
                                      serializer=self.serializer,
                                      **{k: v for k, v in options.items() if v is not None})
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()


def run_worker(burst: bool = False, name: str | None = None) -> bool:
    """Work the links, forms, notify and default queues (with RQ's scheduler) until stopped, or
    until empty.

    A long-running worker also reconciles every RECONCILE_SECONDS (one worker at a time), so work
    lost in a Redis outage or with a dead worker is found again without anyone asking.
    """
    logging.getLogger("rq.worker").addFilter(QUIET_MAINTENANCE)  # once, however often called
    if not burst:  # (a burst runs in the caller's process: the tests', a command's)
        yield_cores(current_app.config["WORKER_NICE"])
    worker = AppWorker([get_queue(n) for n in QUEUE_NAMES], connection=get_redis(), name=name,
                       maintenance_interval=MAINTENANCE_SECONDS, worker_ttl=WORKER_TTL_SECONDS)
    if not burst:
        app = current_app._get_current_object()
        threading.Thread(target=reconcile_forever, args=(app,), name="reconcile",
                         daemon=True).start()
        alerts.watch(app, "worker", worker.name)  # ops alerts, and the heartbeat the web reads
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def yield_cores(nice: int) -> None:
    """Run this process at niceness `nice` (WORKER_NICE), or the one it was started with if that is
    higher: each of its threads (Linux keeps a niceness per thread; those started later, RQ's
    scheduler process among them, inherit it)."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: this thread
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError as error:  # a thread that ended meanwhile; a system that refuses
            log.warning("worker: niceness %d not set on thread %d: %s", nice, tid, error)


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
