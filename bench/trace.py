"""`BENCH_TRACE_DIR=/dir`: a timeline of each burst of the read-load pair, for finding where its
time goes. Every SLICE seconds, per web process: the submits in flight and the reads held (the
gauges of quiz/web/priority.py, read from the stack's prometheus files, no request made), and the
CPU ticks of the web processes and of the load generators (this process's wrk children). Written
as JSON next to wrk's own timeline of answers (`timeline`: answers per 0.05 s from the first
request), on the same clock (CLOCK_MONOTONIC)."""
import json
import os
import threading
import time
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

from .usage import ticks

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


class Trace:
    """Samples in a thread while `with` lasts; `write(name, result)` saves them with wrk's."""

    def __init__(self, metrics: Path, web_pids: list[int]):
        self.metrics, self.web = metrics, web_pids
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
                      "web": [dict(gauges(self.metrics, pid), cpu=ticks(pid)) for pid in self.web],
                      "wrk": {pid: ticks(pid) for pid in wrk_children()}}
            self.samples.append(sample)

    def write(self, directory: Path, name: str, result: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.json").write_text(json.dumps(
            {"result": result, "samples": self.samples}))
