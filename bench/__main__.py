"""Measure the hot paths on the real parts (SQLite in WAL, a real Redis, a real RQ worker) and print
a table.

Figures are as measured on this machine, misses included; ratios in one run beat absolute times.
"""
import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quiz import create_app  # noqa: E402
from quiz.clock import utcnow  # noqa: E402
from quiz.config import TestConfig  # noqa: E402
from quiz.embedded import server_args, wait_for  # noqa: E402
from quiz.extensions import db  # noqa: E402


from . import event10k, event_table, load, starts, table, two_nodes, waiting  # noqa: E402
from .stack import insert_players, raise_open_files  # noqa: E402

BANK = """
challenges:
  - {number: 1, title: One, questions: [{text: Q, choices: [a, b], answer: a}]}
  - {number: 2, title: Two, questions: [{text: Q, choices: [a, b], answer: a}]}
  - {number: 3, title: Three, questions: [{text: Q, choices: [a, b], answer: a}]}
"""


class Bench:
    """One fresh app (database + Redis) per scenario."""

    def __init__(self, workdir: Path, redis_url: str, name: str, database_url_for):
        directory = workdir / name
        directory.mkdir()
        config = type("BenchConfig", (TestConfig,), {
            "INSTANCE_PATH": str(directory), "REDIS_URL": redis_url, "TESTING": False,
            "LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": database_url_for(directory)})
        self.app = create_app(config)
        self.headers = {"Authorization": f"Bearer {config.ADMIN_API_TOKEN}"}

    def __enter__(self):
        self.context = self.app.app_context()
        self.context.push()
        import redis
        redis.Redis.from_url(self.app.config["REDIS_URL"]).flushall()
        db.create_all()
        from quiz.questions import apply_bank, parse_bank
        apply_bank(parse_bank(BANK))
        db.session.commit()
        self.client = self.app.test_client()
        return self

    def __exit__(self, *exc):
        db.session.remove()
        db.engine.dispose()
        self.context.pop()

    def players(self, count: int) -> None:
        """Bulk-create `count` players with their links (as registrations would have)."""
        insert_players(count, "Player {i}", "p{i}@example.com", "+1415{i:07d}")
        db.session.commit()


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def start_latency(bench: Bench, players: int) -> float:
    bench.players(players)
    started = time.perf_counter()
    response = bench.client.post("/api/admin/start-challenge/1", headers=bench.headers)
    assert response.status_code == 200, response.get_json()
    return (time.perf_counter() - started) * 1000


def outbox_throughput(bench: Bench, players: int) -> float:
    """Start → every link SMS recorded as sent by a real worker (outbox backend)."""
    from quiz.worker import run_worker
    bench.players(players)
    started = time.perf_counter()
    bench.client.post("/api/admin/start-challenge/1", headers=bench.headers)
    run_worker(burst=True)
    elapsed = time.perf_counter() - started
    from quiz.models import Message
    sent = db.session.scalar(db.select(db.func.count()).where(Message.status == "sent"))
    assert sent == players, f"only {sent} of {players} sent"
    return elapsed


def end_latency(bench: Bench, players: int, watch=None) -> float:
    """End of round: ranking + elimination with every player having submitted (`watch`: a context
    manager around the close alone, e.g. bench/end_of_round.py's statement timer)."""
    from quiz.models import Challenge, FormLink, Submission
    bench.players(players)
    bench.client.post("/api/admin/start-challenge/1", headers=bench.headers)
    challenge = db.session.scalar(db.select(Challenge).where(Challenge.number == 1))
    now = utcnow()
    rows = [{"participant_id": pid, "challenge_id": challenge.id, "answers": {}, "score": pid % 7,
             "correct": pid % 7, "response_time": (pid * 7919 % 10007) / 100, "submitted_at": now}
            for pid in db.session.scalars(db.select(FormLink.participant_id)
                                          .where(FormLink.challenge_id == challenge.id))]
    db.session.execute(insert(Submission), rows)
    db.session.commit()
    with watch or contextlib.nullcontext():
        started = time.perf_counter()
        response = bench.client.post("/api/admin/end-challenge/1", headers=bench.headers)
        elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.get_json()
    return elapsed


def report_latency(bench: Bench, players: int, samples: int = 200) -> tuple[float, float]:
    """p50 of GET /r/<code> after round 1 closed with `players` submissions: full page, and the 304
    revalidation."""
    import random
    from quiz.models import Participant
    end_latency(bench, players)
    codes = random.Random(1).sample(db.session.scalars(db.select(Participant.report_code)).all(),
                                    samples)
    full, cached = [], []
    for code in codes:
        started = time.perf_counter()
        response = bench.client.get(f"/r/{code}")
        full.append(time.perf_counter() - started)
        started = time.perf_counter()
        again = bench.client.get(f"/r/{code}", headers={"If-None-Match": response.headers["ETag"]})
        cached.append(time.perf_counter() - started)
        assert response.status_code == 200 and again.status_code == 304
    return statistics.median(full) * 1000, statistics.median(cached) * 1000


