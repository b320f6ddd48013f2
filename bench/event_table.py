"""The 10,000-player scenario's table (bench/event10k.py, bench/two_nodes.py): a row per phase and
part, a column per database; latencies over every round, drain and start/end the worst round's."""
from .clients import percentile
from .table import Row

POLLING = {"status": "GET /api/status (If-None-Match); its /f/<code> fragment once the rounds "
                     "changed, within the status's spread",
           "fragment": "its /f/<code> fragment every 3–6 s (no /api/status on this build)"}


# What a phone asks for from its SMS link to the page after its answer.
HERD = ("open", "start", "questions", "submit", "burst", "submitted")


def latencies(f: dict, *kinds: str) -> list[float]:
    return [t for r in f["rounds"] for kind in kinds for t in r["latencies"].get(kind, [])]


def p50_p99(f: dict, *kinds: str) -> str:
    values = latencies(f, *kinds)
    if not values:
        return "– (none)"
    return (f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 99) * 1000:.0f} ms"
            f" ({len(values):,})")


def count(f: dict, *kinds: str) -> int:
    return len(latencies(f, *kinds))


def cores(f: dict, phase: str, part: str) -> float:
    """A part's average busy cores over that phase of every round."""
    phases = [r[phase] for r in f["rounds"]]
    if part not in phases[0]:
        raise KeyError(part)  # not on this database (PostgreSQL on SQLite): the cell shows "–"
    return (sum(p.get(part, 0) * p["wall_s"] for p in phases)
            / max(sum(p["wall_s"] for p in phases), 1e-9))


def web(f: dict, phase: str) -> float:
    return sum(cores(f, phase, part) for part in f["rounds"][0][phase]
               if part.startswith("web process"))


def steady(f: dict) -> dict:
    """Round 1's figures: its phones waited with nothing to fetch (no round had changed yet); in
    later rounds' waits the room also fetches the last round's results within the status's
    spread."""
    return {"rounds": f["rounds"][:1]}


def later(f: dict) -> dict:
    return {"rounds": f["rounds"][1:] or f["rounds"]}


def waiting_rate(f: dict) -> float:
    """Requests/s the waiting phones made before the rounds opened."""
    wall = sum(r["cpu_waiting"]["wall_s"] for r in f["rounds"])
    return count(f, "wait", "wait_fetch") / max(wall, 1e-9)


def worst(f: dict, key: str) -> float:
    return max(r[key] if r[key] is not None else float("inf") for r in f["rounds"])


def total(f: dict, key: str) -> int:
    return sum(r[key] for r in f["rounds"])


def errors(f: dict) -> str:
    merged: dict[str, int] = {}
    for r in f["rounds"]:
        for kind, n in r["errors"].items():
            merged[kind] = merged.get(kind, 0) + n
    return str(sum(merged.values())) + (f" ({', '.join(f'{k}: {n}' for k, n in merged.items())})"
                                        if merged else "")


def cpu_row(part: str) -> Row:
    return Row(f"CPU, waiting / during the rounds (cores): {part}",
               lambda f: f"{cores(f, 'cpu_waiting', part):.2f} / {cores(f, 'cpu_round', part):.2f}")


