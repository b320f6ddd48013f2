"""Submits first: while a rush of submits is in flight in a web process, its reads wait for it.

At a round's end thousands of phones submit against the clock while the room keeps reading (waiting
phones poll their page and /api/status, projectors and load balancers ask too). Under gevent a web
process serves every ready request on each pass of its event loop, between every step of a submit
(the rate limit's round trip to Redis, its read, the hand-off to the group-commit writer, the
writer's gathering, the wake-up): a few dozen always-ready readers make each of those passes cost
them all, and a burst of submits drains several times slower than alone.

`SubmitsFirst`, the outermost WSGI wrapper, counts the submits (POST /f/<code>/submit) in flight in
its process. While they are SUBMIT_PRIORITY_THRESHOLD or more (a rush, never a lone submit), a
request that can wait (GET or HEAD; not a websocket upgrade, not /metrics or /healthz, which
operators watch the rush with, and not a player's round page or what it loads: the questions page
after a Start press is read against that player's own clock) waits cooperatively until the rush is
over, at most READ_YIELD_MAX_SECONDS (0: never), then is served as before. So what waits is the
room's polling (/api/status), the projector's and the console's pages, reports, a load balancer's
/ping. Every POST goes on at once: the Start press starts a player's clock, a registration or a
console action is a person waiting.

The rush is over once the submits in flight have stayed below the threshold for QUIET_SECONDS:
between one group commit's answers and the next wave of submits the count dips (the woken requests
write their answers before the phones' next submits are read, 0.1 s and more on a busy machine), and
releasing every reader at each dip gave them the loop again (at 0.05 s, three quarters of the
readers' requests during a burst on a loaded machine were served unheld). Outside gevent (the tests'
Flask client, the CLI) nothing ever waits: the wrapper is a pass-through.
"""
import re
import time

from flask import Flask

from ..extensions import under_gevent
from ..observability import READS_HELD, READS_HELD_SECONDS, SUBMITS_IN_FLIGHT

SUBMIT = re.compile(r"/f/[^/]*/submit")
WAITING_METHODS = ("GET", "HEAD")
WATCHED = ("/metrics", "/healthz")  # never held: operators look at the rush through them
# Never held either: a player's round page (their clock may be running: the questions after their
# Start, the page after their submit) and the files it loads.
PLAYERS_OWN = ("/f/", "/static/", "/brand/")
# How long the submits in flight stay below the threshold before the held reads go on.
QUIET_SECONDS = 0.25


# This process's SubmitsFirst (the gunicorn web process's app): web_worker.Server asks it how many
# submits are in flight here before it takes in more connections.
CURRENT: "SubmitsFirst | None" = None


def submits_in_flight() -> int:
    """The submits in flight in this process (0 where nothing counts them: outside gevent, or with
    READ_YIELD_MAX_SECONDS=0)."""
    return CURRENT.in_flight if CURRENT is not None else 0


def may_wait(environ) -> bool:
    """Whether this request can wait for a rush of submits to pass (a read, not a socket)."""
    path = environ.get("PATH_INFO", "")
    return (environ.get("REQUEST_METHOD") in WAITING_METHODS
            and path not in WATCHED and not path.startswith(PLAYERS_OWN)
            and not environ.get("HTTP_UPGRADE"))


def is_submit(environ) -> bool:
    return (environ.get("REQUEST_METHOD") == "POST"
            and SUBMIT.fullmatch(environ.get("PATH_INFO", "")) is not None)


class SubmitsFirst:
    """WSGI: counts the submits in flight; while they are a rush, reads wait (at most a cap)."""

    def __init__(self, app: Flask, wrapped):
        self.wrapped = wrapped
        self.threshold = app.config["SUBMIT_PRIORITY_THRESHOLD"]
        self.cap = app.config["READ_YIELD_MAX_SECONDS"]
        # None: decided on first use (a gunicorn gevent worker patches before it loads the app);
        # the tests set it to run on greenlets of their own
        self.gated: bool | None = None
        self.in_flight, self.busy_at, self.ending = 0, 0.0, False
        self.quiet = None  # a gevent Event, set while there is no rush
        global CURRENT
        CURRENT = self

    def __call__(self, environ, start_response):
        if not self._gated():
            return self.wrapped(environ, start_response)
        if is_submit(environ):
            return self._submit(environ, start_response)
        if not self.quiet.is_set() and may_wait(environ):
            self._hold()
        return self.wrapped(environ, start_response)

    def _gated(self) -> bool:
        if self.gated is None:
            self.gated = self.cap > 0 and under_gevent()
        if self.gated and self.quiet is None:
            from gevent.event import Event
            self.quiet = Event()
            self.quiet.set()
        return self.gated

    def _submit(self, environ, start_response):
        """The submit runs as it would (its answer is decided once the wrapped app returns); the
        count says meanwhile that it is in flight."""
        self.in_flight += 1
        SUBMITS_IN_FLIGHT.inc()
        if self.in_flight >= self.threshold:
            self.busy_at = time.monotonic()
            self.quiet.clear()
        try:
            return self.wrapped(environ, start_response)
        finally:
            if self.in_flight >= self.threshold:
                self.busy_at = time.monotonic()
            self.in_flight -= 1
            SUBMITS_IN_FLIGHT.dec()
            if self.in_flight < self.threshold and not self.quiet.is_set() and not self.ending:
                self._end_later(QUIET_SECONDS)

    def _end_later(self, seconds: float) -> None:
        import gevent
        self.ending = True
        gevent.spawn_later(seconds, self._end)

    def _end(self) -> None:
        """The rush is over if the count stayed below the threshold for QUIET_SECONDS; else look
        again when it will have."""
        self.ending = False
        if self.in_flight >= self.threshold or self.quiet.is_set():
            return  # still a rush: its next dip below the threshold looks again
        left = self.busy_at + QUIET_SECONDS - time.monotonic()
        if left > 0:
            self._end_later(left)
        else:
            self.quiet.set()

    def _hold(self) -> None:
        """Wait for the rush to pass, at most the cap."""
        started = time.perf_counter()
        READS_HELD.inc()
        try:
            self.quiet.wait(self.cap)
        finally:
            READS_HELD.dec()
            READS_HELD_SECONDS.observe(time.perf_counter() - started)


def install(app: Flask) -> None:
    """Outermost: it sees every request before the fast paths and Flask do."""
    app.wsgi_app = SubmitsFirst(app, app.wsgi_app)
