"""Live updates: a change anywhere → Redis pub/sub → each web process renders once per tick → every
socket.

Publishers (a web request or a worker, after commit: effects.CHANGED) only say "something changed".
Each web process runs one Hub: it listens on Redis, and at most once per tick renders each topic's
fragment once, encodes it once as a websocket frame, and hands the same bytes to every socket
showing it. A socket keeps only the newest frame, so a stalled phone skips frames instead of holding
anyone up.
"""
import itertools
import logging
import re
import struct
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import redis
from flask import Blueprint, Flask

from .branding import forget_look
from .effects import CHANNEL
from .extensions import db, state
from .observability import SOCKETS

log = logging.getLogger(__name__)


OPENING_TAG = re.compile(rb"<[A-Za-z][^>]*")


def stamp(fragment: bytes, at: float) -> bytes:
    """The fragment with `data-rendered-at` (epoch seconds) on its first element: when it went out
    to the sockets (htmx ignores the attribute; bench/sockets.py subtracts it from the frame's
    arrival)."""
    tag = OPENING_TAG.search(fragment)
    if tag is None:
        return fragment
    end = tag.end() - fragment[tag.end() - 1:tag.end()].count(b"/")  # before a self-closing "/"
    return b'%s data-rendered-at="%.3f"%s' % (fragment[:end], at, fragment[end:])


def text_frame(payload: bytes) -> bytes:
    """`payload` (UTF-8) as one final, unmasked websocket text frame (RFC 6455 §5.2): a server's
    wire bytes."""
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Frame(NamedTuple):
    """A rendered fragment and its websocket frame, encoded once for every socket; `seq` orders a
    hub's frames by when their render began (a later one shows a state at least as new)."""

    seq: int
    html: bytes
    wire: bytes