def rows(sizes) -> list[Row]:
    n = f"{sizes.players:,}"
    parts = ["web process 1", "web process 2", "RQ worker", "Redis", "PostgreSQL"]
    return [
        Row("machine load (1-min average, 2 cores, shared): before / after the event",
            lambda f: f"{f['load_before']:.1f} / {f['load_after']:.1f}"),
        Row("no-op GET /ping on this stack before the event (wrk, 64 connections, 5 s)",
            lambda f: f"{f['ping']['rate']:,.0f} req/s"),
        Row("the scenario took (stack up → down, two nodes not included)",
            lambda f: f"{f['took_s']:.0f} s"),
        Row(f"event: {n} players, {sizes.rounds} rounds (joined through POST /api/register)",
            lambda f: f"{f['players']:,} ({f['register_count']:,})"),
        Row("… registration POST /api/register, p50 / p99 (8 at once per process)",
            lambda f: p50_p99({"rounds": [f["register"]]}, "register")),
        Row("waiting phones poll", lambda f: POLLING[f["mode"]]),
        Row(f"waiting: {n} phones for {sizes.wait_s:.0f} s before each round: requests/s",
            lambda f: f"{waiting_rate(f):,.0f}/s"),
        Row("… p50 / p99 (requests)", lambda f: p50_p99(f, "wait", "wait_fetch")),
        Row("… page fetches after a change, all rounds: while waiting / after the start",
            lambda f: f"{count(f, 'wait_fetch'):,} / {count(f, 'round_poll_fetch'):,}"),
        Row("… web CPU (both processes), share of the 2 cores: polls alone (round 1) / with the "
            "last round's results fetched (rounds 2–3)",
            lambda f: f"{web(steady(f), 'cpu_waiting') / 2:.0%} / "
            f"{web(later(f), 'cpu_waiting') / 2:.0%} ({count(later(f), 'wait_fetch'):,} fetches)",
            "≤ 25% (polls)", lambda f: web(steady(f), "cpu_waiting") / 2 <= 0.25),
        Row(f"start-challenge (API), {n} players, worst round",
            lambda f: f"{worst(f, 'start_ms'):.0f} ms", "≤ 200 ms",
            lambda f: worst(f, "start_ms") <= 200),
        Row(f"… SMS: start → {n} round links sent, worst round",
            lambda f: f"{worst(f, 'sms_s'):.1f} s" if worst(f, "sms_s") < float("inf")
            else "not all sent within 30 s of the round's end"),
        Row(f"herd: open the link (GET /f/<code>, opens over {sizes.open_s:.0f} s), p50 / p99",
            lambda f: p50_p99(f, "open")),
        Row("Start (POST /f/<code>/start), p50 / p99", lambda f: p50_p99(f, "start")),
        Row("… the questions page after it (a plain press's 303), p50 / p99",
            lambda f: p50_p99(f, "questions")),
        Row("… requests a phone makes from its link to the page after its answer (answered ones)",
            lambda f: f"{count(f, *HERD) / max(count(f, 'open'), 1):.2f}"),
        Row(f"submit, spread over {sizes.answer_s:.0f} s, p50 / p99",
            lambda f: p50_p99(f, "submit")),
        Row(f"submit in the last second ({sizes.burst:.0%} of players), p50 / p99",
            lambda f: p50_p99(f, "burst")),
        Row("drain: last second's start → last answer in, worst round",
            lambda f: f"{worst(f, 'drain_s'):.2f} s", "≤ 5 s", lambda f: worst(f, "drain_s") <= 5),
        Row("waiting during the round (before opening, after answering), p50 / p99",
            lambda f: p50_p99(f, "round_poll", "round_poll_fetch")),
        Row(f"end-challenge (rank + eliminate), {n}, worst round",
            lambda f: f"{worst(f, 'end_ms'):.0f} ms", "≤ 500 ms",
            lambda f: worst(f, "end_ms") <= 500),
        Row("answers stored / lost / duplicates (all rounds)",
            lambda f: f"{total(f, 'stored'):,} of {total(f, 'accepted'):,} accepted / "
            f"{total(f, 'lost')} / {total(f, 'duplicates')}", "0 lost, 0 dup.",
            lambda f: total(f, "lost") == total(f, "duplicates") == 0
            and total(f, "stored") == sizes.players * sizes.rounds),
        Row("phones not done when the round ended (the server could not keep up)",
            lambda f: f"{total(f, 'unfinished'):,}", "0", lambda f: total(f, "unfinished") == 0),
        Row("errors (any answer not the expected one)", errors, "0",
            lambda f: errors(f) == "0"),
        Row("console buttons pressed again (503 busy), all rounds",
            lambda f: str(total(f, "retries")), "0", lambda f: total(f, "retries") == 0),
        Row(f"{sizes.sockets:,} sockets (½ /display, ½ console): connected, frames/s each, dropped",
            lambda f: f"{f['connected']:,}, "
            f"{total(f, 'frames') / max(f['connected'], 1) / total(f, 'frames_s'):.1f} Hz, "
            f"{max(r['dropped'] for r in f['rounds'])}",
            "all, 0 dropped", lambda f: f["connected"] == sizes.sockets
            and max(r["dropped"] for r in f["rounds"]) == 0),
        Row("… frame published → received, p50 / p99",
            lambda f: "{:.0f} / {:.0f} ms".format(
                *(percentile([t for r in f["rounds"] for t in r["frame_latencies"]], p) * 1000
                  for p in (50, 99)))),
        *[cpu_row(part) for part in parts],
        Row("… load generator (bench/crowd.py processes + this one)",
            lambda f: f"{cores(f, 'cpu_waiting', 'load generator'):.2f} / "
            f"{cores(f, 'cpu_round', 'load generator'):.2f} "
            f"({sizes.phone_processes + sizes.socket_processes} processes)"),
        Row("… the whole machine (other users' processes included)",
            lambda f: f"{cores(f, 'cpu_waiting', 'machine'):.2f} / "
            f"{cores(f, 'cpu_round', 'machine'):.2f} of 2"),
        Row(f"two nodes: submit on node B → node A's socket shows it, p50 / p99 "
            f"({sizes.probes} probes)",
            lambda f: f"{f['a_to_b']['p50_ms']:.0f} / {f['a_to_b']['p99_ms']:.0f} ms",
            "≤ 1 s", lambda f: f["a_to_b"]["p99_ms"] <= 1000),
    ]
