"""A 10,000-player event on the real stack (issue #17): gunicorn (gunicorn.conf.py, gevent ×2),
worker.py, a real Redis, one database; the phones, projectors and consoles are bench/crowd.py
processes on loopback.

10,000 players (a sample joins through POST /api/register, the rest are inserted as registrations
would have made them); 3 rounds, each: every phone waits on the page it shows as the build's phones
do (round 1's before it opens; later, its "submitted" page, which fetches its result after the
close within the status's spread and then waits no more), the console starts the round (10,000
link SMS through the outbox), phones open their link over 30 s, press Start a few seconds later
and answer over 60 s — a fifth of them in the last second — and wait again until the console ends
the round; meanwhile 1,000 projector and 1,000
console websockets take every frame. CPU per process comes from /proc.

    python -m bench --only event10k [--quick]
"""
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import func, select, text

from quiz.config import ROOT
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Submission
from quiz.rehearsal_pages import csrf

from .load import SETTINGS, OnStack, stack_env, progress, wrk
from .stack import insert_players, store_forms
from .usage import Cpu


@dataclass
class EventSizes:
    players: int = 10_000
    registered: int = 500  # of them through POST /api/register
    sockets: int = 2_000  # half the projector's /ws, half the console's
    rounds: int = 3
    wait_s: float = 20  # every phone waiting on its page before each round
    open_s: float = 30  # phones open their link over this long after the start
    answer_s: float = 60  # and have answered by then
    burst: float = 0.2  # the share answering in the last second
    phone_processes: int = 3
    socket_processes: int = 2
    probes: int = 20  # two nodes: submissions timed from node B to a socket on node A

    @classmethod
    def quick(cls):
        return cls(players=500, registered=50, sockets=200, wait_s=6, open_s=10, answer_s=20,
                   probes=8)


def bank(rounds: int) -> str:
    """Rounds of 3 questions; everyone who answers stays in (every round is 10,000 strong)."""
    question = ("{{text: 'Question {q} of round {n}', choices: [alpha, beta, gamma, delta], "
                "answer: beta}}")
    return "challenges:\n" + "".join(
        f"  - {{number: {n}, title: Round {n}, keep_fraction: 1.0, questions: ["
        + ", ".join(question.format(q=q, n=n) for q in (1, 2, 3)) + "]}\n"
        for n in range(1, rounds + 1))


