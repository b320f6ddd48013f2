"""Live updates over /ws, against the real stack: gunicorn (gevent) processes sharing one Redis."""
import threading
import time

import pytest
import requests
import websocket

from .conftest import LiveStack
from .players import Api, answer_over_http, load_demo_bank

pytestmark = [pytest.mark.live, pytest.mark.nodb]
API = {"Authorization": "Bearer live-token"}


def connect(stack, topic="display", origin=None) -> websocket.WebSocket:
    return websocket.create_connection(stack.url.replace("http", "ws") + f"/ws?topic={topic}", timeout=10,
                                       origin=origin)


def wait_for(ws, text: str, seconds: float = 5) -> str:
    """Frames until one contains `text` (a change may arrive a tick after another)."""
    deadline = time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, f"no frame with {text!r}"
        frame = ws.recv()
        if text in frame:
            return frame


def register(stack, n: int) -> dict:
    response = requests.post(f"{stack.url}/api/register", json={
        "name": f"Player {n}", "email": f"p{n}@example.com", "phone": f"+1415555{n:04d}"})
    assert response.status_code == 201, response.text
    return response.json()


def test_display_gets_state_on_connect_then_updates(live_stack):
    load_demo_bank(live_stack)
    ws = connect(live_stack)
    first = ws.recv()
    assert 'id="stage"' in first and 'id="player-count">0<' in first
    register(live_stack, 1)
    wait_for(ws, 'id="player-count">1<')
    requests.post(f"{live_stack.url}/api/admin/start-challenge/1", headers=API)
    assert "Cloud basics" in wait_for(ws, "phase-during")
    ws.close()


def test_foreign_origin_is_refused(live_stack):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(live_stack, origin="https://evil.example")
    assert refused.value.status_code == 403
    ws = connect(live_stack, origin=live_stack.url)  # the page's own origin is fine
    assert 'id="stage"' in ws.recv()
    ws.close()


def test_admin_topic_needs_a_login(live_stack):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(live_stack, topic="admin")
    assert refused.value.status_code == 403


def test_compression_is_not_negotiated(live_stack):
    ws = websocket.create_connection(live_stack.url.replace("http", "ws") + "/ws", timeout=10,
                                     header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
    assert "sec-websocket-extensions" not in {k.lower() for k in ws.getheaders()}
    ws.close()


def test_burst_is_coalesced_and_a_stalled_client_does_not_delay_others(live_stack):
    load_demo_bank(live_stack)
    fast = [connect(live_stack) for _ in range(3)]
    for ws in fast:
        ws.recv()  # the state on connect
    stalled = connect(live_stack)  # never reads again
    stalled.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    received = {i: [] for i in range(len(fast))}
    stop = threading.Event()

    def reader(i, ws):
        ws.settimeout(0.5)
        while not stop.is_set():
            try:
                received[i].append((time.monotonic(), ws.recv()))
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                return
    threads = [threading.Thread(target=reader, args=(i, ws)) for i, ws in enumerate(fast)]
    for t in threads:
        t.start()
    started = time.monotonic()
    for n in range(60):  # a burst of registrations: 60 changes in about a second or two
        register(live_stack, 100 + n)
    burst = time.monotonic() - started
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    tick = 0.5
    for i, frames in received.items():
        assert frames, f"client {i} got nothing"
        # at most one frame per tick (plus one for the edge of the window)
        assert len(frames) <= (burst + 1.5) / tick + 2, (len(frames), burst)
        assert 'id="player-count">60<' in frames[-1][1]  # and the last frame is the final state
    for ws in fast + [stalled]:
        ws.close()


def test_a_submission_on_one_process_updates_a_display_on_another(tmp_path, redis_url):
    """Two gunicorn instances (different ports, one Redis, one database)."""
    import redis as redis_lib
    redis_lib.Redis.from_url(redis_url).flushall()
    first = LiveStack(tmp_path, redis_url, workers=1)
    first.start()
    second = LiveStack(tmp_path, redis_url, workers=1)
    second.env["DATABASE_URL"] = first.env["DATABASE_URL"]
    second.env["PUBLIC_BASE_URL"] = second.url
    second.logs = tmp_path / "second.log"
    try:
        second.start()
        load_demo_bank(first)
        ws = connect(second)
        assert 'id="player-count">0<' in ws.recv()
        register(first, 1)
        wait_for(ws, 'id="player-count">1<')
        api = Api(first.url)
        api.start(1)
        link = api.sms_link("+14155550001", 1)
        answer_over_http(link, 1)  # the submission arrives at the first process…
        wait_for(ws, "<strong>1</strong> of 1 answered")  # …and the display on the second shows it
        ws.close()
    finally:
        second.stop()
        first.stop()


def test_graceful_restart_closes_sockets_with_a_code_the_client_reconnects_on(live_stack):
    import signal
    import struct
    ws = connect(live_stack)
    ws.recv()
    live_stack.processes[0].send_signal(signal.SIGTERM)  # gunicorn's graceful stop
    deadline = time.monotonic() + 10
    while True:
        assert time.monotonic() < deadline, "no close frame"
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
    ws.shutdown()
    assert struct.unpack("!H", data[:2])[0] == 1012  # htmx-ext-ws reconnects on 1006, 1011, 1012, 1013


class StalledSocket:
    """A phone that stopped reading: every send blocks (cooperatively, as under gevent)."""

    connected = True

    def __init__(self):
        self.closed_with = None

    def send(self, _data):
        import gevent
        gevent.sleep(60)

    def close(self, code=1000, reason=""):
        self.closed_with = code


def test_a_send_that_stalls_past_its_deadline_drops_that_socket(monkeypatch):
    from quiz.web import ws as ws_module
    monkeypatch.setattr(ws_module, "SEND_DEADLINE", 0.2)
    stalled = StalledSocket()
    started = time.monotonic()
    assert ws_module.send(stalled, b"<div id='stage'></div>") is False
    assert time.monotonic() - started < 1 and stalled.closed_with == 1008


def test_one_client_that_never_reads_does_not_hold_up_the_broadcast(app):
    from quiz.live import Hub
    renders = iter(range(1000))
    hub = Hub(app, {"display": lambda: f"<main id='stage'>{next(renders)}</main>"}, tick=0.01)
    hub.started = True  # no Redis listener needed: broadcast by hand
    stalled = hub.connect("display")  # never takes a frame
    readers = [hub.connect("display") for _ in range(3)]
    for reader in readers:
        reader.take(0)
    for _ in range(5):
        started = time.monotonic()
        hub.broadcast()
        assert time.monotonic() - started < 0.5
        newest = [reader.take(0.1) for reader in readers]
        assert None not in newest and len(set(newest)) == 1
    assert hub.renders == 5  # one render per broadcast, whatever the number of sockets
    assert stalled.take(0) == newest[0]  # of the frames it never took, only the newest waits for it


def test_sockets_connecting_together_share_one_render_until_a_change_is_heard(app):
    from quiz.live import Hub
    renders = iter(range(1000))
    hub = Hub(app, {"display": lambda: f"<main id='stage'>{next(renders)}</main>"}, tick=60)
    hub.started = True
    clients = [hub.connect("display") for _ in range(50)]  # e.g. every projector back after a restart
    assert {client.take(0) for client in clients} == {b"<main id='stage'>0</main>"}
    hub.changes += 1  # what the Redis listener does on "changed"
    assert hub.connect("display").take(0) == b"<main id='stage'>1</main>"
    hub.latest["display"] = (hub.changes, time.monotonic() - 61, b"old")  # older than a tick: rendered again
    assert hub.connect("display").take(0) == b"<main id='stage'>2</main>"
