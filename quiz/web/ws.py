"""/ws: the one websocket endpoint; htmx's ws extension swaps what it receives by element id."""
import socket
import threading
from urllib.parse import urlsplit

import gevent

from flask import Blueprint, abort, current_app, request
from flask_login import current_user

from ..extensions import sock

bp = Blueprint("ws", __name__)

SEND_DEADLINE = 5.0  # seconds; a socket that can't take a frame in this time is dropped
RESTART_CODE = 1012  # "service restart": htmx's ws extension reconnects on it
WAIT = 1.0


def origin_allowed() -> bool:
    """Same host as the page or PUBLIC_BASE_URL; browsers always send Origin on websockets."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (scripts, tests); nothing cross-site to guard
    host = urlsplit(origin).netloc
    return host in (request.host, urlsplit(current_app.config["PUBLIC_BASE_URL"]).netloc)


@bp.before_app_request
def guard_websocket():
    """Refuse foreign origins before the upgrade, and turn per-message compression off."""
    if request.path != "/ws":
        return None
    if not origin_allowed():
        abort(403, "This page may not connect here.")
    # simple-websocket accepts permessage-deflate whenever a client offers it; CPU and memory per
    # socket matter more here than bytes on the wire.
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    topic = request.args.get("topic", "display")
    if topic not in current_app.extensions["knockout_hub"].renderers:
        abort(404, "Unknown live topic.")
    if topic in ("admin", "help") and not current_user.is_authenticated:
        abort(403, "Log in to the console first.")
    return None


@sock.route("/ws", bp=bp)
def live(ws):
    """Stream the topic's fragments until the socket closes, the process stops, or a send stalls."""
    wire = Wire(ws)
    hub = current_app.extensions["knockout_hub"]
    client = hub.connect(request.args.get("topic", "display"))
    alive = current_app.config.get("KNOCKOUT_ALIVE", lambda: True)
    try:
        while ws.connected:
            if not alive():
                ws.close(RESTART_CODE, "restarting")
                return
            frame = client.take(WAIT)
            if frame is not None and not send(wire, frame.wire):
                return
    finally:
        hub.disconnect(client)


class Wire:
    """The socket under simple-websocket's Server, every write whole (sendall) and one at a time: the Server's
    own (pong and close replies) and the frames the hub encoded never interleave."""

    def __init__(self, ws):
        self.ws, self.sock, self.lock = ws, ws.sock, threading.Lock()
        ws.sock = self  # the Server's reader writes through send() below from now on

    def send(self, data: bytes, flags: int = 0) -> int:
        """The Server's own writes (it calls socket.send and ignores a short count)."""
        with self.lock:
            self.sock.sendall(data)
        return len(data)

    def write(self, frame: bytes) -> bool:
        """An encoded frame as is; False once the connection is closing or closed."""
        with self.lock:
            if not self.ws.connected:
                return False
            self.sock.sendall(frame)
            return True

    def cut(self) -> None:
        """End the connection without a close frame (one may have stopped half-written); browsers see 1006 and
        htmx's ws extension reconnects."""
        self.ws.connected = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __getattr__(self, name):  # recv, close, fileno: the socket's own
        return getattr(self.sock, name)


def send(wire: Wire, frame: bytes) -> bool:
    """Write with a deadline; False when the socket is gone or stalled (then it is cut)."""
    try:
        with gevent.Timeout(SEND_DEADLINE, False):  # on expiry the block just ends
            return wire.write(frame)
    except Exception:
        return False
    wire.cut()
    return False
