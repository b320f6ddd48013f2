"""What "is this round complete, and when does it close itself?" costs (quiz/clocks.py's one
aggregate: the close job, the drain after submissions, reconcile and each projector frame ask it).

    .venv/bin/python -m bench.round_plan [--players 10000]          # SQLite
    bin/with-postgres .venv/bin/python -m bench.round_plan          # PostgreSQL

The round: every link sent, half the players started, a third of them submitted. Prints the
median of 20 plans.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from quiz import clocks, notify
from quiz.clock import utcnow
from quiz.embedded import server_args, wait_for
from quiz.extensions import db

from . import load
from .__main__ import Bench, sqlite_file


def plan_latency(bench: Bench, players: int) -> float:
    from quiz.models import Challenge, FormLink, Message, Submission
    bench.players(players)
    bench.client.post("/api/admin/start-challenge/1", headers=bench.headers)
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    now = utcnow()
    notify.queue_round_links(challenge)
    db.session.execute(update(Message).values(status="sent", sent_at=now))
    ids = db.session.scalars(select(FormLink.participant_id)
                             .where(FormLink.challenge_id == challenge.id)).all()
    db.session.execute(update(FormLink).where(FormLink.participant_id % 2 == 0).values(
        started_at=now, window_ends_at=now + timedelta(seconds=60)))
    db.session.execute(insert(Submission), [
        {"participant_id": pid, "challenge_id": challenge.id, "answers": {}, "score": 1,
         "correct": 1, "response_time": 5.0, "submitted_at": now} for pid in ids if pid % 6 == 0])
    db.session.commit()
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        plan = clocks.plan(challenge, utcnow())
        samples.append((time.perf_counter() - started) * 1000)
    assert plan.answered == len([pid for pid in ids if pid % 6 == 0]), plan
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--players", type=int, default=10_000)
    args = parser.parse_args()
    url = os.environ.get("KNOCKOUT_TEST_POSTGRES_URL")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis = subprocess.Popen(server_args(workdir, workdir / "redis.sock"),
                                 stdout=subprocess.DEVNULL)
        wait_for(f"unix://{workdir / 'redis.sock'}")
        try:
            with Bench(workdir, f"unix://{workdir / 'redis.sock'}", "plan",
                       load.fresh_postgres(url) if url else sqlite_file) as bench:
                ms = plan_latency(bench, args.players)
        finally:
            redis.terminate()
    print(f"round plan, {args.players:,} players on {'PostgreSQL' if url else 'SQLite'}: "
          f"{ms:.1f} ms (median of 20)")


if __name__ == "__main__":
    main()
