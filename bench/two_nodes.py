"""Two web nodes on one database and one Redis (issue #17, item 5): how long a submission posted to
node B takes to show on a projector socket held by node A (B's commit → Redis → A's process → the
socket). tests/test_two_nodes.py checks the same behind nginx; this times it, one submission at a
time on an otherwise quiet pair.
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import websocket

from quiz.config import ROOT
from quiz.embedded import server_args, wait_for
from quiz.rehearsal_pages import answer_token, form_fields, question_choices
from quiz.stack import Stack

from .clients import percentile
from .event10k import bank
from .load import SETTINGS

COUNT = re.compile(r"<strong>(\d+)</strong> of")


def measure(database_url_for, probes: int) -> dict:
    """`probes` submissions to node B, each timed until node A's socket shows it."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        database_url = database_url_for(directory)
        redis_process = subprocess.Popen(server_args(directory, directory / "redis.sock"),
                                         stdout=subprocess.DEVNULL)
        redis_url = f"unix://{directory / 'redis.sock'}"
        nodes = []
        try:
            wait_for(redis_url)
            for _ in range(2):  # each a gunicorn and a worker.py, sharing database and Redis
                nodes.append(Stack(directory, redis_url, database_url, **SETTINGS).start())
            return probe(*nodes, directory, probes)
        finally:
            for node in nodes:
                node.stop()
            redis_process.terminate()
            redis_process.wait()


def probe(a: Stack, b: Stack, directory: Path, probes: int) -> dict:
    (directory / "bank.yaml").write_text(bank(1))
    subprocess.run([sys.executable, "-m", "flask", "--app", "quiz", "questions", "load",
                    str(directory / "bank.yaml")], cwd=ROOT, env=a.env, check=True,
                   capture_output=True)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {SETTINGS['ADMIN_API_TOKEN']}"
    for n in range(probes):
        api.post(a.url + "/api/register", timeout=10, json={
            "name": f"Node {n}", "email": f"node{n}@example.com", "phone": f"+1628{4_000_000 + n}",
            "consent": True}).raise_for_status()
    api.post(a.url + "/api/admin/start-challenge/1", timeout=30).raise_for_status()
    deadline = time.monotonic() + 60
    while api.get(a.url + "/api/admin/sms-progress/1", timeout=10).json()["status"] != "completed":
        assert time.monotonic() < deadline, "round links were not all sent"
        time.sleep(0.2)
    codes = [re.search(r"/f/(\S+)", m["body"]).group(1) for m in api.get(
        a.url + "/api/admin/outbox?limit=100000", timeout=10).json()["messages"]
        if m["kind"] == "round_link"]
    phones = []
    for code in codes:  # opened and Start pressed on node B, answers read off the form
        phone = requests.Session()
        page = phone.get(f"{b.url}/f/{code}", timeout=10).text
        phone.post(f"{b.url}/f/{code}/start", data=form_fields(page, "/start"),
                   timeout=10)
        page = phone.get(f"{b.url}/f/{code}", timeout=10).text
        data = answer_token(page)
        data.update({name: next(iter(choices.values()))
                     for name, choices in question_choices(page).items()})
        phones.append((phone, code, data))
    ws = websocket.create_connection(a.url.replace("http://", "ws://") + "/ws?topic=display",
                                     timeout=10)
    latencies = []
    try:
        ws.recv()
        for shown, (phone, code, data) in enumerate(phones, 1):
            time.sleep(0.7)  # a quiet spell: each probe meets a fresh tick
            sent = time.monotonic()
            done = phone.post(f"{b.url}/f/{code}/submit", data=data, allow_redirects=False,
                              timeout=10)
            assert done.status_code == 303, done.text[:500]
            while True:
                match = COUNT.search(ws.recv())
                if match and int(match.group(1)) >= shown:
                    latencies.append(time.monotonic() - sent)
                    break
    finally:
        ws.close()
    return {"p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "samples": len(latencies)}
