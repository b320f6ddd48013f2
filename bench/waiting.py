"""Waiting phones on the real stack: what they poll, what it costs the web processes, and the herd
after "Start round".

10,000 players wait for round 1. Measured in one run, on one stack (gunicorn gevent ×2, worker, a
real Redis, one database), with wrk:
- as fast as served (64 connections): `/ping`; `GET /api/status` answered 304 (the phone holds the
  current version) and 200; the fragment waiting phones polled before (`/f/<code>`, htmx);
- at the rate 10,000 phones really poll (each every poll_seconds plus its jitter, what the status
  says): the web processes' CPU from /proc, as a share of the machine's cores;
- the herd: round 1 opens and every phone opens its link (10,000 distinct `/f/<code>` pages) as
  they come (spread over 30 s: what each phone waits for its page), then as fast as served.
"""
import os
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import select

from quiz.models import FormLink

from .load import Run, progress, wrk
from .stack import insert_players
from .table import Row

PHONES = 10_000
JITTER = 0.25  # a phone waits poll_seconds × (1 + uniform(0, 0.5)) (static/js/waiting.js): mean
CPU_SHARE_GOAL = 0.25
OLD_RATE = PHONES / 4.5  # before: each phone re-fetched its own fragment every 3–6 s
HERD_S = 30  # after Start round, every phone opens its link within ~30 s
HERD_P99_MS = 1000  # … and gets its page fast


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (from /proc/<pid>/stat)."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def fixed_rate(run: Run, path: str, rate: float, seconds: int, *header: str) -> dict:
    """`path` at `rate` requests a second for `seconds`: wrk's figures and the web processes' CPU
    share."""
    pids = run.stack.web_workers
    before, started = cpu_seconds(pids), time.monotonic()
    result = wrk(run.stack.url, "get", path, seconds, 64, rate, *header)
    wall = time.monotonic() - started
    result["cpu_share"] = (cpu_seconds(pids) - before) / (wall * os.cpu_count())
    return result


def herd(run: Run, codes: list[str], rate: float = 0, *header: str) -> dict:
    """Every phone opens its link (the full page, round 1 open), each once: at `rate` pages a second
    (the herd as it comes: every phone within HERD_S of the start), or as fast as served (0).

    wrk stops as soon as every page is answered: a connection with nothing left to send would sit
    idle until gunicorn closes it (its keepalive, 5 s), and wrk counts each such close as a read
    error, though no request was in flight (every page had its 200). So what counts is the pages:
    `missing` is a phone that did not get its page with a 200; `timeout`, wrk's answers slower than
    its 10 s (left out of its percentiles)."""
    source = run.directory / "herd.txt"
    source.write_text("".join(f"GET\t/f/{code}\t\t\n" for code in codes))
    pids = run.stack.web_workers
    before = cpu_seconds(pids)
    result = wrk(run.stack.url, "file", str(source), HERD_S + 30, 64, rate, *header,
                 until_done=True)
    result["cpu_s_per_page_ms"] = (cpu_seconds(pids) - before) / max(result["answered"], 1) * 1000
    result["missing"] = len(codes) - result["statuses"].get("200", 0)
    result["span_s"] = result["last"] - result["first"]
    return result


def measure_run(run: Run, seconds: int, phones_s: int) -> dict:
    """Every waiting-phone figure on one stack."""
    url, figures = run.stack.url, {}
    insert_players(PHONES, "Waiting {i}", "w{i}@example.com", "+1888{i:07d}")
    from quiz.extensions import db
    db.session.commit()
    codes = db.session.scalars(select(FormLink.code).order_by(FormLink.id)).all()
    status = requests.get(url + "/api/status", timeout=10)
    etag, poll = status.headers["ETag"], status.json()["poll_seconds"]
    figures["ping"] = progress("waiting: /ping", wrk, url, "get", "/ping", seconds, 64)
    figures["status304"] = progress("waiting: /api/status 304", wrk, url, "get", "/api/status",
                                    seconds, 64, 0, "If-None-Match", etag)
    figures["status200"] = progress("waiting: /api/status 200", wrk, url, "get", "/api/status",
                                    seconds, 64)
    figures["fragment"] = progress("waiting: old poll (fragment)", wrk, url, "get",
                                   f"/f/{codes[0]}", seconds, 64, 0, "HX-Request", "true")
    rate = PHONES / (poll * (1 + JITTER))
    figures["phones"] = progress(f"waiting: {PHONES:,} phones at {rate:,.0f}/s", fixed_rate, run,
                                 "/api/status", rate, phones_s, "If-None-Match", etag)
    figures["phones"].update(poll_seconds=poll, target_rate=rate)
    run.open_round()
    opened = requests.get(url + "/api/status", timeout=10)
    figures["herd"] = progress(f"waiting: the herd over {HERD_S} s", herd, run, codes,
                               PHONES / HERD_S)
    # The waiting phones' own fetches after the change (the htmx fragment): each learns of it
    # within 1.5 poll cycles and fetches within spread_seconds of that, so at their peak they come
    # at PHONES / max(spread, 1.5 × poll) a second (before the spread: PHONES / (1.5 × poll)).
    spread = opened.json()["spread_seconds"]
    figures["spread"] = progress("waiting: the room's fetches, spread", herd, run, codes,
                                 PHONES / max(spread, 1.5 * poll), "HX-Request", "true")
    figures["spread"]["spread_seconds"] = spread
    figures["herd_fast"] = progress("waiting: the herd as fast as served", herd, run, codes)
    figures["herd"]["version_changed"] = opened.headers["ETag"] != etag
    return figures


