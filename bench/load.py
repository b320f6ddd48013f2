"""HTTP load on the real stack: gunicorn (gevent ×2, gunicorn.conf.py), worker.py, a real Redis, one
database.

wrk makes the HTTP load (C, one thread: the server gets the other core and more); bench/sockets.py
holds the websockets (gevent). Everything targets 127.0.0.1, bounded in count and time.

Submissions go through the phone's own form, POST /f/<code>/submit (the JSON API has no submit
call): its stored form (quiz/stored_forms.py), as nearly every phone sends it, with the form's
`form_token` and no cookie. `BENCH_SUBMIT_FROM=live` posts the live page's form instead, with a
CSRF token and its session cookie: minted beforehand with the server's SECRET_KEY, exactly as
Flask-WTF would have (a pool of them, shared round-robin: the server checks a cookie signature and a
token either way). Either way the load is the submissions alone.

The `start` step presses Start (POST /f/<code>/start) for players who have not yet: all at once
over 256 connections (10% repeats), as after "Start round". It posts what the Start page's form
carries (the link's `form_token`) as htmx sends it (HX-Request: the answer is the questions page,
200); `BENCH_START_FROM=plain` posts it as a page without JavaScript does (the 303, with no GET
after it here), `BENCH_START_FROM=session` a session's CSRF token and cookie, as the Start page did
before it carried the form token.
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import redis
from sqlalchemy import func, select, text, update

from quiz import create_app
from quiz.clock import utcnow
from quiz.config import ROOT, Config
from quiz.deal import choice_value
from quiz.embedded import server_args, wait_for
from quiz.extensions import QUEUE_NAMES, db, get_queue
from quiz.models import Challenge, FormLink, Participant, Question, Submission
from quiz.stack import Stack
from quiz.stored_forms import form_token

from .clients import SocketProcesses, percentile
from .stack import insert_players, rss_kib, store_forms
from .trace import Trace
from .usage import Cpu

LUA = str(ROOT / "bench" / "load.lua")
BANK = """
challenges:
  - number: 1
    title: Load
    questions: [{text: "Which service stores objects?", choices: [EC2, S3, SQS, RDS], answer: S3}]
