"""In-process CPU of a registration: POST /api/register with a unique phone and email each time, as
the bench's `wrk` sends it (bench/load.lua), against a /ping measured the same way. Run from a
tree's root (its quiz/ and tests/ are imported), alternated with the tree before, and compare
medians:

    .venv/bin/python bench/register_cpu.py [registrations a run] [options]
    bin/with-postgres .venv/bin/python bench/register_cpu.py ...   # on PostgreSQL

The process is gevent-patched like a gunicorn gevent worker, and the requests go through the WSGI
app (no HTTP) from CONCURRENCY greenlets at once, so registrations meet in the process's group
commit as on the stack; `alone` sends them one after another instead (each its own batch: a
profile without greenlets interleaved). SQLite, or PostgreSQL when KNOCKOUT_TEST_POSTGRES_URL names
one (bin/with-postgres sets it); a real Redis; the bench's one-round bank and settings (no rate
limits, links in the answer).

Prints JSON: ms of CPU a request (time.process_time over the run: the effects' sender and the
group commit's writer included) for /ping and a registration, their ratio (`pings`: what a
registration costs in /pings), each the median of RUNS runs (and the least run of each: the
one others disturbed least, on a busy machine). Options: `sample` prints where the
CPU of one more registration run went, sampled (right under greenlets); `profile` prints a
cProfile of one more run to stderr (cumulative, then own time; the stats in
$TMPDIR/register_cpu.prof); `trips` (PostgreSQL) counts what libpq sends: round trips a
registration, over a run and for one registration alone."""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from itertools import count  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402
from werkzeug.test import Client  # noqa: E402

sys.path.insert(0, ".")  # the tree measured
from quiz import create_app  # noqa: E402
from quiz.embedded import scratch_redis  # noqa: E402
from quiz.extensions import db, state  # noqa: E402
from quiz.questions import apply_bank, parse_bank  # noqa: E402
from tests.helpers import POSTGRES_URL, make_config  # noqa: E402

BANK = """
challenges:
  - number: 1
    title: Load
    questions: [{text: "Which service stores objects?", choices: [EC2, S3, SQS, RDS], answer: S3}]
"""  # bench/load.py's
CONCURRENCY = 16
RUNS = 5
N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000
ALONE = "alone" in sys.argv
serial = count(1)


def registration() -> str:
    """A new player's JSON body, as bench/load.lua words it."""
    n = next(serial)
    return json.dumps({"name": f"Bench {n}", "email": f"bench{n}@example.com",
                       "phone": f"+1628{2000000 + n:07d}", "company": "Bench", "consent": True})


def register(client: Client) -> None:
    response = client.post("/api/register", data=registration(),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.get_data(as_text=True)
    response.close()


def ping(client: Client) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    response.close()


def run(app, request, n: int) -> float:
    """ms of CPU a request over `n` of them, from CONCURRENCY greenlets (1 when `alone`)."""
    client = Client(app.wsgi_app, use_cookies=False)
    greenlets = 1 if ALONE else CONCURRENCY

    def some(k):
        for _ in range(k):
            request(client)
    started = time.process_time()
    gevent.joinall([gevent.spawn(some, n // greenlets) for _ in range(greenlets)],
                   raise_error=True)
    gevent.sleep(0.05)  # the effects' sender sends what the last batch owes
    return (time.process_time() - started) / (n // greenlets * greenlets) * 1000


def trips(app, n: int) -> dict:
    """PostgreSQL: round trips a registration over `n` registrations, and what one registration
    alone sends."""
    from tests.helpers import round_trips
    with app.app_context():
        engine = db.engine
    with round_trips(engine) as sent:
        run(app, register, n)
    with round_trips(engine) as one:
        register(Client(app.wsgi_app, use_cookies=False))
    return {"trips a registration": len(sent) / n, "trips of one alone": one,
            "statements over the run": Counter(t.split(" ", 1)[0] for t in sent)}


def profile(app, n: int) -> None:
    import cProfile
    import pstats
    prof = cProfile.Profile(time.process_time)  # CPU: a greenlet waiting costs nothing
    prof.enable()
    run(app, register, n)
    prof.disable()
    prof.dump_stats(Path(tempfile.gettempdir()) / "register_cpu.prof")  # for pstats' callers
    for order in ("cumulative", "tottime"):
        pstats.Stats(prof, stream=sys.stderr).sort_stats(order).print_stats(50)


def sample(app, n: int, interval: float = 0.0005) -> None:
    """Where the CPU goes, by sampling the running stack every `interval` s of the process's CPU
    (SIGPROF): right under greenlets, whose switches cProfile takes for calls and returns. Prints
    each function's share of the samples, inclusive (somewhere on the stack) and its own."""
    import signal
    from collections import Counter as Tally
    inclusive, own, samples = Tally(), Tally(), [0]

    def where(code) -> str:
        return f"{code.co_filename.rsplit('site-packages/', 1)[-1]}:{code.co_name}"

    def take(_signum, frame):
        samples[0] += 1
        own[where(frame.f_code)] += 1
        seen = set()
        while frame is not None:
            seen.add(where(frame.f_code))
            frame = frame.f_back
        inclusive.update(seen)
    signal.signal(signal.SIGPROF, take)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    try:
        run(app, register, n)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
    for title, tally in (("inclusive", inclusive), ("own", own)):
        print(f"{title}: % of {samples[0]} samples", file=sys.stderr)
        for name, k in tally.most_common(70):
            print(f"{100 * k / samples[0]:6.1f}  {name}", file=sys.stderr)


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    server, url = scratch_redis(tmp)
    try:
        redis.Redis.from_url(url).flushall()
        app = create_app(make_config(tmp, url, TESTING=False, LOG_LEVEL="WARNING",
                                     LINKS_IN_REGISTRATION=True), batch_effects=True)
        with app.app_context():
            db.create_all()
            apply_bank(parse_bank(BANK))
            db.session.commit()
        run(app, ping, 200)  # warm: the pool, the imports of the first join, the caches
        run(app, register, 200)
        results: dict = {"database": "PostgreSQL" if POSTGRES_URL else "SQLite",
                         "concurrency": 1 if ALONE else CONCURRENCY}
        pings, registrations = [], []
        for _ in range(RUNS):  # alternated: the machine's load moves both alike
            pings.append(run(app, ping, N))
            registrations.append(run(app, register, N))
        results["ping ms"] = round(statistics.median(pings), 4)
        results["register ms"] = round(statistics.median(registrations), 4)
        results["pings"] = round(statistics.median(r / p for r, p in zip(registrations, pings)), 2)
        # the least of the runs: on a busy machine the run others disturbed least
        results["min ms"] = {"ping": round(min(pings), 4), "register": round(min(registrations), 4)}
        results["runs"] = {"ping": [round(p, 4) for p in pings],
                           "register": [round(r, 4) for r in registrations]}
        if "trips" in sys.argv and POSTGRES_URL:
            results.update(trips(app, min(N, 500)))
        if "profile" in sys.argv:
            profile(app, N)
        if "sample" in sys.argv:
            sample(app, N)
        state(app).dispatcher.stop()
        print(json.dumps(results))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
