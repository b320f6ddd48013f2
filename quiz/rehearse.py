"""The day-before rehearsal: synthetic players play a whole event against a running instance over
HTTP.

Players register through the JSON API, open their link, press Start and answer (random choices: the
page never holds the key), some never answer (no-shows) and some tap Submit twice; the organizer's
API starts and ends every round until there is a winner. `flask --app quiz rehearse` prints the
table.
"""
import random
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import click
import requests
from flask import current_app

from .rehearsal_pages import (RehearsalError, answer_token, form_fields, posts_with_htmx,
                              question_choices, synthetic_phone)
from .rehearsal_report import Tally, format_table, verdict

REQUEST_TIMEOUT = 10.0  # seconds, every request


@dataclass
class Player:
    user_id: int
    links: dict[str, str]


class Rehearsal:
    """One rehearsal against `url`: registration, then every round until a winner."""

    def __init__(self, url: str, token: str, concurrency: int = 20, no_show: float = 0.1,
                 repeat: float = 0.1, timeout: float = 600.0, seed: int | None = None):
        self.url, self.concurrency, self.no_show, self.repeat = (url.rstrip("/"), concurrency,
                                                                 no_show, repeat)
        self.admin = {"Authorization": f"Bearer {token}"}
        self.deadline = time.monotonic() + timeout
        self.random = random.Random(seed)
        self.tally = Tally()
        self.local = threading.local()

    def session(self) -> requests.Session:
        """One HTTP session per thread for the API (players get their own, like phones)."""
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def timed(self, step: str, call, *args, **kwargs) -> requests.Response | None:
        """Run one request, recording its latency under `step`; None (and an error) if it failed."""
        if time.monotonic() > self.deadline:
            self.tally.error(f"{step}: rehearsal time limit reached")
            return None
        started = time.perf_counter()
        try:
            response = call(*args, timeout=REQUEST_TIMEOUT, allow_redirects=False, **kwargs)
        except requests.RequestException as error:
            self.tally.error(f"{step}: {type(error).__name__}")
            return None
        self.tally.latencies[step].append(time.perf_counter() - started)
        return response

    def preflight(self) -> int:
        """Check the instance is healthy and the token works; the number of players it already
        has."""
        try:
            health = requests.get(f"{self.url}/healthz", timeout=REQUEST_TIMEOUT)
            probe = requests.get(f"{self.url}/api/admin/sms-progress/1", headers=self.admin,
                                 timeout=REQUEST_TIMEOUT)
            display = requests.get(f"{self.url}/display", timeout=REQUEST_TIMEOUT)
        except requests.RequestException as error:
            raise RehearsalError(f"{self.url} does not answer ({type(error).__name__}). "
                                 "Is it running? Check --url.")
        if health.status_code != 200:
            raise RehearsalError(f"{self.url}/healthz says the instance is not healthy: "
                                 f"{health.text.strip()}")
        if probe.status_code in (401, 403):
            raise RehearsalError("The API token was refused. Pass the instance's ADMIN_API_TOKEN "
                                 "with --token.")
        if probe.status_code == 404:
            raise RehearsalError("The instance has no round 1. Load the question bank first.")
        count = re.search(r'id="player-count">(\d+)<', display.text)
        if count is None:
            raise RehearsalError(f"{self.url}/display shows no player count: is this a Knockout "
                                 "instance?")
        return int(count.group(1))

    def register_all(self, count: int, first: int) -> list[Player]:
        """Register `count` synthetic players concurrently; returns those who got in."""
        run = secrets.token_hex(3)
        started = time.perf_counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            players = list(pool.map(lambda n: self.register(n, run), range(first, first + count)))
        self.tally.register_seconds = time.perf_counter() - started
        joined = [p for p in players if p is not None]
        self.tally.registrations = len(joined)
        return joined

    def register(self, n: int, run: str) -> Player | None:
        """POST /api/register for the n-th synthetic player, with the admin token: its answer has
        the round links even with LINKS_IN_REGISTRATION off (synthetic players have no phone)."""
        response = self.timed("register", self.session().post, f"{self.url}/api/register", json={
            "name": f"Rehearsal {n:05d}", "email": f"rehearsal-{run}-{n}@example.com",
            "phone": synthetic_phone(n), "company": "Rehearsal", "consent": True},
            headers=self.admin)
        if response is None:
            return None
        if response.status_code != 201:
            code = (response.json().get("error", "")
                    if response.headers.get("Content-Type", "").startswith("application/json")
                    else "")
            self.tally.error(f"register: HTTP {response.status_code} {code}".rstrip())
            return None
        body = response.json()
        return Player(body["user_id"], body["form_urls"])

    def admin_call(self, step: str, action: str, number: int) -> dict | None:
        """Start or end a round through the admin API: its JSON; None if the round had already
        closed."""
        response = self.timed(step, self.session().post, f"{self.url}/api/admin/{action}/{number}",
                              headers=self.admin)
        if response is not None and response.status_code == 409 and action == "end-challenge":
            # It closed itself first: every player's time was used up (everyone answered, or the
            # round's latest close passed). The leaderboard tells what it did.
            return None
        if response is None or response.status_code != 200:
            detail = response.text.strip() if response is not None else "no answer"
            raise RehearsalError(f"{step} {number} failed: {detail}")
        return response.json()

    def play_round(self, number: int, players: list[Player], last: bool) -> list[Player]:
        """Open round `number`, let `players` play it, end it; the players still in."""
        self.admin_call("start round", "start-challenge", number)
        absent = set(self.random.sample(range(len(players)), int(len(players) * self.no_show)))
        doubles = {i for i in range(len(players)) if self.random.random() < self.repeat}
        self.tally.accepted[number] = set()
        started = time.perf_counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(lambda i: self.play(number, players[i], i not in absent, i in doubles),
                          range(len(players))))
        self.tally.play_seconds += time.perf_counter() - started
        summary = self.admin_call("end round", "end-challenge", number)
        entries = self.check_leaderboard(number)
        summary = summary or summary_from(number, entries, last)
        self.tally.rounds.append({**summary, "players": len(players), "no_shows": len(absent)})
        self.tally.winner_id = summary["winner_id"]
        survivors = {e["user_id"] for e in entries if not e["eliminated"]}
        return [p for p in players if p.user_id in survivors]

    def play(self, number: int, player: Player, answers: bool, twice: bool) -> None:
        """One phone (its own cookies and connection) plays round `number`."""
        with requests.Session() as phone:
            self.play_on(phone, number, player, answers, twice)

    def play_on(self, phone: requests.Session, number: int, player: Player, answers: bool,
                twice: bool) -> None:
        """Open the link, press Start, answer (unless a no-show), maybe tap Submit twice."""
        link = player.links[str(number)]
        page = self.timed("open", phone.get, link)
        if not self.expect("open", page, 200) or not answers:
            return
        try:
            # as the page's form posts: through htmx (the answer is the questions page), or plain
            htmx = posts_with_htmx(page.text, "/start")
            started = self.timed("start", phone.post, f"{link}/start",
                                 data=form_fields(page.text, "/start"),
                                 headers={"HX-Request": "true"} if htmx else None)
            if not self.expect("start", started, 200 if htmx else 303):
                return
            page = started if htmx else self.timed("questions", phone.get, link)
            if not self.expect("questions", page, 200):
                return
            data = answer_token(page.text)
        except RehearsalError:  # a page in another state than expected (e.g. closed): no form on it
            self.tally.error("open: no Start button or questions on the page")
            return
        for name, options in question_choices(page.text).items():
            data[name] = self.random.choice(list(options.values()))
        for attempt in range(2 if twice else 1):
            self.submit(number, player, phone, link, data, first=attempt == 0)

    def submit(self, number: int, player: Player, phone: requests.Session, link: str, data: dict,
               first: bool):
        """POST the answers: the first must be accepted (303), a repeat must be refused as already
        in (200)."""
        response = self.timed("submit", phone.post, f"{link}/submit", data=data)
        if response is None:
            return
        if response.status_code == 303 and not first:
            with self.tally.lock:
                self.tally.duplicates += 1
        elif response.status_code == 303:
            with self.tally.lock:
                self.tally.accepted[number].add(player.user_id)
                self.tally.submits += 1
        elif first or response.status_code != 200:
            self.tally.error(f"submit: HTTP {response.status_code}")

    def expect(self, step: str, response: requests.Response | None, status: int) -> bool:
        """True if `response` has `status`; otherwise counted as an error of `step`."""
        if response is None:
            return False
        if response.status_code != status:
            self.tally.error(f"{step}: HTTP {response.status_code}")
            return False
        return True

    def check_leaderboard(self, number: int) -> list[dict]:
        """Count accepted submissions missing from the round's leaderboard (lost) and repeats; its
        entries."""
        response = requests.get(f"{self.url}/api/leaderboard/{number}", timeout=REQUEST_TIMEOUT * 3)
        if response.status_code != 200:
            raise RehearsalError(f"leaderboard of round {number}: HTTP {response.status_code}")
        entries = response.json()["entries"]
        submitted = [e["user_id"] for e in entries if e["score"] is not None]
        self.tally.lost += len(self.tally.accepted[number] - set(submitted))
        self.tally.duplicates += len(submitted) - len(set(submitted))
        return entries

    def run(self, count: int, first: int = 0) -> Tally:
        """Register `count` players, then play round after round until a winner (or the rounds run
        out)."""
        players = self.register_all(count, first)
        if not players:
            raise RehearsalError("No player could register: "
                                 + (", ".join(self.tally.errors) or "no answer"))
        rounds = sorted(int(n) for n in players[0].links)
        for number in rounds:
            players = self.play_round(number, players, last=number == rounds[-1])
            if self.tally.winner_id is not None or not players:
                break
        return self.tally


