"""Where end of round goes on PostgreSQL: each statement's time at N players, and schema variants to compare.

    bin/with-postgres .venv/bin/python -m bench.end_of_round [--players 50000] [--variant base|hot]

`hot` drops the two indexes on the columns the close writes (`submission.rank`, `participant.eliminated_in`)
and leaves room in each page (fillfactor 45), so PostgreSQL can update in place (HOT) instead of writing a
new entry into every index for every row. An experiment: the app's schema is `base`.
"""
import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, text

from quiz.embedded import server_args, wait_for
from quiz.extensions import db

from . import load
from .__main__ import Bench, end_latency

VARIANTS = {
    "base": [],
    "hot": ["DROP INDEX ix_submission_challenge_rank", "DROP INDEX ix_participant_eliminated_in",
            "ALTER TABLE submission SET (fillfactor = 45)", "ALTER TABLE participant SET (fillfactor = 45)"],
}


@contextlib.contextmanager
def statement_timer(spent: list):
    """Append (ms, statement) for each statement run meanwhile."""
    started = {}

    def before(connection, *_):
        started[id(connection)] = time.perf_counter()

    def after(connection, cursor, statement, *_):
        spent.append(((time.perf_counter() - started.pop(id(connection))) * 1000, " ".join(statement.split())[:110]))

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--players", type=int, default=50_000)
    parser.add_argument("--variant", choices=VARIANTS, default="base")
    args = parser.parse_args()
    url = os.environ.get("KNOCKOUT_TEST_POSTGRES_URL") or sys.exit("run through bin/with-postgres")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis = subprocess.Popen(server_args(workdir, workdir / "redis.sock"), stdout=subprocess.DEVNULL)
        wait_for(f"unix://{workdir / 'redis.sock'}")
        try:
            with Bench(workdir, f"unix://{workdir / 'redis.sock'}", "end", load.fresh_postgres(url)) as bench:
                for statement in VARIANTS[args.variant]:
                    db.session.execute(text(statement))
                db.session.commit()
                spent = []
                total = end_latency(bench, args.players, statement_timer(spent))
        finally:
            redis.terminate()
    print(f"end of round, {args.players:,} players, schema {args.variant}: {total:.0f} ms")
    for ms, statement in sorted(spent, reverse=True)[:6]:
        print(f"{ms:8.1f} ms  {statement}")


if __name__ == "__main__":
    main()