"""
READERS = 32  # connections GETting /ping during the read-load burst
SESSIONS = 1000  # distinct phones' session cookies (with their CSRF tokens)
PROBES, PROBE_GAP = 5, 3.0  # idle sockets: broadcasts timed, seconds between them
# What the stack runs with under the bench: the secrets the sessions are minted and the API called
# with, no rate limits (thousands of phones share one address), a short submit grace. Reconcile
# would start texting every prepared player their link mid-measurement: the SMS path has its own
# figure (outbox throughput), so it is kept out of the HTTP load.
SETTINGS = {"ADMIN_API_TOKEN": "live-token", "ADMIN_PASSWORD": "live-password",
            "SECRET_KEY": "live-secret", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
            "SUBMIT_GRACE_SECONDS": "1", "RECONCILE_SECONDS": "3600",
            # 5,000 idle sockets on two web processes: past the default cap (1,000 a process), up
            # to gunicorn's WORKER_CONNECTIONS
            "WS_MAX_SOCKETS_PER_PROCESS": "4000"}


@dataclass
class Sizes:
    """How long and how big each step is (--quick: a smoke run in about a minute per database)."""

    ping_s: int = 5
    register_s: int = 10
    submit_s: int = 10
    burst: int = 5000
    # the read-load pair: this many unique submits (+10% repeats) at once, alone and while
    # READERS connections keep GETting /ping
    read_burst: int = 2000
    # pairs of them, alternated: one pair's ratio swings with which burst waited longer for a core
    # on two shared cores, so the goal is judged on the median pair (each pair shown)
    read_pairs: int = 3
    sustained_s: int = 60
    sustained_rate: int = 1000
    stream_clients: int = 2000
    idle_clients: int = 5000
    figures: dict = field(default_factory=dict)

    @classmethod
    def quick(cls):
        return cls(ping_s=3, register_s=5, sustained_s=10, read_pairs=1)


def wrk(url: str, mode: str, source: str, seconds: float, connections: int,
        rate: float = 0, *header: str, until_done: bool = False) -> dict:
    """Run wrk with bench/load.lua; its JSON line, plus the rate it answered at. `header`: a name
    and a value, sent with every "get". `until_done` (file mode): stopped as soon as every line of
    `source` was answered, not after `seconds`."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", LUA,
               url, "--", mode, source, str(rate), "1", *header]
    done = Path(source + ".done")
    done.unlink(missing_ok=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    if until_done:
        deadline = time.monotonic() + seconds + 60
        while process.poll() is None and not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # wrk stops and prints its result
    output = process.communicate(timeout=seconds + 60)[0]
    line = next((l for l in output.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError("wrk printed no result:\n" + output)
    result = json.loads(line[len("BENCH "):])
    # DELETE /ping: sent after a connection's lines ran out (load.lua)
    filler = result["statuses"].pop("405", 0)
    result["answered"] -= filler
    span = result["last"] - result["first"]
    result["rate"] = result["answered"] / span if span > 0 else 0.0
    result["errors"] = result["socket_errors"] + sum(n for s, n in result["statuses"].items()
                                                     if int(s) >= 400)
    return result


class OnStack:
    """A bench on one database: its own Redis, the stack (SETTINGS), and an app in this process
    for preparing data; `with` starts the stack with `bank` loaded and stops it all."""

    bank = BANK

    def __init__(self, directory: Path, database_url: str, **env):
        self.redis_process = subprocess.Popen(server_args(directory, directory / "redis.sock"),
                                              stdout=subprocess.DEVNULL)
        self.redis_url = f"unix://{directory / 'redis.sock'}"
        wait_for(self.redis_url)
        self.database_url = database_url
        self.stack = Stack(directory, self.redis_url, database_url, **{**SETTINGS, **env})
        config = type("BenchConfig", (Config,), {
            "INSTANCE_PATH": str(directory / "instance"), "REDIS_URL": self.redis_url,
            "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SETTINGS["SECRET_KEY"],
            "ADMIN_API_TOKEN": SETTINGS["ADMIN_API_TOKEN"], "PUBLIC_BASE_URL": self.stack.url,
            "STORAGE_URL": f"file://{directory / 'instance' / 'storage'}",  # the stack's
            "LOG_LEVEL": "WARNING"})
        self.app = create_app(config)

    def __enter__(self):
        self.context = self.app.app_context()
        self.context.push()
        try:
            self.stack.start()
            from quiz.questions import apply_bank, parse_bank
            apply_bank(parse_bank(self.bank))
            db.session.commit()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        db.session.remove()
        db.engine.dispose()
        self.context.pop()
        self.stack.stop()
        if os.environ.get("BENCH_KEEP_LOG"):  # the stack's log, kept past the temporary directory
            Path(os.environ["BENCH_KEEP_LOG"]).write_bytes(self.stack.logs.read_bytes())
        self.redis_process.terminate()
        self.redis_process.wait()


def read_pairs(pairs: list[tuple[dict, dict]]) -> dict:
    """The read-load pairs' figures: the pair with the median ratio (read drain / plain drain) as
    `plain_burst` and `read_burst`, every pair's ratio in order under `read_ratios`."""
    ratios = [read["drain_s"] / plain["drain_s"] if plain["drain_s"] > 0 else float("inf")
              for plain, read in pairs]
    median = sorted(range(len(pairs)), key=ratios.__getitem__)[len(pairs) // 2]
    # every burst's errors, lost and duplicates count, not only the median pair's
    errors = {key: sum(burst[key] for pair in pairs for burst in pair)
              for key in ("errors", "lost", "duplicates")}
    return {"plain_burst": pairs[median][0], "read_burst": pairs[median][1],
            "read_ratios": ratios, "read_pair_faults": errors}


def stack_env() -> dict[str, str]:
    """What the bench passes on to the stack from its own environment: BENCH_PROFILE_DIR (each web
    process's cProfile stats land there when it stops) and BENCH_STACK_ENV, settings to try a
    run with ("READ_YIELD_MAX_SECONDS=0 WEB_CONCURRENCY=1": space-separated NAME=value)."""
    directory = os.environ.get("BENCH_PROFILE_DIR")
    env = {"KNOCKOUT_PROFILE_DIR": directory} if directory else {}
    for setting in os.environ.get("BENCH_STACK_ENV", "").split():
        name, _, value = setting.partition("=")
        env[name] = value
    return env


class Run(OnStack):
    """The HTTP figures on one database."""

    def __init__(self, directory: Path, database_url: str, sizes: Sizes):
        self.directory, self.sizes, self.figures = directory, sizes, {}
        profile = stack_env()
        # BENCH_TRACE_DIR: the read-load pair's timelines (bench/trace.py) read the web processes'
        # gauges from a metrics directory the bench knows
        if os.environ.get("BENCH_TRACE_DIR"):
            (directory / "metrics").mkdir()
            profile["PROMETHEUS_MULTIPROC_DIR"] = str(directory / "metrics")
        super().__init__(directory, database_url, **profile)

    def measure(self, steps: set[str] | None = None) -> dict:
        """Every HTTP figure (or the `steps` named), in an order that keeps each step's load its
        own."""
        sizes, url, run = self.sizes, self.stack.url, (lambda step: not steps or step in steps)
        self.figures["ping"] = progress("no-op ceiling", self.with_cpu, wrk, url, "get", "/ping",
                                        sizes.ping_s, 64)
        if run("register"):
            self.figures["register"] = progress("registration", self.with_cpu, wrk, url,
                                                "register", "-", sizes.register_s, 32)
        batches = progress("preparing players", self.prepare_players)
        self.open_round()
        if run("idle"):
            self.figures["idle"] = progress("idle sockets", self.idle_sockets)
        # Each process's first submits fill its connection pool and caches: warm up on players of
        # their own.
        progress("submit warm-up", wrk, url, "file", batches["warmup"], 1, 64)
        if run("submit"):
            self.figures["submit"] = progress("submit rate", wrk, url, "file", batches["submit"],
                                              sizes.submit_s, 64)
        if run("burst"):
            self.settle()
            self.figures["burst"] = progress("burst", self.burst, batches["burst"])
        if run("start"):
            self.settle()
            self.figures["start"] = progress("Start presses", self.with_cpu, self.start_presses,
                                             batches["start"])
        if run("read_burst"):
            pairs = []
            for k in range(sizes.read_pairs):
                self.settle()
                plain = progress(f"burst (no read load) {k + 1}", self.traced, f"plain_burst_{k}",
                                 self.with_cpu, self.burst, batches[f"plain_burst_{k}"], 256, 0, 60)
                self.settle()
                read = progress(f"burst under read load {k + 1}", self.traced, f"read_burst_{k}",
                                self.read_burst, batches[f"read_burst_{k}"])
                pairs.append((plain, read))
            self.figures.update(read_pairs(pairs))
        if run("sustained"):
            self.figures["sustained"], self.figures["stream"] = progress(
                "sustained + sockets", self.sustained, batches["sustained"])
        # how busy the machine was, everyone's processes included
        self.figures["loadavg"] = os.getloadavg()[0]
        return self.figures

    def traced(self, name: str, step, *args) -> dict:
        """`step`'s figures; with BENCH_TRACE_DIR, its timeline written there too."""
        if not os.environ.get("BENCH_TRACE_DIR"):
            return step(*args)
        with Trace(self.directory / "metrics", self.stack.web_workers,
                   self.stack.processes[1].pid, urlsplit(self.stack.url).port) as trace:
            result = step(*args)
        trace.write(Path(os.environ["BENCH_TRACE_DIR"]), name, result)
        return result

    def settle(self, most_seconds: float = 60) -> None:
        """Wait until the worker has done what the last step left it (its queues, its jobs due
        later, the ones running): each burst is measured on a stack at rest, as after a round's
        rush, not with the last step's background work (the answered forms, moved a few seconds
        after their submits; the registrations' forms and emails) taking the cores meanwhile."""
        queues = [get_queue(name) for name in QUEUE_NAMES]
        deadline = time.monotonic() + most_seconds
        # first, what the web processes still owe the queues: their effects reach Redis a moment
        # after the last answer (a job not there yet was found by no one, then ran 3 s later,
        # inside the next burst: the read-load pair's read burst, which starts a second later)
        time.sleep(0.5)
        while time.monotonic() < deadline and any(
                q.count or q.scheduled_job_registry.count or q.started_job_registry.count
                for q in queues):
            time.sleep(0.2)

    def measure_sockets(self) -> dict:
        """The websocket figures alone (idle broadcast, frames while submissions flow):
        `--only sockets`."""
        batches = progress("preparing players", self.prepare_players)
        self.open_round()
        self.figures["idle"] = progress("idle sockets", self.idle_sockets)
        self.figures["sustained"], self.figures["stream"] = progress(
            "sustained + sockets", self.sustained, batches["sustained"])
        self.figures["loadavg"] = os.getloadavg()[0]
        return self.figures

    def with_cpu(self, step, *args) -> dict:
        """`step`'s figures, with the CPU the web processes spent on it (user + system, /proc) per
        request answered: what a request costs, whatever else the machine runs meanwhile; and the
        whole machine's per request, by part (`parts_ms`: the worker, Redis, PostgreSQL, and the
        rest: the load generator, this process, anyone else's)."""
        parts = Cpu(self.stack, self.redis_process, self.database_url, [])
        before, parts_before = web_cpu_s(self.stack.web_workers), parts.snap()
        result = step(*args)
        spent = web_cpu_s(self.stack.web_workers) - before
        cores = Cpu.cores(parts_before, parts.snap())
        answered = result.get("sent") or result.get("answered") or 0
        result["cpu_ms_per_request"] = spent * 1000 / answered if answered else 0.0
        ms = {name: value * cores["wall_s"] * 1000 / answered if answered else 0.0
              for name, value in cores.items() if name != "wall_s"}
        web = sum(value for name, value in ms.items() if name.startswith("web process"))
        known = web + sum(ms.get(name, 0.0) for name in ("RQ worker", "Redis", "PostgreSQL"))
        result["parts_ms"] = {"machine": ms["machine"], "web": web,
                              "worker": ms["RQ worker"], "Redis": ms["Redis"],
                              "PostgreSQL": ms.get("PostgreSQL"),
                              "rest": max(ms["machine"] - known, 0.0)}
        return result

    def prepare_players(self) -> dict:
        """Players in the database with their clock started (as after pressing Start); request files
        for wrk."""
        sizes = self.sizes
        counts = {"warmup": 2000, "submit": max(3000 * sizes.submit_s, 5000),
                  "burst": sizes.burst * 9 // 10,
                  **{f"{kind}_burst_{k}": sizes.read_burst for k in range(sizes.read_pairs)
                     for kind in ("plain", "read")},
                  "sustained": int(sizes.sustained_rate * (sizes.sustained_s + 5) * 1.1)}
        total = sum(counts.values())
        insert_players(total, "Load {i}", "load{i}@example.com", "+1999{i:08d}")
        # players who haven't pressed Start yet (the `start` step); made here, before the
        # statistics and the round's opening, as the others
        insert_players(sizes.read_burst, "Press {i}", "press{i}@example.com", "+1998{i:08d}")
        db.session.execute(update(FormLink).values(started_at=utcnow()).where(
            FormLink.participant_id.in_(
                select(Participant.id).where(Participant.email.like("load%")))))
        db.session.commit()
        store_forms("press%")  # what their Start press through htmx answers with
        # Statistics, as autovacuum keeps them at an event where people joined over an hour, not in
        # one second.
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        codes = db.session.scalars(select(FormLink.code).join(Participant).where(
            Participant.email.like("load%")).order_by(FormLink.id)).all()
        question = db.session.scalar(select(Question.id))
        # S3 as each phone's page names it: its value is this link's own (quiz/deal.py), the same
        # function the page renders with, so no page needs fetching before the measurement
        secret = self.app.config["SECRET_KEY"]
        cookies = self.sessions() if os.environ.get("BENCH_SUBMIT_FROM") == "live" else None

        def token(i: int, code: str) -> str:
            return f"csrf_token={cookies[i % SESSIONS][0]}" if cookies else \
                f"form_token={form_token(code)}"

        def cookie(i: int) -> str:
            return f"session={cookies[i % SESSIONS][1]}" if cookies else ""
        files, at = {}, 0
        for name, count in counts.items():
            batch = codes[at:at + count]
            at += count
            if "burst" in name:  # 10% repeats: a double tap, a retried POST
                repeats = sizes.burst - len(batch) if name == "burst" else len(batch) // 10
                batch = batch + random.Random(1).sample(batch, repeats)
                random.Random(2).shuffle(batch)
            path = self.directory / f"{name}.txt"
            path.write_text("".join(
                f"POST\t/f/{code}/submit\t{token(i, code)}"
                f"&q{question}={choice_value(secret, code, question, 1)}\t{cookie(i)}\n"
                for i, code in enumerate(batch)))
            files[name] = str(path)
        files["start"] = self.start_file(cookies if cookies is not None else (
            self.sessions() if os.environ.get("BENCH_START_FROM") == "session" else None))
        return files

    def start_file(self, cookies: list[tuple[str, str]] | None) -> str:
        """wrk's lines for the `start` step: each unstarted player's Start press (10% repeated),
        with the Start page's form token (or, given `cookies`, a session's CSRF token)."""
        codes = db.session.scalars(select(FormLink.code).join(Participant).where(
            Participant.email.like("press%")).order_by(FormLink.id)).all()
        batch = codes + random.Random(3).sample(codes, len(codes) // 10)
        random.Random(4).shuffle(batch)
        path = self.directory / "start.txt"
        path.write_text("".join(
            f"POST\t/f/{code}/start\tcsrf_token={cookies[i % SESSIONS][0]}\t"
            f"session={cookies[i % SESSIONS][1]}\n" if cookies else
            f"POST\t/f/{code}/start\tform_token={form_token(code)}\t\n"
            for i, code in enumerate(batch)))
        return str(path)

    def start_presses(self, source: str) -> dict:
        """Every prepared Start press at once over 256 connections; each player's clock checked in
        the database (started once, whatever the repeats)."""
        codes = [line.split("\t")[1].split("/")[2]
                 for line in Path(source).read_text().splitlines()]
        htmx = os.environ.get("BENCH_START_FROM", "htmx") == "htmx"
        result = wrk(self.stack.url, "file", source, 55, 256, 0,
                     *(("HX-Request", "true") if htmx else ()), until_done=True)
        db.session.rollback()
        started = db.session.scalar(select(func.count()).select_from(FormLink).where(
            FormLink.code.in_(set(codes)), FormLink.started_at.is_not(None)))
        result.update(drain_s=result["last"] - result["first"], sent=len(codes),
                      unique=len(set(codes)), started=started)
        result["rate"] = len(codes) / result["drain_s"] if result["drain_s"] > 0 else 0.0
        result["errors"] = len(codes) - result["statuses"].get("200" if htmx else "303", 0)
        return result

    def sessions(self) -> list[tuple[str, str]]:
        """(CSRF token, session cookie) pairs, as a phone holds them after loading its round
        page."""
        from flask import g, session
        from flask_wtf.csrf import generate_csrf
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        pairs = []
        for _ in range(SESSIONS):
            with self.app.test_request_context("/"):
                # Flask-WTF caches one token per app context: a new phone each time
                g.pop("csrf_token", None)
                token = generate_csrf()
                pairs.append((token, serializer.dumps(dict(session))))
        return pairs

    def open_round(self) -> None:
        """Open round 1 as the console would, minus sending 100,000 SMS (the outbox figure covers
        that)."""
        challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
        challenge.open(utcnow())
        db.session.commit()
        redis.Redis.from_url(self.redis_url).publish("knockout:live", b"changed")

    def burst(self, source: str, connections: int = 1000, rate: int | None = None,
              seconds: int = 15) -> dict:
        """A burst of submissions (10% repeated): by default 5,000 sent within one second over
        1,000 connections (`rate` 0: all at once), then checked against the database."""
        codes = [line.split("\t")[1].split("/")[2]
                 for line in Path(source).read_text().splitlines()]
        result = wrk(self.stack.url, "file", source, seconds, connections,
                     rate=self.sizes.burst if rate is None else rate, until_done=True)
        unique = set(codes)
        stored = db.session.execute(
            select(func.count(), func.count(func.distinct(Submission.participant_id)))
            .join(FormLink, (FormLink.participant_id == Submission.participant_id)
                  & (FormLink.challenge_id == Submission.challenge_id))
            .where(FormLink.code.in_(unique))).one()
        # "your answers are in": each must be in the database
        accepted = result["statuses"].get("303", 0)
        result.update(drain_s=result["last"] - result["first"], stored=stored[1],
                      unique=len(unique), lost=max(accepted - stored[1], 0),
                      duplicates=stored[0] - stored[1], sent=len(codes))
        result["rate"] = len(codes) / result["drain_s"] if result["drain_s"] > 0 else 0.0
        # An error: any of the burst without one of the two right answers
        # (timeouts and 5xx included).
        result["errors"] = (len(codes) - accepted
                            - result["statuses"].get("200", 0))  # 200: "already in"
        return result

    def read_burst(self, source: str) -> dict:
        """The same burst as the plain one while READERS connections keep GETting /ping (from
        before its first submit to after its last answer)."""
        seconds = 60
        command = ["wrk", "-t1", f"-c{READERS}", f"-d{seconds}s", "--timeout", "10s", "-s", LUA,
                   self.stack.url, "--", "get", "/ping", "0", "1"]
        readers = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            return self.burst(source, 256, 0, seconds=seconds - 5)
        finally:
            readers.terminate()
            readers.wait()

    def sockets(self, mode: str, clients: int, *options: str) -> SocketProcesses:
        ws_url = self.stack.url.replace("http://", "ws://") + "/ws?topic=display"
        return SocketProcesses(mode, ws_url, clients, *options)

    def idle_sockets(self) -> dict:
        """5,000 sockets that only listen: memory per socket, and how fast a broadcast reaches all
        of them."""
        before = sum(rss_kib(pid) for pid in self.stack.web_workers)
        sockets = self.sockets("idle", self.sizes.idle_clients)
        ready = sockets.ready()
        time.sleep(2)
        during = sum(rss_kib(pid) for pid in self.stack.web_workers)
        publisher, probes = redis.Redis.from_url(self.redis_url), []
        # "changed", as any submission would say: time each socket's next frame
        for _ in range(PROBES):
            probes.append(time.monotonic())  # one clock for every process on this machine
            publisher.publish("knockout:live", b"changed")
            time.sleep(PROBE_GAP)
        results = sockets.results("PROBES " + json.dumps(probes))
        latencies = [t for r in results for t in r["latencies"]]
        return dict(ready, p50_ms=percentile(latencies, 50) * 1000,
                    p99_ms=percentile(latencies, 99) * 1000,
                    delivered=sum(r["delivered"] for r in results),
                    expected=sum(r["expected"] for r in results),
                    client_cpu_s_per_probe=max(r["cpu_s"] for r in results) / PROBES,
                    processes=len(results),
                    kib_per_socket=(during - before) / max(ready["connected"], 1))

    def sustained(self, source: str) -> tuple[dict, dict]:
        """Submissions at a steady rate while 2,000 sockets watch the projector's stage."""
        seconds = self.sizes.sustained_s
        sockets = self.sockets("stream", self.sizes.stream_clients, "--database",
                               self.stack.env["DATABASE_URL"], "--seconds", str(seconds))
        ready = sockets.ready()
        sockets.tell("GO")
        load = wrk(self.stack.url, "file", source, seconds + 1, 100, rate=self.sizes.sustained_rate)
        results = sockets.results()
        latencies = [t for r in results for t in r["latencies"]]
        published = [t for r in results for t in r["published"]]
        frames = sum(r["frames"] for r in results)
        return load, {"p50_ms": percentile(latencies, 50) * 1000,
                      "p99_ms": percentile(latencies, 99) * 1000,
                      "published_p50_ms": percentile(published, 50) * 1000,
                      "published_p99_ms": percentile(published, 99) * 1000,
                      "frames_per_client_per_s": frames / max(ready["connected"], 1) / seconds,
                      "dropped": sum(r["dropped"] for r in results), "samples": len(latencies),
                      "client_cpu": max(r["cpu_s"] / r["wall_s"] for r in results),
                      "processes": len(results), "connected": ready["connected"]}


def web_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) these processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def progress(label: str, step, *args):
    """Run one step, saying on stderr what runs and how long it took (a full run takes minutes)."""
    print(f"bench: {label}…", end=" ", file=sys.stderr, flush=True)
    started = time.monotonic()
    result = step(*args)
    print(f"{time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def measure(database_url_for, sizes: Sizes, sockets_only: bool = False,
            steps: set[str] | None = None) -> dict:
    """All HTTP figures on a fresh database (`database_url_for(directory)` gives its URL)."""
    with tempfile.TemporaryDirectory() as tmp:
        with Run(Path(tmp), database_url_for(Path(tmp)), sizes) as run:
            return run.measure_sockets() if sockets_only else run.measure(steps)


def fresh_postgres(url: str):
    """A function giving `url` with its public schema emptied."""
    def wipe(_directory: Path) -> str:
        import sqlalchemy
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        return url
    return wipe