def summary_from(number: int, entries: list[dict], last: bool) -> dict:
    """A round's end-of-round summary rebuilt from its leaderboard (when its time limit closed
    it)."""
    submitted = [e for e in entries if e["score"] is not None]
    kept = [e for e in submitted if not e["eliminated"]]
    return {"challenge": number, "submitted": len(submitted), "kept": len(kept),
            "eliminated_unanswered": len(entries) - len(submitted),
            "eliminated_ranked_out": len(submitted) - len(kept),
            "winner_id": kept[0]["user_id"] if last and kept else None}


@click.command("rehearse")
@click.option("--players", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Synthetic players to register.")
@click.option("--url", help="The running instance [default: PUBLIC_BASE_URL].")
@click.option("--token", help="Its ADMIN_API_TOKEN [default: this configuration's].")
@click.option("--concurrency", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Requests in flight at once.")
@click.option("--no-show", type=click.FloatRange(0, 0.9), default=0.1, show_default=True,
              help="Share of players who open their link but never answer, each round.")
@click.option("--repeat", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of players who tap Submit twice.")
@click.option("--timeout", type=click.FloatRange(10, 7200), default=900, show_default=True,
              help="Seconds the whole rehearsal may take.")
@click.option("--slack", type=click.FloatRange(1, 1000), default=1.0, show_default=True,
              help="Multiply the latency goals (e.g. a smaller machine than the event's).")
@click.option("--seed", type=int, help="Seed for who skips, who repeats and which answers.")
@click.option("--yes", is_flag=True,
              help="Rehearse even though the instance already has participants.")
def rehearse_command(players, url, token, concurrency, no_show, repeat, timeout, slack, seed, yes):
    """Play a whole event against a running rehearsal instance and print a go/no-go table."""
    url = (url or current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http:// or https:// address.",
                                 param_hint="--url")
    rehearsal = Rehearsal(url, token or current_app.config["ADMIN_API_TOKEN"], concurrency, no_show,
                          repeat, timeout, seed)
    try:
        existing = rehearsal.preflight()
        if existing and not yes:
            raise RehearsalError(f"{url} already has {existing} participant(s). The rehearsal adds "
                                 f"{players} synthetic ones and plays every round to the end: run "
                                 "it on a rehearsal instance, or pass --yes.")
        click.echo(f"Rehearsing at {url}: {players} synthetic players, {concurrency} at a time "
                   "(run the instance with SMS_BACKEND=outbox: these phone numbers are made up).")
        tally = rehearsal.run(players, first=existing)
    except RehearsalError as error:
        raise click.ClickException(str(error))
    click.echo(format_table(tally, slack))
    if not verdict(tally, slack)[1]:
        raise SystemExit(1)
