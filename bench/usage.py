"""CPU per process of the stack, from /proc: what each part of the server and the load generator
itself took over a phase of a run (on 2 shared cores, the load generator's share is part of the
figure)."""
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

TICK = os.sysconf("SC_CLK_TCK")


def ticks(pid: int, children: bool = False) -> int:
    """CPU ticks (user + system) of one process; with `children`, those it reaped and its live
    children's too (PostgreSQL's backends, a worker's forks). 0 once the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    own = int(fields[11]) + int(fields[12])
    if not children:
        return own
    own += int(fields[13]) + int(fields[14])
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    return own + sum(ticks(int(kid), True) for kid in kids)


def machine_busy() -> int:
    """Ticks every core of the machine spent not idle (everyone's processes)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]  # idle, iowait


def postmaster(database_url: str) -> int | None:
    """The PostgreSQL server's main process, for a server on a Unix socket whose data directory is
    `<host>/data` (bin/with-postgres); None otherwise."""
    if not database_url.startswith("postgresql"):
        return None
    host = parse_qs(urlsplit(database_url).query).get("host", [""])[0]
    try:
        return int((Path(host) / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Cpu:
    """Snapshots of CPU ticks per part; `cores(a, b)`: each part's average busy cores between two
    snapshots."""

    def __init__(self, stack, redis_process, database_url: str, generator_pids: list[int]):
        self.parts: dict[str, list[tuple[int, bool]]] = {
            f"web process {i}": [(pid, False)] for i, pid in enumerate(stack.web_workers, 1)}
        self.parts["RQ worker"] = [(stack.processes[1].pid, True)]
        self.parts["Redis"] = [(redis_process.pid, False)]
        server = postmaster(database_url)
        if server is not None:
            self.parts["PostgreSQL"] = [(server, True)]
        self.parts["load generator"] = [(pid, False) for pid in generator_pids] + [
            (os.getpid(), False)]

    def snap(self) -> dict:
        taken = {name: sum(ticks(pid, children) for pid, children in pids)
                 for name, pids in self.parts.items()}
        return {**taken, "machine": machine_busy(), "at": time.monotonic()}

    @staticmethod
    def cores(before: dict, after: dict) -> dict:
        wall = after["at"] - before["at"]
        return {name: (after[name] - before[name]) / TICK / wall
                for name in before if name != "at"} | {"wall_s": wall}
