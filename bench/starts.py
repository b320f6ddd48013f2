"""How soon a restarted process serves: gunicorn (the project's gunicorn.conf.py, gevent) from its
spawn to the first 200 on /ping, worker.py from its spawn to its first job done, and `import wsgi`
alone (create_app included).

    .venv/bin/python -m bench --only starts

Each is the median of a few fresh starts on a migrated database and a real Redis; the heavy modules
that `import wsgi` and a worker's start load anyway are listed (none is the goal: boto3, Alembic,
Pillow, segno, the SMS providers, phonenumbers are imported where they are used).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from redis import Redis
from rq import Queue

from quiz.embedded import server_args, wait_for
from quiz.stack import Stack, kill_group

RUNS = 3
# Loaded only by what uses them: S3 or SNS, migrations, photos, QR codes, Twilio, `flask rehearse`,
# the first join (as tests/test_starts.py checks).
HEAVY = ("boto3", "botocore", "alembic", "flask_migrate", "PIL", "segno", "twilio", "requests",
         "phonenumbers", "email_validator")
PROBE = ("import json, sys, time; started = time.perf_counter(); import {module}; "
         "print(json.dumps([time.perf_counter() - started, sorted(m for m in {heavy!r} "
         "if m in sys.modules)]))")


def import_figures(env: dict, module: str) -> tuple[float, float, list[str]]:
    """(seconds the interpreter ran, seconds `import module` took in it, heavy modules it
    loaded)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)],
                          cwd=Path(__file__).resolve().parent.parent, env=env, check=True,
                          capture_output=True, text=True)
    total = time.perf_counter() - started
    seconds, loaded = json.loads(done.stdout.splitlines()[-1])
    return total, seconds, loaded


def group_cpu(leader: int) -> float:
    """CPU seconds (user + system) used so far by the processes of `leader`'s process group: on a
    busy machine the time to serve stretches with the load, this much less."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == leader:  # pgrp; utime and stime are fields 14 and 15 of stat(5)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def web_start(stack: Stack) -> tuple[float, float]:
    """Seconds from spawning gunicorn (master and 2 gevent workers) to its first 200 on /ping, and
    the CPU seconds its processes used by then."""
    started = time.perf_counter()
    process = stack._spawn("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")
    try:
        while time.perf_counter() - started < 30:
            try:
                if requests.get(stack.url + "/ping", timeout=1).status_code == 200:
                    return time.perf_counter() - started, group_cpu(process.pid)
            except requests.RequestException:
                pass
            if process.poll() is not None:
                raise RuntimeError("gunicorn quit:\n" + stack.logs.read_text()[-2000:])
            time.sleep(0.01)
        raise RuntimeError("gunicorn did not answer /ping within 30 s")
    finally:
        kill_group(process)
        process.wait()


def worker_start(stack: Stack, redis_url: str) -> tuple[float, float]:
    """Seconds from spawning worker.py to its first job done (a drain with nothing pending, already
    queued: what a restarted worker finds), and the CPU seconds it used by then."""
    queue = Queue("forms", connection=Redis.from_url(redis_url))
    job = queue.enqueue("quiz.tasks.drain_pending", "new_forms", None)
    started = time.perf_counter()
    process = stack._spawn("worker.py")
    try:
        while time.perf_counter() - started < 30:
            status = job.get_status(refresh=True)
            if status == "finished":
                return time.perf_counter() - started, group_cpu(process.pid)
            if status == "failed" or process.poll() is not None:
                raise RuntimeError(f"the job {status}:\n" + stack.logs.read_text()[-2000:])
            time.sleep(0.01)
        raise RuntimeError("worker.py did not finish its first job within 30 s")
    finally:
        process.terminate()
        process.wait()


def measure(database_url_for) -> dict:
    """The start figures on one database (a fresh one, migrated as a deploy does)."""
    with tempfile.TemporaryDirectory(prefix="knockout-starts-") as tmp:
        directory = Path(tmp)
        redis = subprocess.Popen(server_args(directory, directory / "redis.sock"),
                                 stdout=subprocess.DEVNULL)
        redis_url = f"unix://{directory / 'redis.sock'}"
        try:
            wait_for(redis_url)
            stack = Stack(directory, redis_url, database_url_for(directory), SECRET_KEY="bench",
                          RATELIMIT_ENABLED="false", LOG_LEVEL="WARNING")
            stack.migrate()
            stack.log = open(stack.logs, "ab")
            try:
                imports = [import_figures(stack.env, "wsgi") for _ in range(RUNS)]
                worker_imports = import_figures(stack.env, "worker")[2]
                web = [web_start(stack) for _ in range(RUNS)]
                worker = [worker_start(stack, redis_url) for _ in range(RUNS)]
            finally:
                stack.log.close()
        finally:
            redis.terminate()
            redis.wait()
    return {"starts": {
        "python_s": statistics.median(i[0] for i in imports),
        "import_s": statistics.median(i[1] for i in imports),
        "heavy": sorted(set(imports[0][2]) | set(worker_imports)),
        "web_s": statistics.median(w[0] for w in web),
        "web_cpu_s": statistics.median(w[1] for w in web),
        "worker_s": statistics.median(w[0] for w in worker),
        "worker_cpu_s": statistics.median(w[1] for w in worker),
        "loadavg": os.getloadavg()[0]}}
