"""bench/sockets.py's client processes as bench/load.py drives them: spread, told when to start,
results merged."""
import json
import subprocess
import sys

from quiz.config import ROOT

# websocket clients per bench.sockets process, and how many at most
CLIENTS_PER_PROCESS, MAX_PROCESSES = 1250, 4


class SocketProcesses:
    """`count` websocket clients spread over bench.sockets processes (CLIENTS_PER_PROCESS each, at
    most MAX_PROCESSES): one Python process receiving thousands of frames at once would be what
    limits."""

    def __init__(self, mode: str, ws_url: str, count: int, *options: str):
        n = max(1, min(MAX_PROCESSES, -(-count // CLIENTS_PER_PROCESS)))
        shares = [count // n + (i < count % n) for i in range(n)]
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.sockets", mode, ws_url, str(share), *options],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for share in shares]

    def ready(self) -> dict:
        """Once every process has all its clients connected: how many, and the slowest connect
        time."""
        ready = [read_line(p, "READY") for p in self.processes]
        return {"connected": sum(r["connected"] for r in ready),
                "connect_s": max(r["connect_s"] for r in ready)}

    def tell(self, line: str) -> None:
        for process in self.processes:
            process.stdin.write(line + "\n")
            process.stdin.flush()

    def results(self, line: str | None = None) -> list[dict]:
        """Each process's RESULT (after telling them `line`, if given)."""
        if line is not None:
            self.tell(line)
        results = [read_line(p, "RESULT") for p in self.processes]
        for process in self.processes:
            process.wait(timeout=60)
        return results


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def read_line(process: subprocess.Popen, tag: str) -> dict:
    """The JSON after `tag` on the next line of that tag from a bench.sockets process."""
    for line in process.stdout:
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
    raise RuntimeError(f"bench.sockets ended without {tag}")
