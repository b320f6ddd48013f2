"""Where end of round goes on PostgreSQL: each statement's time at N players, and schema variants to
compare.

    bin/with-postgres .venv/bin/python -m bench.end_of_round [--players 50000]
        [--variant app|indexed] [--fillfactor SUBMISSION,PARTICIPANT]

`app` is the app's schema (migration 0006): no index on the columns the close writes
(`submission.rank`, `participant.eliminated_in`) and room left in each page
(models.SUBMISSION_FILLFACTOR, PARTICIPANT_FILLFACTOR), so PostgreSQL updates rows in place (HOT)
instead of writing a new entry into every index for every row.
`indexed` puts the two indexes back (as before 0006): every updated row then costs an entry in each
index.
`--fillfactor 50,70` tries other free space per page (pages written after it: all the bench's rows).
After the close it times what the projector and the report pages read at that size (readers, median
of 20), and prints how many of the updates PostgreSQL made in place: pick a fillfactor by that and
the total.
"""
import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, func, select, text

from quiz.embedded import server_args, wait_for
from quiz.extensions import db

from . import load
from .__main__ import Bench, end_latency, timed

VARIANTS = {
    "app": [],
    "indexed": ["CREATE INDEX ix_submission_challenge_rank ON submission (challenge_id, rank)",
                "CREATE INDEX ix_participant_eliminated_in ON participant (eliminated_in)"],
}


def fillfactor(value: str) -> list[str]:
    """`--fillfactor 50,70` as the statements that set it on submission and participant."""
    submission, participant = (int(part) for part in value.split(","))
    return [f"ALTER TABLE submission SET (fillfactor = {submission})",
            f"ALTER TABLE participant SET (fillfactor = {participant})"]


@contextlib.contextmanager
def statement_timer(spent: list):
    """Append (ms, statement) for each statement run meanwhile."""
    started = {}

    def before(connection, *_):
        started[id(connection)] = time.perf_counter()

    def after(connection, cursor, statement, *_):
        spent.append(((time.perf_counter() - started.pop(id(connection))) * 1000,
                      " ".join(statement.split())[:110]))

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)


def readers(bench: Bench, samples: int = 20) -> dict[str, float]:
    """Median ms of what is read often after a close, at this size (statistics up to date, as
    autovacuum would)."""
    from quiz import leaderboard, rounds
    from quiz.models import Challenge, Participant
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    out = db.session.scalar(select(Participant.report_code).where(Participant.eliminated_in == 1)
                            .limit(1))
    cases = {"GET /display (fragment)": lambda: bench.client.get(
                 "/display", headers={"HX-Request": "true"}),
             "GET /r/<code>, a player out": lambda: bench.client.get(f"/r/{out}"),
             "leaderboard, top 10": lambda: leaderboard.leaderboard(challenge, limit=10),
             "players, and still in (counts)": lambda: db.session.execute(
                 select(func.count(), func.count().filter(Participant.eliminated_in.is_(None)))
                 .select_from(Participant)).one(),
             "the prize's best-ranked, round 1": lambda: db.session.scalar(
                 rounds._prize_ranking(challenge, Participant.id))}
    return {name: statistics.median(timed(read) * 1000 for _ in range(samples))
            for name, read in cases.items()}


def hot_updates() -> dict[str, tuple[int, int]]:
    """Per table: (updates done in place (HOT), updates), as PostgreSQL counted them; after the
    close's session ended (a backend reports its counts when it exits)."""
    db.session.remove()
    db.engine.dispose()
    time.sleep(0.5)
    return {table: (hot, updates) for table, hot, updates in db.session.execute(text(
        "SELECT relname, n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables "
        "WHERE relname IN ('submission', 'participant') ORDER BY relname DESC"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--players", type=int, default=50_000)
    parser.add_argument("--variant", choices=VARIANTS, default="app")
    parser.add_argument("--fillfactor", type=fillfactor, default=[],
                        help="SUBMISSION,PARTICIPANT, e.g. 50,70")
    args = parser.parse_args()
    url = os.environ.get("KNOCKOUT_TEST_POSTGRES_URL") or sys.exit("run through bin/with-postgres")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis = subprocess.Popen(server_args(workdir, workdir / "redis.sock"),
                                 stdout=subprocess.DEVNULL)
        wait_for(f"unix://{workdir / 'redis.sock'}")
        try:
            with Bench(workdir, f"unix://{workdir / 'redis.sock'}", "end",
                       load.fresh_postgres(url)) as bench:
                for statement in VARIANTS[args.variant] + args.fillfactor:
                    db.session.execute(text(statement))
                db.session.commit()
                spent = []
                total = end_latency(bench, args.players, statement_timer(spent))
                read = readers(bench)
                hot = hot_updates()
        finally:
            redis.terminate()
    fillfactors = (f", fillfactor {args.fillfactor[0].split()[-1][:-1]}/"
                   f"{args.fillfactor[1].split()[-1][:-1]}" if args.fillfactor else "")
    print(f"end of round, {args.players:,} players, schema {args.variant}{fillfactors}: "
          f"{total:.0f} ms")
    for ms, statement in sorted(spent, reverse=True)[:6]:
        print(f"{ms:8.1f} ms  {statement}")
    for name, ms in read.items():
        print(f"{ms:8.1f} ms  {name}")
    print("updated in place (HOT): " + ", ".join(f"{table} {done:,} of {total:,}"
                                                 for table, (done, total) in hot.items()))


if __name__ == "__main__":
    main()