def register_latency(bench: Bench, rounds: int, count: int = 300) -> float:
    """p50 of POST /api/register, with `rounds` rounds loaded (a link per round each time)."""
    extra = "".join(f"\n  - {{number: {n}, title: R{n}, "
                    f"questions: [{{text: Q, choices: [a, b], answer: a}}]}}"
                    for n in range(4, rounds + 1))
    from quiz.questions import apply_bank, parse_bank
    apply_bank(parse_bank(BANK + extra))
    db.session.commit()
    samples = []
    for i in range(count):
        body = {"name": f"R {i}", "email": f"r{i}@example.com",
                "phone": f"+1628{2_000_000 + i:07d}", "consent": True}
        started = time.perf_counter()
        response = bench.client.post("/api/register", json=body)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 201, response.get_json()
    return statistics.median(samples) * 1000


def domain_figures(database_url_for, quick: bool) -> dict:
    """The in-process figures (a real Redis and worker, no HTTP server) on one kind of database."""
    big = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis_process = subprocess.Popen(server_args(workdir, workdir / "redis.sock"),
                                         stdout=subprocess.DEVNULL)
        redis_url = f"unix://{workdir / 'redis.sock'}"
        wait_for(redis_url)
        try:
            def run(key, label, measure, *params):
                with Bench(workdir, redis_url, key, database_url_for) as bench:
                    return load.progress(label, measure, bench, *params)
            return {"start5k": run("start5k", "start-challenge 5,000", start_latency, 5_000),
                    "start50k": run("start50k", f"start-challenge {big:,}", start_latency, big),
                    "outbox5k": run("outbox5k", "outbox 5,000", outbox_throughput, 5_000),
                    "end5k": run("end5k", "end-challenge 5,000", end_latency, 5_000),
                    "end50k": run("end50k", f"end-challenge {big:,}", end_latency, big),
                    "report5k": run("report5k", "report page, 5,000 ranked", report_latency, 5_000),
                    "report50k": run("report50k", f"report page, {big:,} ranked", report_latency,
                                     big),
                    "register3": run("register3", "register, 3 rounds", register_latency, 3),
                    "register10": run("register10", "register, 10 rounds", register_latency, 10)}
        finally:
            redis_process.terminate()
            redis_process.wait()


def sqlite_file(directory: Path) -> str:
    return f"sqlite:///{directory / 'bench.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and shorter runs (a smoke run)")
    parser.add_argument("--only",
                        choices=["domain", "http", "sockets", "waiting", "starts", "event10k"],
                        help="one half of the table, or the websocket, waiting-phone, process "
                             "start or 10,000-player event figures alone")
    parser.add_argument("--steps", type=lambda text: set(text.split(",")),
                        help="HTTP steps to run, comma-separated (the no-op ceiling always runs): "
                             "register, idle, submit, burst, start, read_burst, sustained")
    parser.add_argument("--database", choices=["SQLite", "PostgreSQL"],
                        help="one database only (default: both, PostgreSQL when there is one)")
    args = parser.parse_args()
    raise_open_files()
    databases = {"SQLite": sqlite_file}
    postgres = os.environ.get("KNOCKOUT_TEST_POSTGRES_URL", "")
    if postgres:
        databases["PostgreSQL"] = load.fresh_postgres(postgres)
    else:
        print("bench: no PostgreSQL (run through bin/with-postgres, as `make bench` does): "
              "SQLite only", file=sys.stderr)
    if args.database:
        databases = {args.database: databases[args.database]}
    sizes = load.Sizes.quick() if args.quick else load.Sizes()
    event_sizes = event10k.EventSizes.quick() if args.quick else event10k.EventSizes()
    measured, events = {}, {}
    # Stopped (e.g. by `timeout`): unwind, so the stack goes too. Set here: RQ's worker takes
    # SIGTERM over.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: stopped"))
    for name, database_url_for in databases.items():
        print(f"bench: {name}", file=sys.stderr)
        figures = {}
        if args.only in (None, "domain"):
            figures.update(domain_figures(database_url_for, args.quick))
        if args.only in (None, "starts"):
            figures.update(load.progress("process starts", starts.measure, database_url_for))
        # (--steps names HTTP steps: the waiting phones' figures are not among them)
        if args.only == "waiting" or (args.only in (None, "http") and not args.steps):
            figures.update(waiting.measure(database_url_for, args.quick))
        if args.only in (None, "http", "sockets"):
            figures.update(load.measure(database_url_for, sizes,
                                        sockets_only=args.only == "sockets", steps=args.steps))
        measured[name] = figures
        if args.only in (None, "event10k"):
            events[name] = event10k.measure(database_url_for, event_sizes)
            events[name]["a_to_b"] = load.progress("two nodes: B → A", two_nodes.measure,
                                                   database_url_for, event_sizes.probes)
    if args.only != "event10k":
        print(table.render(table.rows(sizes, args.quick) + waiting.rows(), measured))
    if events:
        print(f"\n{event_sizes.players:,} players, {event_sizes.rounds} rounds "
              "(bench/event10k.py):")
        print(table.render(event_table.rows(event_sizes), events))


if __name__ == "__main__":
    main()