def measure(database_url_for, quick: bool) -> dict:
    """The waiting-phone figures on a fresh database and stack of their own."""
    seconds, phones_s = (3, 10) if quick else (5, 20)
    with tempfile.TemporaryDirectory() as tmp:
        from .load import Sizes
        with Run(Path(tmp), database_url_for(Path(tmp)), Sizes()) as run:
            return {"waiting": measure_run(run, seconds, phones_s)}


def _ratio(f: dict, key: str) -> float:
    return f["waiting"][key]["rate"] / f["waiting"]["ping"]["rate"]


def rows() -> list[Row]:
    """The table's rows for waiting phones."""
    w = lambda f: f["waiting"]  # noqa: E731
    return [
        Row("waiting: /ping in the same run", lambda f: f"{w(f)['ping']['rate']:,.0f} req/s"),
        Row("waiting: GET /api/status → 304",
            lambda f: f"{w(f)['status304']['rate']:,.0f} req/s = {_ratio(f, 'status304'):.2f}×"),
        Row("waiting: GET /api/status → 200",
            lambda f: f"{w(f)['status200']['rate']:,.0f} req/s = {_ratio(f, 'status200'):.2f}×"),
        Row("waiting: what phones polled before, /f/<code> fragment",
            lambda f: f"{w(f)['fragment']['rate']:,.0f} req/s = {_ratio(f, 'fragment'):.2f}×"),
        Row(f"before: {PHONES:,} phones polling the fragment every 3–6 s",
            lambda f: f"{OLD_RATE:,.0f} req/s = {OLD_RATE / w(f)['fragment']['rate']:.1f}× what"
            " this box serves of it"),
        Row(f"{PHONES:,} waiting phones: web CPU (of all cores)",
            lambda f: f"{100 * w(f)['phones']['cpu_share']:.1f}% at "
            f"{w(f)['phones']['rate']:,.0f} req/s (poll {w(f)['phones']['poll_seconds']} s"
            f" + jitter, {w(f)['phones']['errors']} errors; from the 304 rate above:"
            f" {100 * w(f)['phones']['rate'] / w(f)['status304']['rate']:.0f}%)",
            f"≤ {100 * CPU_SHARE_GOAL:.0f}%",
            lambda f: w(f)["phones"]["cpu_share"] <= CPU_SHARE_GOAL
            and w(f)["phones"]["errors"] == 0),
        Row(f"herd: {PHONES:,} phones open their link over {HERD_S} s "
            f"({PHONES / HERD_S:,.0f}/s, round open), p50 / p99",
            lambda f: f"{paced(f)['p50_ms']:.0f} / {paced(f)['p99_ms']:.0f} ms, served over"
            f" {paced(f)['span_s']:.1f} s, {paced(f)['cpu_s_per_page_ms']:.2f} ms CPU a page"
            f"{herd_errors(paced(f))}",
            f"p99 ≤ {HERD_P99_MS} ms, all 200 in ~{HERD_S} s",
            lambda f: paced(f)["p99_ms"] <= HERD_P99_MS and paced(f)["timeout"] == 0
            and paced(f)["missing"] == 0 and paced(f)["span_s"] <= HERD_S + 5),
        Row(f"… the same {PHONES:,} pages as fast as served (64 connections)",
            lambda f: f"{w(f)['herd_fast']['rate']:,.0f} pages/s = {_ratio(f, 'herd_fast'):.2f}×,"
            f" p99 {w(f)['herd_fast']['p99_ms']:.0f} ms,"
            f" {w(f)['herd_fast']['cpu_s_per_page_ms']:.2f} ms CPU a page"
            f"{herd_errors(w(f)['herd_fast'])}"),
        Row(f"waiting phones' own fetches after Start (fragment), at their peak rate"
            " (spread_seconds, poll 1.5 cycles), p50 / p99",
            lambda f: f"{w(f)['spread']['rate']:,.0f}/s (spread {w(f)['spread']['spread_seconds']}"
            f" s): {w(f)['spread']['p50_ms']:.0f} / {w(f)['spread']['p99_ms']:.0f} ms,"
            f" {w(f)['spread']['cpu_s_per_page_ms']:.2f} ms CPU a page"
            f"{herd_errors(w(f)['spread'])}",
            f"p99 ≤ {HERD_P99_MS} ms",
            lambda f: w(f)["spread"]["p99_ms"] <= HERD_P99_MS and w(f)["spread"]["missing"] == 0),
    ]


def paced(f: dict) -> dict:
    return f["waiting"]["herd"]


def herd_errors(result: dict) -> str:
    """Phones without their page: another status, or none within the run's bound (HERD_S + 30 s);
    and answers slower than wrk's 10 s."""
    other = {s: n for s, n in result["statuses"].items() if s != "200"}
    unserved = result["missing"] - sum(other.values())
    text = f", {unserved:,} pages not served within {HERD_S + 30} s" if unserved else ""
    if other:
        text += f", answered {other} instead of 200"
    if result["timeout"]:
        text += f", {result['timeout']:,} answered after more than 10 s"
    return text