class Crowd:
    """bench/crowd.py processes, told what to do over their stdin; their answers are read by a
    thread each, so a phase can stop waiting for them."""

    def __init__(self, port: int, count: int):
        self.processes = [
            subprocess.Popen([sys.executable, "-m", "bench.crowd", "127.0.0.1", str(port)],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(count)]
        self.queues = [queue.Queue() for _ in self.processes]
        for process, answers in zip(self.processes, self.queues):
            threading.Thread(target=self.read, args=(process, answers), daemon=True).start()

    @staticmethod
    def read(process: subprocess.Popen, answers: queue.Queue) -> None:
        for line in process.stdout:
            if line.startswith("ANSWER "):
                answers.put(json.loads(line[len("ANSWER "):]))
        answers.put(None)  # the process ended

    def tell(self, commands: list[dict] | dict) -> None:
        if isinstance(commands, dict):
            commands = [commands] * len(self.processes)
        for process, command in zip(self.processes, commands):
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()

    def ask(self, commands: list[dict] | dict) -> list[dict]:
        """Each process's answer (`commands`: one each, or the same for all)."""
        self.tell(commands)
        kind = (commands if isinstance(commands, dict) else commands[0])["cmd"]
        return self.answers(kind)

    def answers(self, kind: str, timeout: float | None = None) -> list[dict | None]:
        """Each process's answer to its last `kind` command (None: not within `timeout` s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        found = []
        for answers in self.queues:
            while True:
                try:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    got = answers.get(timeout=left)
                except queue.Empty:
                    found.append(None)
                    break
                if got is None:
                    raise RuntimeError("a bench.crowd process ended")
                if got["for"] == kind:
                    found.append(got)
                    break
        return found

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()


def shares(items: list, n: int) -> list[list]:
    return [items[i::n] for i in range(n)]


def merge(parts: list[dict]) -> dict:
    """The phones' measurements from every process: latencies and statuses per kind of request."""
    latencies, statuses = {}, {}
    for part in parts:
        for kind, values in part["latencies"].items():
            latencies.setdefault(kind, []).extend(values)
        for kind, counts in part["statuses"].items():
            for status, n in counts.items():
                statuses.setdefault(kind, {}).setdefault(status, 0)
                statuses[kind][status] += n
    return {"latencies": latencies, "statuses": statuses}


# What each kind of request should answer; anything else is an error.
EXPECTED = {"register": {"201"}, "wait": {"200", "304"}, "round_poll": {"200", "304"},
            "wait_fetch": {"200"}, "round_poll_fetch": {"200"}, "open": {"200"},
            "start": {"303", "200"}, "questions": {"200"}, "submit": {"303", "200"},
            "burst": {"303", "200"}, "submitted": {"200"}}


def errors(statuses: dict) -> dict:
    return {f"{kind} {status}": n for kind, counts in statuses.items() for status, n in
            counts.items() if status not in EXPECTED.get(kind, set())}


class Event(OnStack):
    """The stack on a fresh database and Redis, an app in this process to prepare data and check
    the database, and the crowd."""

    def __init__(self, directory: Path, database_url: str, sizes: EventSizes):
        self.directory, self.sizes, self.database_url = directory, sizes, database_url
        self.bank = bank(sizes.rounds)
        super().__init__(directory, database_url, **stack_env())
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {SETTINGS['ADMIN_API_TOKEN']}"
        self.phones = self.sockets = None

    def __exit__(self, *exc):
        for crowd in (self.phones, self.sockets):
            if crowd is not None:
                crowd.stop()
        super().__exit__(*exc)

    def run(self) -> dict:
        sizes, figures = self.sizes, {"load_before": os.getloadavg()[0]}
        # the same run's ceiling: the machine is shared, so the table's ratios are what compares
        figures["ping"] = progress("event: /ping", wrk, self.stack.url, "get", "/ping", 5, 64)
        self.phones = Crowd(self.stack.port, sizes.phone_processes)
        self.sockets = Crowd(self.stack.port, sizes.socket_processes)
        figures["players"] = sizes.players
        figures["register"] = progress("event: registration sample", self.register)
        figures["register_count"] = figures["register"]["statuses"].get("register", {}).get(
            "201", 0)
        mode = progress("event: the other players", self.prepare)
        figures["mode"] = mode
        figures["connected"] = progress("event: sockets", self.connect_sockets)
        cpu = Cpu(self.stack, self.redis_process, self.database_url,
                  [p.pid for p in self.phones.processes + self.sockets.processes])
        figures["rounds"] = [progress(f"event: round {n}", self.play_round, n, cpu)
                             for n in range(1, sizes.rounds + 1)]
        figures["load_after"] = os.getloadavg()[0]
        figures["crowd_cpu_s"] = sum(a["cpu_s"] for a in self.phones.ask({"cmd": "quit"})
                                     + self.sockets.ask({"cmd": "quit"}))
        return figures

    def register(self) -> dict:
        numbers = shares(list(range(self.sizes.registered)), self.sizes.phone_processes)
        return merge(self.phones.ask([{"cmd": "register", "numbers": share, "concurrency": 8}
                                      for share in numbers]))

    def prepare(self) -> str:
        """The rest of the players in bulk; each phone process gets its share of the links; which
        polling the build's waiting phones do."""
        sizes = self.sizes
        insert_players(sizes.players - sizes.registered, "Player {i}", "player{i}@example.com",
                       "+1999{i:08d}")
        db.session.commit()
        progress("stored forms", store_forms, "player%")
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        links = {}
        for participant, number, code in db.session.execute(
                select(FormLink.participant_id, Challenge.number, FormLink.code).join(Challenge)):
            links.setdefault(participant, [None] * sizes.rounds)[number - 1] = code
        phones = list(links.values())
        random.Random(1).shuffle(phones)
        # Each web process's first renders of a phone's pages compile their templates: not part of
        # what 10,000 waiting phones cost.
        for phone in phones[:40]:
            for headers in ({}, {"HX-Request": "true"}):
                requests.get(f"{self.stack.url}/f/{phone[-1]}", headers=headers, timeout=30)
        status = requests.get(self.stack.url + "/api/status", timeout=10)
        mode = "status" if status.status_code == 200 else "fragment"
        poll = status.json()["poll_seconds"] if mode == "status" else None
        self.phones.ask([{"cmd": "phones", "phones": share, "mode": mode, "poll_seconds": poll}
                         for share in shares(phones, sizes.phone_processes)])
        return mode

    def console_cookie(self) -> str:
        """A console login's cookies, as the organizers' browsers hold them."""
        browser = requests.Session()
        page = browser.get(self.stack.url + "/admin/login", timeout=10).text
        done = browser.post(self.stack.url + "/admin/login", timeout=10, data={
            "csrf_token": csrf(page), "username": "admin",
            "password": SETTINGS["ADMIN_PASSWORD"]})
        assert done.ok, done.text[:500]
        return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)

    def connect_sockets(self) -> int:
        """Half the sockets on the projector's topic, half on the console's."""
        base = self.stack.url.replace("http://", "ws://") + "/ws?topic="
        cookie, n = self.console_cookie(), self.sizes.socket_processes
        topics = ["display" if i % 2 == 0 else "admin" for i in range(n)]
        counts = [len(share) for share in shares(list(range(self.sizes.sockets)), n)]
        answers = self.sockets.ask([{"cmd": "sockets", "url": base + topic, "count": count,
                                     "cookie": cookie if topic == "admin" else None}
                                    for topic, count in zip(topics, counts)])
        return sum(a["connected"] for a in answers)

    def play_round(self, number: int, cpu: Cpu) -> dict:
        sizes = self.sizes
        plan = {"open_s": sizes.open_s, "answer_s": sizes.answer_s, "burst": sizes.burst}
        self.phones.ask([{"cmd": "wait", "round": number, "plan": plan, "seed": number * 100 + i}
                         for i in range(sizes.phone_processes)])
        self.sockets.ask({"cmd": "frames"})
        frames_from = time.monotonic()
        waiting = cpu.snap()
        time.sleep(sizes.wait_s)
        opening = cpu.snap()
        start_ms, start_retries = self.console(f"/api/admin/start-challenge/{number}")
        t0 = time.monotonic()
        self.phones.tell({"cmd": "go", "t0": t0})
        sms = {}
        watcher = threading.Thread(target=self.watch_sms, args=(number, t0, sms), daemon=True)
        watcher.start()
        # every phone's answers in (or, on a server that can't keep up, a bound)
        all_in = self.phones.answers("go", timeout=sizes.answer_s + 60)
        if all(all_in):
            time.sleep(2)  # answered phones keep polling until the round ends
            end_ms, end_retries = self.console(f"/api/admin/end-challenge/{number}")
            closes = self.phones.ask({"cmd": "close"})
        else:
            # Not every phone done by the bound: the server is behind. The phones stop first (those
            # not done are counted), so that End round isn't queued behind the rest of the herd.
            closes = self.phones.ask({"cmd": "close"})
            end_ms, end_retries = self.console(f"/api/admin/end-challenge/{number}")
        closed = cpu.snap()
        frames = self.sockets.ask({"cmd": "frames"})
        frames_s = time.monotonic() - frames_from
        watcher.join(timeout=30)
        accepted = {code for c in closes for code in c["accepted"]}
        stored = set(db.session.scalars(
            select(FormLink.code).join(Submission, (Submission.participant_id
                                                    == FormLink.participant_id)
                                       & (Submission.challenge_id == FormLink.challenge_id))
            .join(Challenge, Challenge.id == FormLink.challenge_id)
            .where(Challenge.number == number)))
        rows, distinct = db.session.execute(
            select(func.count(), func.count(func.distinct(Submission.participant_id)))
            .join(Challenge).where(Challenge.number == number)).one()
        db.session.rollback()
        measured = merge(closes)
        return {**measured, "errors": errors(measured["statuses"]),
                "start_ms": start_ms, "end_ms": end_ms, "retries": start_retries + end_retries,
                "sms_s": sms.get("all_sent"),
                "drain_s": max(c["last_answer"] for c in closes) - (t0 + sizes.answer_s - 1),
                "all_in_s": max((a["all_in"] for a in all_in if a), default=t0) - t0,
                "unfinished": sum(c["unfinished"] for c in closes),
                "accepted": len(accepted), "stored": len(stored),
                "lost": len(accepted - stored), "duplicates": rows - distinct,
                "cpu_waiting": cpu.cores(waiting, opening), "cpu_round": cpu.cores(opening, closed),
                "frames": sum(f["frames"] for f in frames),
                "frame_latencies": [t for f in frames for t in f["latencies"]],
                "dropped": sum(f["dropped"] for f in frames), "frames_s": frames_s}

    def console(self, path: str) -> tuple[float, int]:
        """An organizer's button (the JSON API): the last attempt's time in ms, and how often it
        had to be pressed again (a 503: busy). One press is waited for as long as it takes (up to
        10 minutes): pressing again while the first is still running would only be refused with a
        409 (the round already open or closed) once the first is done."""
        for retries in range(5):
            started = time.monotonic()
            response = self.api.post(self.stack.url + path, timeout=600)
            elapsed = (time.monotonic() - started) * 1000
            if response.status_code == 200:
                return elapsed, retries
            if response.status_code != 503:
                raise AssertionError(f"{path}: {response.status_code} {response.text[:300]}")
            time.sleep(1)
        return float("inf"), 5

    def watch_sms(self, number: int, t0: float, out: dict) -> None:
        """Start → every round link recorded as sent by the worker (outbox backend)."""
        deadline = t0 + 600
        while time.monotonic() < deadline:
            try:
                progress_now = self.api.get(f"{self.stack.url}/api/admin/sms-progress/{number}",
                                            timeout=30).json()
            except requests.RequestException:
                continue
            if progress_now.get("status") == "completed":
                out["all_sent"] = time.monotonic() - t0
                return
            time.sleep(0.25)


def measure(database_url_for, sizes: EventSizes) -> dict:
    """The event on a fresh database (`database_url_for(directory)` gives its URL)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        with Event(Path(tmp), database_url_for(Path(tmp)), sizes) as event:
            figures = event.run()
    figures["took_s"] = time.monotonic() - started
    return figures

