"""The benchmark's one table: a row per figure, a column per database, the goal beside it, misses
marked ✗."""
from dataclasses import dataclass
from typing import Callable

from .load import READERS


@dataclass(frozen=True)
class Row:
    """One figure: how to show it from a database's measurements, and whether it meets its goal."""

    label: str
    show: Callable[[dict], str]
    goal: str = ""
    met: Callable[[dict], bool] | None = None


def parts(ms: dict) -> str:
    """A request's CPU by part of the machine, in ms: web, worker, Redis, PostgreSQL (when there
    is one), the rest (the load generator, anyone else's)."""
    return " / ".join(f"{name} {ms[name]:.2f}" for name in
                      ("web", "worker", "Redis", "PostgreSQL", "rest") if ms.get(name) is not None)


def rows(sizes, quick: bool) -> list[Row]:
    big = "5,000" if quick else "50,000"
    submit_ratio = lambda f: f["submit"]["rate"] / f["ping"]["rate"]  # noqa: E731
    burst = lambda f: f["burst"]  # noqa: E731
    plain, read = (lambda f: f["plain_burst"]), (lambda f: f["read_burst"])  # noqa: E731
    return [
        Row("machine load (1-min average, 2 cores) after the HTTP runs",
            lambda f: f"{f['loadavg']:.1f}"),
        Row("no-op GET /ping (the ceiling)", lambda f: f"{f['ping']['rate']:,.0f} req/s"),
        Row("submit POST /f/<code>/submit",
            lambda f: f"{f['submit']['rate']:,.0f} req/s = {submit_ratio(f):.2f}×",
            "≥ 0.40 × ceiling",
            lambda f: submit_ratio(f) >= 0.40 and f["submit"]["errors"] == 0),
        Row(f"burst: {sizes.burst:,} submits within 1 s (10% repeats), drain",
            lambda f: f"{burst(f)['drain_s']:.2f} s", "≤ 5 s",
            lambda f: burst(f)["drain_s"] <= 5),
        Row("burst: errors / lost / duplicates (in the DB)",
            lambda f: f"{burst(f)['errors']} / {burst(f)['lost']} / {burst(f)['duplicates']}"
            f" ({burst(f)['stored']:,} of {burst(f)['unique']:,} stored)", "0 / 0 / 0",
            lambda f: burst(f)["errors"] == burst(f)["lost"] == burst(f)["duplicates"] == 0),
        Row(f"burst: {sizes.read_burst:,} submits (+10%) at once, 256 connections: drain, rate",
            lambda f: f"{plain(f)['drain_s']:.2f} s, {plain(f)['rate']:,.0f}/s"
            f" = {plain(f)['rate'] / f['ping']['rate']:.2f}×", "≥ 0.40 × ceiling",
            lambda f: plain(f)["rate"] >= 0.40 * f["ping"]["rate"]),
        Row("… web CPU a request (both processes, /proc): a submit of that burst vs a /ping",
            lambda f: f"{plain(f)['cpu_ms_per_request']:.2f} ms vs"
            f" {f['ping']['cpu_ms_per_request']:.2f} ms ="
            f" {plain(f)['cpu_ms_per_request'] / f['ping']['cpu_ms_per_request']:.1f} pings",
            "≤ 2.5 pings (what 0.40× needs)",
            lambda f: plain(f)["cpu_ms_per_request"]
            <= 2.5 * f["ping"]["cpu_ms_per_request"]),
        Row("… the whole machine's CPU a request (/proc): a submit of that burst vs a /ping; the "
            "submit's by part",
            lambda f: f"{plain(f)['parts_ms']['machine']:.2f} ms vs"
            f" {f['ping']['parts_ms']['machine']:.2f} ms ="
            f" {plain(f)['parts_ms']['machine'] / f['ping']['parts_ms']['machine']:.1f} pings"
            f" ({parts(plain(f)['parts_ms'])})"),
        Row(f"Start: {sizes.read_burst:,} presses (+10%) at once, 256 connections: drain, rate",
            lambda f: f"{f['start']['drain_s']:.2f} s, {f['start']['rate']:,.0f}/s"
            f" = {f['start']['rate'] / f['ping']['rate']:.2f}×"),
        Row("… web CPU a Start press vs a /ping; errors, clocks started",
            lambda f: f"{f['start']['cpu_ms_per_request']:.2f} ms ="
            f" {f['start']['cpu_ms_per_request'] / f['ping']['cpu_ms_per_request']:.1f} pings;"
            f" {f['start']['errors']}, {f['start']['started']:,} of {f['start']['unique']:,}",
            "0 errors, all started",
            lambda f: f["start"]["errors"] == 0 and f["start"]["started"] == f["start"]["unique"]),
        Row(f"… the same while {READERS} connections GET /ping: drain, the median pair of"
            f" {sizes.read_pairs} (each pair's ratio, in order)",
            lambda f: f"{read(f)['drain_s']:.2f} s vs {plain(f)['drain_s']:.2f} s"
            f" = {read(f)['drain_s'] / plain(f)['drain_s']:.2f}×"
            f" ({', '.join(f'{r:.2f}×' for r in f['read_ratios'])})",
            "≤ 1.2 × without", lambda f: read(f)["drain_s"] <= 1.2 * plain(f)["drain_s"]),
        Row("… errors / lost / duplicates (every burst of the pairs)",
            lambda f: "{errors} / {lost} / {duplicates}".format(**f["read_pair_faults"]),
            "0 / 0 / 0", lambda f: set(f["read_pair_faults"].values()) == {0}),
        Row(f"sustained {sizes.sustained_s} s: submits/s (errors)",
            lambda f: f"{f['sustained']['rate']:,.0f}/s ({f['sustained']['errors']})",
            f"≥ {sizes.sustained_rate:,}/s, 0",
            lambda f: f["sustained"]["rate"] >= sizes.sustained_rate * 0.99
            and f["sustained"]["errors"] == 0),
        Row("sustained: submit p99", lambda f: f"{f['sustained']['p99_ms']:.0f} ms", "≤ 250 ms",
            lambda f: f["sustained"]["p99_ms"] <= 250),
        Row(f"… {sizes.stream_clients:,} sockets: frames/s each (dropped)",
            lambda f: f"{f['stream']['frames_per_client_per_s']:.1f} Hz ({f['stream']['dropped']})",
            "2 Hz, 0",
            lambda f: f["stream"]["frames_per_client_per_s"] >= 1.8 and f["stream"]["dropped"] == 0
            and f["stream"]["connected"] == sizes.stream_clients),
        Row("… frame published → received, p99 (issue #6's figure)",
            lambda f: f"{f['stream']['published_p99_ms']:.0f} ms"
            f" (p50 {f['stream']['published_p50_ms']:.0f})",
            "≤ 250 ms", lambda f: f["stream"]["published_p99_ms"] <= 250),
        Row("… commit → frame received, p99 (waits for the next tick)",
            lambda f: f"{f['stream']['p99_ms']:.0f} ms (p50 {f['stream']['p50_ms']:.0f})"),
        Row("… bench client CPU, busiest process (1.0: one core, it limits)",
            lambda f: f"{f['stream']['client_cpu']:.2f} ({f['stream']['processes']} processes)"),
        Row(f"{sizes.idle_clients:,} idle sockets: broadcast p99",
            lambda f: f"{f['idle']['p99_ms']:.0f} ms (p50 {f['idle']['p50_ms']:.0f})",
            "≤ 300 ms", lambda f: f["idle"]["p99_ms"] <= 300),
        Row("… delivered",
            lambda f: f"{100 * f['idle']['delivered'] / max(f['idle']['expected'], 1):.1f}%"
            f" of {sizes.idle_clients:,}", "100%",
            lambda f: f["idle"]["delivered"] == f["idle"]["expected"]
            and f["idle"]["connected"] == sizes.idle_clients),
        Row("… bench client CPU per broadcast, busiest process (near the p99: it limits)",
            lambda f: f"{f['idle']['client_cpu_s_per_probe'] * 1000:.0f} ms"
            f" ({f['idle']['processes']} processes)"),
        Row("… memory per socket (web RSS Δ)", lambda f: f"{f['idle']['kib_per_socket']:.0f} KB",
            "≤ 100 KB", lambda f: f["idle"]["kib_per_socket"] <= 100),
        Row("registration POST /api/register",
            lambda f: f"{f['register']['rate']:,.0f}/s"
            f" = {f['register']['rate'] / f['ping']['rate']:.2f}× ceiling", "≥ 500/s",
            lambda f: f["register"]["rate"] >= 500 and f["register"]["errors"] == 0),
        Row("registration p99", lambda f: f"{f['register']['p99_ms']:.0f} ms", "≤ 200 ms",
            lambda f: f["register"]["p99_ms"] <= 200),
        Row("… web CPU a registration vs a /ping",
            lambda f: f"{f['register']['cpu_ms_per_request']:.2f} ms ="
            f" {f['register']['cpu_ms_per_request'] / f['ping']['cpu_ms_per_request']:.1f}"
            " pings"),
        Row("… the whole machine's CPU a registration vs a /ping; the registration's by part",
            lambda f: f"{f['register']['parts_ms']['machine']:.2f} ms vs"
            f" {f['ping']['parts_ms']['machine']:.2f} ms ="
            f" {f['register']['parts_ms']['machine'] / f['ping']['parts_ms']['machine']:.1f}"
            f" pings ({parts(f['register']['parts_ms'])})"),
        Row("start-challenge, 5,000 players", lambda f: f"{f['start5k']:.0f} ms", "≤ 200 ms",
            lambda f: f["start5k"] <= 200),
        Row(f"start-challenge, {big} players", lambda f: f"{f['start50k']:.0f} ms", "≤ 200 ms",
            lambda f: f["start50k"] <= 200),
        Row("outbox: 5,000 link SMS, start → all sent", lambda f: f"{f['outbox5k']:.2f} s",
            "≤ 5 s", lambda f: f["outbox5k"] <= 5),
        Row("end-challenge (rank + eliminate), 5,000", lambda f: f"{f['end5k']:.0f} ms",
            "≤ 100 ms", lambda f: f["end5k"] <= 100),
        Row(f"end-challenge (rank + eliminate), {big}", lambda f: f"{f['end50k']:.0f} ms",
            "≤ 500 ms", lambda f: f["end50k"] <= 500),
        Row("report /r/<code> p50, 5,000 ranked",
            lambda f: "{:.1f} ms (304: {:.1f} ms)".format(*f["report5k"])),
        Row(f"report /r/<code> p50, {big} ranked",
            lambda f: "{:.1f} ms (304: {:.1f} ms)".format(*f["report50k"])),
        Row("restarted web: gunicorn spawned → first 200 on /ping (its CPU)",
            lambda f: f"{f['starts']['web_s']:.2f} s ({f['starts']['web_cpu_s']:.2f} s)", "≤ 1 s",
            lambda f: f["starts"]["web_s"] <= 1),
        Row("restarted worker: worker.py spawned → first job done (its CPU)",
            lambda f: f"{f['starts']['worker_s']:.2f} s ({f['starts']['worker_cpu_s']:.2f} s)",
            "≤ 1 s", lambda f: f["starts"]["worker_s"] <= 1),
        Row("… machine load (1-min average, 2 cores) after the starts",
            lambda f: f"{f['starts']['loadavg']:.1f}"),
        Row("… `import wsgi` (create_app included; the whole interpreter)",
            lambda f: f"{f['starts']['import_s']:.2f} s ({f['starts']['python_s']:.2f} s)"),
        Row("… heavy modules loaded at start (boto3, alembic, PIL, segno, …)",
            lambda f: ", ".join(f["starts"]["heavy"]) or "none", "none",
            lambda f: not f["starts"]["heavy"]),
        Row("register p50 in-process, 3 rounds", lambda f: f"{f['register3']:.1f} ms"),
        Row("register p50 in-process, 10 rounds",
            lambda f: f"{f['register10']:.1f} ms ({f['register10'] / f['register3']:.2f}×)",
            "flat: ≈ 1×"),
    ]


def cell(row: Row, figures: dict) -> str:
    """The figure with ✓ or ✗ (or "–" when this run did not measure it)."""
    try:
        text = row.show(figures)
        if row.met is None:
            return text
        return f"{text} {'✓' if row.met(figures) else '✗'}"
    except (KeyError, ZeroDivisionError, TypeError, ValueError):
        return "–"


def render(all_rows: list[Row], measured: dict[str, dict]) -> str:
    """Plain-text table, one column per database."""
    names = list(measured)
    body = [[row.label, *(cell(row, measured[n]) for n in names), row.goal] for row in all_rows]
    body = [line for line in body if any(c != "–" for c in line[1:-1])]
    header = ["measure", *names, "goal"]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in body]
    return "\n".join(out)

