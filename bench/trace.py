"""`BENCH_TRACE_DIR=/dir`: a timeline of each burst of the read-load pair, for finding where its
time goes. Every SLICE seconds, per web process: the submits in flight and the reads held (the
gauges of quiz/web/priority.py, read from the stack's prometheus files, no request made), and the
CPU ticks of the web processes and of the load generators (this process's wrk children), how long
each web process has waited for a core (`wait`, seconds on the run queue, from the kernel's
schedstat), the sockets each web process holds open (`conns`: its connections, readers' and
the burst's, plus its listening socket), the listening socket's accept queue (`backlog`:
connections no process has taken yet), the RQ worker's CPU ticks, and the whole machine's busy
ticks (`machine`: every process, others' too). Written
as JSON next to wrk's own timeline of answers (`timeline`: answers per 0.05 s from the first
request), on the same clock (CLOCK_MONOTONIC)."""
import json
import os
import threading
import time
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

from .usage import machine_busy, ticks

SLICE = 0.01
GAUGES = {"knockout_submits_in_flight": "in_flight", "knockout_reads_held": "held"}


def gauges(directory: Path, pid: int) -> dict[str, float]:
    """The two gauges of one web process (0 before it wrote them)."""
    found = dict.fromkeys(GAUGES.values(), 0.0)
    path = directory / f"gauge_livesum_{pid}.db"
    if not path.exists():
        return found
    for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
        name = json.loads(key)[0]
        if name in GAUGES:
            found[GAUGES[name]] = value
    return found


def wrk_children() -> list[int]:
    me = os.getpid()
    try:
        kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    except OSError:
        return []
    found = []
    for kid in kids:
        try:
            if Path(f"/proc/{kid}/comm").read_text().strip() == "wrk":
                found.append(int(kid))
        except OSError:
            pass
    return found


def open_sockets(pid: int) -> int:
    """How many sockets the process holds open."""
    count = 0
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                count += os.readlink(fd.path).startswith("socket:")
            except OSError:
                pass
    except OSError:
        pass
    return count


def accept_queue(port: int) -> int:
    """Connections waiting in the accept queue of the socket listening on `port` (loopback)."""
    want = f":{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        if fields[1].endswith(want) and fields[3] == "0A":  # LISTEN
            return int(fields[4].split(":")[1], 16)
    return 0


def run_queue_wait(pid: int) -> float:
    """Seconds the process's threads have waited, runnable, for a core (0 if the kernel keeps no
    schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


class Trace:
    """Samples in a thread while `with` lasts; `write(name, result)` saves them with wrk's."""

    def __init__(self, metrics: Path, web_pids: list[int], worker_pid: int | None = None,
                 port: int | None = None):
        self.metrics, self.web, self.worker, self.port = metrics, web_pids, worker_pid, port
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(SLICE):
            sample = {"t": time.monotonic(),
                      "web": [dict(gauges(self.metrics, pid), cpu=ticks(pid),
                                   wait=run_queue_wait(pid), conns=open_sockets(pid))
                              for pid in self.web],
                      "backlog": accept_queue(self.port) if self.port else 0,
                      "machine": machine_busy(),
                      "worker": ticks(self.worker, True) if self.worker else 0,
                      "wrk": {pid: ticks(pid) for pid in wrk_children()}}
            self.samples.append(sample)

    def write(self, directory: Path, name: str, result: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.json").write_text(json.dumps(
            {"result": result, "samples": self.samples}))


def summary(directory: Path) -> list[str]:
    """A line a traced burst: its drain and, while it drained, the web processes' CPU and wait for
    a core, the load generators' CPU, and how busy the machine was."""
    hz = os.sysconf("SC_CLK_TCK")
    lines = ["burst               drain s  web CPU s  web waited s  worker CPU s  wrk CPU s"
             "  machine busy"]
    for path in sorted(directory.glob("*.json")):
        trace = json.loads(path.read_text())
        result, samples = trace["result"], trace["samples"]
        inside = [s for s in samples if result["first"] <= s["t"] <= result["last"]]
        if len(inside) < 2:
            continue
        first, last = inside[0], inside[-1]
        web = sum(b["cpu"] - a["cpu"] for a, b in zip(first["web"], last["web"])) / hz
        waited = sum(b.get("wait", 0) - a.get("wait", 0)
                     for a, b in zip(first["web"], last["web"]))
        worker = (last.get("worker", 0) - first.get("worker", 0)) / hz
        wrk = sum(last["wrk"].get(pid, 0) - first["wrk"].get(pid, 0) for pid in last["wrk"]) / hz
        drain = last["t"] - first["t"]
        busy = ((last.get("machine", 0) - first.get("machine", 0)) / hz / drain
                if "machine" in last else float("nan"))
        lines.append(f"{path.stem:18} {drain:8.2f} {web:10.2f} {waited:13.2f} {worker:13.2f}"
                     f" {wrk:10.2f}"
                     f" {busy:9.2f} of {os.cpu_count()}")
    return lines


def connections(directory: Path, at: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)) -> list[str]:
    """A line a traced burst: where its connections were at moments from its first request
    (each web process's sockets above what it held just before, and the accept queue), and the
    accept queue's longest."""
    lines = ["burst               " + "  ".join(f"{t:>14.2f}s" for t in at) + "  queue at most"]
    for path in sorted(directory.glob("*.json")):
        trace = json.loads(path.read_text())
        result, samples = trace["result"], trace["samples"]
        before = [s for s in samples if s["t"] < result["first"]]
        if not before or "backlog" not in before[-1]:
            continue
        base = [w["conns"] for w in before[-1]["web"]]
        cells = []
        for t in at:
            near = min(samples, key=lambda s: abs(s["t"] - result["first"] - t))
            split = "/".join(str(w["conns"] - b) for w, b in zip(near["web"], base))
            cells.append(f"{split} q{near['backlog']}".rjust(15))
        most = max(s["backlog"] for s in samples if s["t"] >= result["first"])
        lines.append(f"{path.stem:18} " + "  ".join(cells) + f"  {most:13}")
    return lines


if __name__ == "__main__":
    import sys
    print("\n".join(summary(Path(sys.argv[1]))))
    print()
    print("\n".join(connections(Path(sys.argv[1]))))