class Client:
    """One socket's mailbox: holds only the newest frame. With `write_now` (the socket's
    non-blocking write, True when the frame went out whole), a frame the socket takes at once never
    waits for the socket's own greenlet."""

    def __init__(self, topic: str, write_now=None):
        self.topic, self.write_now = topic, write_now
        self.frame: Frame | None = None
        self.ready = threading.Event()
        self.frames_offered = 0
        self.seq = 0  # the newest frame offered so far

    def offer(self, frame: Frame) -> None:
        """Hand the socket `frame`, unless it already has a newer one (a render that began earlier
        and ended later: it shows an older state)."""
        if frame.seq <= self.seq:
            return
        self.seq = frame.seq
        self.frames_offered += 1
        if self.write_now is not None and self.write_now(frame):
            return
        self.frame = frame
        self.ready.set()

    def wake(self) -> None:
        """Let the socket's greenlet look around now (its peer left, or the process is stopping)."""
        self.ready.set()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to `timeout` seconds."""
        if not self.ready.wait(timeout):
            return None
        self.ready.clear()
        frame, self.frame = self.frame, None
        return frame


Renderer = Callable[[], str]  # a topic's fragment as it stands, as HTML (blueprints register them)


class Hub:
    """This process's fan-out: one Redis listener, one ticker, a set of clients per topic."""

    def __init__(self, app: Flask, renderers: dict[str, Renderer], tick: float,
                 clock=time.monotonic, sleep=None):
        self.app, self.renderers, self.tick = app, renderers, tick
        # (gevent's, once patched)
        self.clock, self.sleep = clock, sleep or (lambda seconds: time.sleep(seconds))
        self.sequence = itertools.count(1)
        self.next_tick = float("-inf")  # the earliest the next broadcast may start
        self.clients: dict[str, set[Client]] = {topic: set() for topic in renderers}
        self.dirty = threading.Event()
        self.lock = threading.Lock()
        self.started = False
        self.renders = 0
        # Changes heard so far, and each topic's newest frame with the count it was rendered at:
        # sockets connecting at once (everyone reconnecting after a restart) share one render
        # instead of one each.
        self.changes = 0
        self.latest: dict[str, tuple[int, float, Frame]] = {}
        # the ticker's own database connection: its renders never queue behind requests
        self.connection = None

    def add_renderer(self, topic: str, render: Renderer) -> None:
        """Serve `topic` too: its sockets get what `render()` returns."""
        with self.lock:
            self.renderers[topic] = render
            self.clients.setdefault(topic, set())

    def connect(self, topic: str, write_now=None) -> Client:
        """A new socket gets the current state at once. It joins the topic first: a broadcast that
        runs while its first frame renders reaches it too (and the older frame is then dropped)."""
        self._start()
        client = Client(topic, write_now)
        with self.lock:
            self.clients[topic].add(client)
        SOCKETS.inc()
        try:
            client.offer(self.current(topic))
        except BaseException:
            self.disconnect(client)
            raise
        return client

    def current(self, topic: str) -> Frame:
        """The topic's frame as it stands: the newest one while no change came since (and it is
        under a tick old, in case Redis is down and changes go unheard), else a fresh render."""
        changes, now = self.changes, self.clock()
        cached = self.latest.get(topic)
        if cached and cached[0] == changes and now - cached[1] < self.tick:
            return cached[2]
        frame = self.render(topic)
        self.remember(topic, changes, now, frame)
        return frame

    def remember(self, topic: str, changes: int, now: float, frame: Frame) -> None:
        """Keep `frame` as the topic's newest, unless a render that began later already is."""
        cached = self.latest.get(topic)
        if cached is None or cached[2].seq < frame.seq:
            self.latest[topic] = (changes, now, frame)

    def disconnect(self, client: Client) -> None:
        with self.lock:
            known = client in self.clients[client.topic]
            self.clients[client.topic].discard(client)
        if known:
            SOCKETS.dec()

    def count(self) -> int:
        return sum(len(c) for c in self.clients.values())

    def render(self, topic: str, own_connection: bool = False) -> Frame:
        """The topic's fragment, stamped and encoded for the wire (`own_connection`: on the ticker's
        connection, kept between ticks, instead of one from the pool, which a flood of submissions
        may hold for a while)."""
        try:
            return self._render(topic, own_connection)
        except Exception:
            if not own_connection:
                raise
            # e.g. the database restarted
            lost = self.connection is not None and self.connection.invalidated
            self.release(broken=True)
            if not lost:
                raise
            # once more, on a fresh connection (as pool_pre_ping would)
            return self._render(topic, own_connection)

    def _render(self, topic: str, own_connection: bool) -> Frame:
        # A request context, so templates can build URLs (the PUBLIC_BASE_URL ones).
        seq = next(self.sequence)  # taken before the render reads anything
        with self.app.test_request_context("/ws", base_url=self.app.config["PUBLIC_BASE_URL"]):
            try:
                if own_connection:
                    db.session.connection(bind_arguments={"bind": self.own_connection()})
                html = stamp(self.renderers[topic]().encode(), time.time())
            finally:
                # ends the render's transaction; the connection stays the ticker's
                db.session.remove()
        return Frame(seq, html, text_frame(html))

    def own_connection(self):
        """The ticker's connection, a new one when it has none or the one it had broke."""
        if self.connection is not None and (self.connection.closed or self.connection.invalidated):
            self.release()
        if self.connection is None:
            self.connection = db.engine.connect()
        return self.connection

    def release(self, broken: bool = False) -> None:
        """Give the ticker's connection back to the pool (`broken`: discard it)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            if broken:
                connection.invalidate()
            connection.close()

    def broadcast(self) -> None:
        """Render each watched topic once and offer the same bytes to all of its sockets (most take
        them at once: one system call each, no switch to their greenlets). The change may be the
        event's look, saved in another process: each broadcast reads it afresh (one read by primary
        key a tick)."""
        with self.lock:
            watched = {topic: list(clients) for topic, clients in self.clients.items() if clients}
        if watched:
            with self.app.app_context():
                forget_look()
        for topic, clients in watched.items():
            changes, now = self.changes, self.clock()
            frame = self.render(topic, own_connection=True)
            self.remember(topic, changes, now, frame)
            self.renders += 1
            for client in clients:
                client.offer(frame)

    def _start(self) -> None:
        with self.lock:
            if self.started:
                return
            self.started = True
        threading.Thread(target=self._listen, name="live-listener", daemon=True).start()
        threading.Thread(target=self._tick, name="live-ticker", daemon=True).start()
        threading.Thread(target=self._watch, name="live-watcher", daemon=True).start()

    def _watch(self) -> None:
        """Once this process starts stopping, wake every socket's greenlet so it closes with
        "restarting" (one check a second for the process, not one per socket)."""
        alive = self.app.config.get("KNOCKOUT_ALIVE")
        if alive is None:
            return
        while alive():
            time.sleep(1)
        with self.lock:
            clients = [client for topic in self.clients.values() for client in topic]
        for client in clients:
            client.wake()

    def _listen(self) -> None:
        while True:
            try:
                pubsub = state(self.app).redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self.changes += 1
                self.dirty.set()  # (re)connected: whatever happened meanwhile, show it
                for _message in pubsub.listen():
                    self.changes += 1
                    self.dirty.set()
            except redis.RedisError:
                log.warning("live updates: Redis unreachable, retrying")
                time.sleep(1)

    def _tick(self) -> None:
        while True:
            self.dirty.wait()
            self.tick_once()

    def tick_once(self) -> None:
        """Broadcast what changed: at once after a quiet spell, else on the next tick of a fixed
        cadence (one tick after the previous broadcast was due, however long it took): at most one
        frame per tick."""
        wait = self.next_tick - self.clock()
        if wait > 0:
            self.sleep(wait)
        # Late (a busy process, a slow broadcast): the cadence holds, the next one at least half a
        # tick on. A tick missed entirely (a quiet spell) is not made up: the cadence starts again
        # from now.
        now = self.clock()
        due = self.next_tick if now - self.next_tick < self.tick else now
        self.next_tick = max(due + self.tick, now + self.tick / 2)
        self.dirty.clear()  # changes heard from here on make the next tick's frame
        try:
            self.broadcast()
        except Exception:  # a failed render must not end live updates for everyone
            log.exception("live updates: broadcast failed")


def renderer(bp: Blueprint, topic: str):
    """Make the decorated function `topic`'s live renderer on every app `bp` is registered with."""
    def register(render: Renderer) -> Renderer:
        bp.record_once(lambda state: register_renderer(state.app, topic, render))
        return render
    return register


def register_renderer(app: Flask, topic: str, render: Renderer) -> None:
    """Serve /ws?topic=`topic` with what `render()` returns (the hub calls it in a request
    context)."""
    state(app).hub.add_renderer(topic, render)


def init_app(app: Flask) -> None:
    """This process's hub; the blueprints register its topics as they are registered."""
    state(app).hub = Hub(app, {}, float(app.config["LIVE_TICK_SECONDS"]))
