"""/ws: the one websocket endpoint; htmx's ws extension swaps what it receives by element id."""
import socket
import threading
from urllib.parse import urlsplit

import gevent
import gevent.socket

from flask import Blueprint, abort, current_app, request
from flask_login import current_user
from simple_websocket import ConnectionClosed

from ..extensions import db, sock, state
from ..live import Frame

bp = Blueprint("ws", __name__)

SEND_DEADLINE = 5.0  # seconds; a socket that can't take a frame in this time is dropped
RESTART_CODE = 1012  # "service restart": htmx's ws extension reconnects on it
# seconds; only a safety net: a frame, the peer leaving, or a restart wakes a socket's greenlet
# at once
WAIT = 30.0
SLOT = "knockout.socket_slot"  # in a /ws request's environ while it holds one of socket_slots()


def origin_allowed() -> bool:
    """Same host as the page or PUBLIC_BASE_URL; browsers always send Origin on websockets."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (scripts, tests); nothing cross-site to guard
    host = urlsplit(origin).netloc
    return host in (request.host, urlsplit(current_app.config["PUBLIC_BASE_URL"]).netloc)


@bp.before_app_request
def guard_websocket():
    """Refuse foreign origins before the upgrade, turn per-message compression off, and take one of
    the process's socket slots (503 when none is free)."""
    if request.path != "/ws":
        return None
    if not origin_allowed():
        abort(403, "This page may not connect here.")
    # simple-websocket accepts permessage-deflate whenever a client offers it; CPU and memory per
    # socket matter more here than bytes on the wire.
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    topic = request.args.get("topic", "display")
    if topic not in state().hub.renderers:
        abort(404, "Unknown live topic.")
    if topic in ("admin", "help") and not current_user.is_authenticated:
        abort(403, "Log in to the console first.")
    if not socket_slots().acquire(blocking=False):
        abort(503, "This server holds as many live connections as it takes; "
                   "the page connects again by itself in a moment.")
    # Given back when this request ends, however it ends. Marked on the request itself, not on `g`:
    # the hub's renders run in request contexts of their own that share this one's `g`.
    request.environ[SLOT] = True
    return None


@bp.teardown_app_request
def release_socket_slot(_error=None):
    """The socket's slot back, once its request is over (the socket closed, or never opened)."""
    if request.environ.pop(SLOT, False):
        socket_slots().release()


@bp.record_once
def _make_socket_slots(setup) -> None:
    limit = setup.app.config["WS_MAX_SOCKETS_PER_PROCESS"]
    setup.app.extensions["knockout.sockets"] = threading.BoundedSemaphore(limit)


def socket_slots() -> threading.BoundedSemaphore:
    """This process's websockets: WS_MAX_SOCKETS_PER_PROCESS in all, whoever opens them (a venue's
    phones share one address). Only ever taken without waiting."""
    return current_app.extensions["knockout.sockets"]


@sock.route("/ws", bp=bp)
def stream(ws):
    """Stream the topic's fragments until the socket closes, the process stops, or a send stalls."""
    # The console's login check read the staff account through the request's session: its pooled
    # connection goes back now, not when the socket closes (each console tab would hold one, and a
    # few dozen would leave nothing for the requests).
    db.session.close()
    wire = Wire(ws)
    hub = state().hub
    client = hub.connect(request.args.get("topic", "display"), wire.write_now)
    wire.on_close = client.wake
    alive = current_app.config.get("KNOCKOUT_ALIVE", lambda: True)
    try:
        while ws.connected:
            if not alive():
                ws.close(RESTART_CODE, "restarting")
                return
            frame = client.take(WAIT)
            if frame is not None and not send(wire, frame):
                return
    finally:
        hub.disconnect(client)


class Wire:
    """The socket under simple-websocket's Server, every write whole and one at a time: the Server's
    own (pong and close replies), the frames the hub writes at once and those this socket's greenlet
    writes never interleave."""

    def __init__(self, ws):
        self.ws, self.sock, self.lock = ws, ws.sock, threading.Lock()
        # else (a dev server) only the socket's own greenlet writes
        self.cooperative = isinstance(ws.sock, gevent.socket.socket)
        # the end of a frame the hub's write left unwritten: it goes out before anything else
        self.rest = b""
        # the newest frame's `seq` written: an older one waiting in the mailbox is never sent
        # after it
        self.written = 0
        self.on_close = lambda: None
        ws.sock = self  # the Server's reader writes through send() below from now on

    def recv(self, size: int) -> bytes:
        """The Server's reader reading on: what the client sent so far is dropped first (/ws only
        sends, and nothing would ever read it)."""
        try:
            while self.ws.receive(timeout=0) is not None:
                pass
        except ConnectionClosed:
            pass
        return self.sock.recv(size)

    def send(self, data: bytes, flags: int = 0) -> int:
        """The Server's own writes (it calls socket.send and ignores a short count)."""
        with self.lock:
            self._flush()
            self.sock.sendall(data)
        return len(data)

    def write_now(self, frame: Frame) -> bool:
        """The hub's fan-out: write without waiting; False when this socket's greenlet has to (busy,
        closed, or the frame did not all fit: its rest is kept)."""
        if (not self.cooperative or self.rest or not self.ws.connected
                or not self.lock.acquire(blocking=False)):
            return False
        try:
            sent = self.sock.send(frame.wire, 0, 0.0)  # gevent's socket: timeout 0, no waiting
            self.written, self.rest = frame.seq, frame.wire[sent:]
            return not self.rest
        except OSError:  # full (EAGAIN), or broken: the greenlet finds out which
            return False
        finally:
            self.lock.release()

    def write(self, frame: Frame) -> bool:
        """A frame from this socket's greenlet, whole (or just its rest); False once the connection
        is closing."""
        with self.lock:
            if not self.ws.connected:
                return False
            self._flush()
            if frame.seq > self.written:
                self.sock.sendall(frame.wire)
                self.written = frame.seq
            return True

    def _flush(self) -> None:
        if self.rest:
            self.sock.sendall(self.rest)
            self.rest = b""

    def close(self) -> None:
        """The Server's reader is done (the peer closed or vanished): tell this socket's greenlet at
        once."""
        self.sock.close()
        self.on_close()

    def cut(self) -> None:
        """End the connection without a close frame (one may have stopped half-written); browsers
        see 1006 and htmx's ws extension reconnects."""
        self.ws.connected = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __getattr__(self, name):  # shutdown, fileno: the socket's own
        return getattr(self.sock, name)


def send(wire: Wire, frame: Frame) -> bool:
    """Write with a deadline; False when the socket is gone or stalled (then it is cut)."""
    try:
        with gevent.Timeout(SEND_DEADLINE, False):  # on expiry the block just ends
            return wire.write(frame)
    except Exception:
        return False
    wire.cut()
    return False
