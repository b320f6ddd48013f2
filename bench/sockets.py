"""Websocket clients on /ws (gevent), run as processes by bench/load.py (several: one process
receiving thousands of frames would be what limits). Each prints `READY {...}` once every client is
connected (and has its first frame), then waits for one line on stdin:

    python -m bench.sockets idle   WS_URL CLIENTS
        then `PROBES [t, ...]` (monotonic times the coordinator published "changed" at): each
        socket's next frame after each
    python -m bench.sockets stream WS_URL CLIENTS --database URL --seconds S
        then `GO`: frames for S seconds while submissions flow

and prints `RESULT {...}` with the raw latencies (seconds), for the coordinator to merge.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import bisect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402
from gevent.fileobject import FileObject  # noqa: E402
from gevent.pool import Pool  # noqa: E402

from bench.stack import raise_open_files  # noqa: E402

# the projector's "N of M answered", N as the page's language writes it ("1,234": digits and the
# grouping marks, which are dropped)
COUNT = re.compile(rb"<strong>(\d(?:[\d,.]|\xc2\xa0|\xe2\x80\xaf)*)</strong> of")
# the server's time.time() when it sent the frame out
RENDERED_AT = re.compile(rb'data-rendered-at="([0-9.]+)"')
CONNECTING_AT_ONCE = 200


class Client:
    """One socket: keeps the arrival time (and the submission count shown) of every frame."""

    def __init__(self, url: str):
        self.url, self.frames, self.ws, self.closed = url, [], None, False

    def connect(self) -> bool:
        try:
            self.ws = websocket.create_connection(self.url, timeout=60, skip_utf8_validation=True)
            # the state sent on connect
            self.frames.append((time.monotonic(), self.ws.recv_data()[1]))
            self.ws.settimeout(None)
            return True
        except Exception:
            return False

    def listen(self) -> None:
        try:
            while True:
                _, data = self.ws.recv_data()
                self.frames.append((time.monotonic(), data))
        except Exception:
            self.closed = True


def connect_all(url: str, count: int) -> tuple[list[Client], float]:
    started = time.monotonic()
    clients = [Client(url) for _ in range(count)]
    connected = Pool(CONNECTING_AT_ONCE).map(Client.connect, clients)
    clients = [c for c, ok in zip(clients, connected) if ok]
    for client in clients:
        gevent.spawn(client.listen)
    return clients, time.monotonic() - started


def idle(clients: list[Client], probes: list[float]) -> dict:
    """Per socket and probe (a "changed" published at that monotonic time): the wait for its next
    frame."""
    latencies, delivered = [], 0
    ends = probes[1:] + [float("inf")]
    for client in clients:
        for sent, end in zip(probes, ends):
            after = [t for t, _ in client.frames if sent <= t < end]
            if after:
                delivered += 1
                latencies.append(after[0] - sent)
    return {"latencies": latencies, "delivered": delivered, "expected": len(probes) * len(clients)}


def stream(clients: list[Client], engine, seconds: float) -> dict:
    """Record frames for `seconds` while the database's submission count is polled; per new count
    shown: receipt time minus the last moment the database was seen without it (an upper bound on
    commit → screen). Per frame: receipt minus the server's stamp (publish → receipt; one clock on
    loopback)."""
    polls = []  # (time the read began, count it saw)

    def poll_once():
        with engine.connect() as connection:
            began = time.monotonic()
            polls.append((began,
                          connection.exec_driver_sql("SELECT count(*) FROM submission").scalar()))
    for client in clients:
        client.frames.clear()
    started = time.monotonic()
    pool = gevent.get_hub().threadpool  # a real thread: the driver blocks
    while time.monotonic() - started < seconds:
        pool.spawn(poll_once).get()
        gevent.sleep(0.02)
    counts = [seen for _, seen in polls]  # never decreases
    latencies, published, frames = [], [], 0
    # receipts are on the monotonic clock, stamps on the wall clock
    wall = time.time() - time.monotonic()
    for client in clients:
        shown = None
        for received, data in client.frames:
            match = COUNT.search(data)
            if not match:
                continue
            frames += 1
            stamp = RENDERED_AT.search(data)
            if stamp:
                published.append(received + wall - float(stamp.group(1)))
            count = int(re.sub(rb"\D", b"", match.group(1)))
            last_without = bisect.bisect_left(counts, count) - 1
            if shown is not None and count > shown and last_without >= 0:
                latencies.append(received - polls[last_without][0])
            shown = count
    return {"latencies": latencies, "published": published, "frames": frames,
            "dropped": sum(c.closed for c in clients)}


def process_cpu() -> float:
    """CPU seconds this process has used (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["idle", "stream"])
    parser.add_argument("url")
    parser.add_argument("clients", type=int)
    parser.add_argument("--database")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    signal.alarm(int(args.seconds) + 600)  # bounded, whatever happens to the server
    raise_open_files()
    if args.mode == "stream":
        # imported and connected now: an import blocks every socket of this process
        import sqlalchemy
        engine = sqlalchemy.create_engine(args.database)
        engine.connect().close()
    clients, took = connect_all(args.url, args.clients)
    print("READY " + json.dumps({"connected": len(clients), "connect_s": took}), flush=True)
    gevent.sleep(1)  # let the connect-time frames settle
    cpu, wall = process_cpu(), time.monotonic()
    # cooperative: frames keep arriving meanwhile
    command = FileObject(sys.stdin.fileno(), "r").readline()
    if args.mode == "idle":
        result = idle(clients, json.loads(command.removeprefix("PROBES ")))
    else:
        result = stream(clients, engine, args.seconds)
    # Near 1.0 (one core busy): this process may be what limits the figures.
    result.update(connected=len(clients), cpu_s=process_cpu() - cpu, wall_s=time.monotonic() - wall)
    print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
