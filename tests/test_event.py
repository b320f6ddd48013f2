"""A whole 3-round event with 210 players (90 with forms on S3), over HTTP only, against the real
stack.

Players register through the API or the HTML form (as a phone posts it), learn their links
from the SMS outbox, and answer through the real forms: some right, some wrong, some never
open their link, some double-submit, one submits after the close. Every elimination is
checked against an independent computation here, and the database has no row missing or twice.
"""
import html
import math
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis as redis_lib
import requests
import sqlalchemy
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from quiz.rehearsal_pages import form_fields

from .helpers import AWS_TEST_ENV, new_bucket
from .live_fixtures import LiveStack

pytestmark = pytest.mark.live

BANK = """
challenges:
  - number: 1
    title: Cloud basics
    keep_fraction: 0.5
    scoring: accuracy
    questions:
      - {text: "Which service stores objects?", choices: [EC2, S3, SQS], answer: S3}
      - {text: "Which is a queue?", choices: [SQS, RDS, IAM], answer: SQS, points: 2}
      - {text: "Which are databases?", choices: [RDS, DynamoDB, Lambda], answer: [RDS, DynamoDB], \
points: 3}
  - number: 2
    title: Speed round
    time_limit_seconds: 600
    keep_fraction: 0.5
    scoring: speed
    questions:
      - {text: "2 + 2?", choices: ["3", "4", "5"], answer: "4"}
      - {text: "Capital of France?", choices: [Lyon, Paris, Nice], answer: Paris}
  - number: 3
    title: Final
    keep_fraction: 0.5
    scoring: accuracy
    questions:
      - {text: "Largest planet?", choices: [Mars, Jupiter, Venus], answer: Jupiter}
      - {text: "H2O is?", choices: [Water, Salt, Gold], answer: Water}
"""
KEY = {1: [({"S3"}, 1), ({"SQS"}, 2), ({"RDS", "DynamoDB"}, 3)],
       2: [({"4"}, 1), ({"Paris"}, 1)],
       3: [({"Jupiter"}, 1), ({"Water"}, 1)]}
CHOICES = {1: [["EC2", "S3", "SQS"], ["SQS", "RDS", "IAM"], ["RDS", "DynamoDB", "Lambda"]],
           2: [["3", "4", "5"], ["Lyon", "Paris", "Nice"]],
           3: [["Mars", "Jupiter", "Venus"], ["Water", "Salt", "Gold"]]}
# On S3 fewer: moto's server spends ~10 ms on each call, and every form is written, then moved, once
# a round.
PLAYERS = {"file": 210, "s3": 90}


class Player:
    def __init__(self, n: int):
        self.n = n
        self.name = f"Player {n:03d}"
        self.email = f"player{n}@example.com"
        self.phone = f"+1415555{n:04d}"
        self.http = requests.Session()
        # Like a browser, resend when a reused keep-alive connection turns out closed (start and
        # submit are idempotent on the server, which is what this test checks).
        self.http.mount("http://", HTTPAdapter(max_retries=Retry(
            total=2, connect=2, read=2, status=0, allowed_methods=None, raise_on_status=False)))
        self.user_id = None
        self.links: dict[int, str] = {}
        self.submitted: dict[int, list[list[str]]] = {}


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def token(page: str) -> dict[str, str]:
    """The questions page's token: the stored form's own, or the live page's CSRF token."""
    name, value = re.search(r'name="(form_token|csrf_token)" value="([^"]+)"', page).groups()
    return {name: value}


def register(stack, player: Player, via_form: bool) -> None:
    if via_form:
        page = player.http.get(f"{stack.url}/register").text
        response = player.http.post(f"{stack.url}/register", data={
            "csrf_token": csrf(page), "name": player.name, "email": player.email,
            "phone": player.phone, "company": "Acme", "consent": "yes"}, allow_redirects=False)
        assert response.status_code == 303, response.text[:500]
    else:
        response = requests.post(f"{stack.url}/api/register", json={
            "name": player.name, "email": player.email, "phone": player.phone, "company": "Acme",
            "consent": True})
        assert response.status_code == 201, response.text
        body = response.json()
        player.user_id = body["user_id"]
        player.links = {int(k): v for k, v in body["form_urls"].items()}


def pick(rng: random.Random, number: int) -> list[list[str]]:
    """Some answers right, some wrong."""
    picks = []
    for (correct, _), options in zip(KEY[number], CHOICES[number]):
        if rng.random() < 0.6:
            picks.append(sorted(correct))
        else:
            picks.append([rng.choice([o for o in options if {o} != correct])])
    return picks


def play(stack, player: Player, number: int, picks, double: bool) -> str:
    """Open the link, press Start, answer through the form; returns what happened."""
    url = player.links[number]
    page = player.http.get(url).text
    assert "Ready?" in page, page[:2000]
    player.http.post(f"{url}/start", data=form_fields(page, "/start"))
    # the stored form: served, or from S3 through a freshly signed URL
    page = player.http.get(url).text
    assert 'data-stored-form="forms"' in page, page[:2000]
    data = token(page)
    fields = {}
    for name, value, label in re.findall(
            r'<input type="(?:radio|checkbox)" name="(q\d+)" value="([^"]+)"[^>]*>'
            r'\s*<span>([^<]*)</span>', page):
        fields.setdefault(name, {})[html.unescape(label)] = value
    # picks are in the bank's order, the page in the player's own: by question id
    fields = dict(sorted(fields.items(), key=lambda field: int(field[0][1:])))
    for (name, options), chosen in zip(fields.items(), picks):
        data[name] = [options[c] for c in chosen]
    results = []

    def send():
        results.append(player.http.post(f"{url}/submit", data=data,
                                        allow_redirects=False).status_code)
    threads = [threading.Thread(target=send) for _ in range(2 if double else 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 303 to the "answers in" page; a doubled or retried POST gets 200 "already submitted".
    assert set(results) <= {200, 303} and 303 in results or results == [200], results
    player.submitted[number] = picks
    return "submitted"


def expected_score(number: int, picks, response_time: float) -> int:
    """Independent of quiz.scoring: accuracy sums points; speed gives 1000→500 per point over the
    limit."""
    points = sum(pts for (correct, pts), chosen in zip(KEY[number], picks)
                 if set(chosen) == correct)
    if number == 2:
        return round(1000 * (1 - min(response_time / 600, 1) / 2)) * points
    return points


def wait_for_links(stack, headers, number: int, expected_phones: set[str]) -> dict[str, str]:
    """Poll SMS progress until done; return phone → link from the outbox, as each phone receives
    it."""
    deadline = time.monotonic() + 60
    while True:
        progress = requests.get(f"{stack.url}/api/admin/sms-progress/{number}",
                                headers=headers).json()
        if progress["status"] == "completed" and progress["total"] == len(expected_phones):
            break
        assert time.monotonic() < deadline, progress
        time.sleep(0.3)
    assert progress["sent"] == len(expected_phones) and progress["failed"] == 0
    messages = requests.get(f"{stack.url}/api/admin/outbox?limit=100000",
                            headers=headers).json()["messages"]
    mine = [m for m in messages if m["challenge"] == number and m["kind"] == "round_link"]
    assert len(mine) == len(expected_phones)
    assert {m["to"] for m in mine} == expected_phones  # only those still in, each once
    return {m["to"]: re.search(r"(http://\S+/f/\S+)", m["body"]).group(1) for m in mine}


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.nodb)])
def stack(request, tmp_path, redis_url):
    """The real stack with forms in a folder (served by Knockout), or on S3 (moto) behind pre-signed
    redirects."""
    redis_lib.Redis.from_url(redis_url).flushall()
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        env = {"STORAGE_URL": f"s3://{new_bucket(endpoint)}/event", "S3_ENDPOINT_URL": endpoint,
               "FORMS_DELIVERY": "redirect", **AWS_TEST_ENV}
    else:
        env = {"STORAGE_URL": f"file://{tmp_path / 'storage'}"}
    live = LiveStack(tmp_path, redis_url, **env)
    live.players = PLAYERS[request.param]
    try:
        yield live.start()
    finally:
        live.stop()


def stored_keys(stack) -> set[str]:
    """Every stored form, listed straight from the folder or the bucket."""
    url = urlparse(stack.env["STORAGE_URL"])
    if url.scheme == "file":
        root = Path(url.path)
        return {str(p.relative_to(root)) for p in root.rglob("*.html")}
    import boto3
    s3 = boto3.client("s3", endpoint_url=stack.env["S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=url.netloc, Prefix="event/")
    return {item["Key"].removeprefix("event/")
            for page in pages for item in page.get("Contents", [])}


def expected_keys(database) -> set[str]:
    """From the database alone: each form in exactly one place (answered, unanswered once closed,
    else forms)."""
    rows = database.execute(sqlalchemy.text(
        "select l.participant_id, c.number, c.status, s.id from form_link l "
        "join challenge c on c.id = l.challenge_id "
        "left join submission s on s.participant_id = l.participant_id "
        "and s.challenge_id = l.challenge_id")).all()
    return {f"{'answered' if s else 'unanswered' if status == 'closed' else 'forms'}"
            f"/challenge{n}/{p}.html"
            for p, n, status, s in rows}


def wait_for_storage_to_match(stack, engine) -> None:
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as database:
            expected = expected_keys(database)
        started = time.monotonic()
        found = stored_keys(stack)
        if found == expected:
            return
        assert time.monotonic() < deadline, (
            f"missing {sorted(expected - found)[:5]} (+{len(expected - found)}), "
            f"extra {sorted(found - expected)[:5]} (+{len(found - expected)})")
        # Listing hundreds of keys keeps moto busy: leave it to the worker most of the time.
        time.sleep(max(0.3, 3 * (time.monotonic() - started)))


def test_whole_event_over_http(stack):
    engine = sqlalchemy.create_engine(stack.env["DATABASE_URL"])
    headers = {"Authorization": "Bearer live-token"}
    bank = stack.logs.parent / "bank.yaml"
    bank.write_text(BANK)
    stack.flask("questions", "load", str(bank))
    rng = random.Random(2026)
    players = [Player(n) for n in range(1, stack.players + 1)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda p: register(stack, p, via_form=p.n % 2 == 0), players))
    # A second registration with the same phone is refused, never a second player.
    again = requests.post(f"{stack.url}/api/register", json={
        "name": "Dup", "email": "dup@example.com", "phone": players[0].phone, "consent": True})
    assert again.status_code == 409

    # every round's form made in the background
    wait_for_storage_to_match(stack, engine)
    alive = list(players)
    late = players[4]
    winner_id = None
    for number in (1, 2, 3):
        assert requests.post(f"{stack.url}/api/admin/start-challenge/{number}",
                             headers=headers).status_code == 200
        sms = wait_for_links(stack, headers, number, {p.phone for p in alive})
        for p in alive:
            if p.user_id is not None:
                # the SMS carries the same link the API returned
                assert sms[p.phone] == p.links[number]
            p.links[number] = sms[p.phone]
        plan = {}
        for p in alive:
            roll = rng.random()
            plan[p.n] = "absent" if roll < 0.1 else "double" if roll < 0.2 else "play"
        if number == 1:
            plan[late.n] = "late"
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda p: plan[p.n] in ("play", "double") and play(
                stack, p, number, pick(random.Random(p.n * 7 + number), number),
                plan[p.n] == "double"), alive))
        if number == 1:  # the late player loads the questions, then posts after the close
            page = late.http.get(late.links[1]).text
            late.http.post(late.links[1] + "/start", data=form_fields(page, "/start"))
            page = late.http.get(late.links[1]).text
        end = requests.post(f"{stack.url}/api/admin/end-challenge/{number}", headers=headers)
        assert end.status_code == 200, end.text
        if number == 1:
            response = late.http.post(late.links[1] + "/submit", data=token(page))
            assert response.status_code == 409 and "is closed" in response.text

        board = requests.get(f"{stack.url}/api/leaderboard/{number}").json()["entries"]
        by_name = {e["name"]: e for e in board}
        submitters = [p for p in alive if number in p.submitted]
        assert {e["name"] for e in board if e["score"] is not None} == {p.name for p in submitters}
        for p in submitters:
            entry = by_name[p.name]
            assert abs(entry["score"] - expected_score(number, p.submitted[number],
                                                       entry["response_time_seconds"])) <= 1
        ranked = sorted(submitters, key=lambda p: (-by_name[p.name]["score"],
                                                   by_name[p.name]["response_time_seconds"],
                                                   by_name[p.name]["user_id"]))
        keep = max(1, math.ceil(len(ranked) * 0.5)) if ranked else 0
        survivors = ranked[:keep]
        assert end.json()["kept"] == keep and end.json()["submitted"] == len(submitters)
        assert end.json()["eliminated_unanswered"] == len(alive) - len(submitters)
        assert [by_name[p.name]["rank"] for p in survivors] == list(range(1, keep + 1))
        for p in alive:
            entry = by_name[p.name]
            assert entry["eliminated"] == (p not in survivors), p.name
            assert entry["elimination_challenge"] == (None if p in survivors else number)
        alive = survivors
        winner_id = end.json()["winner_id"]
        wait_for_storage_to_match(stack, engine)
    assert winner_id == by_name[alive[0].name]["user_id"]
    assert f"{alive[0].name} wins!" in requests.get(f"{stack.url}/display").text
    assert "You won!" in alive[0].http.get(alive[0].links[3]).text

    # The database: no row missing, none twice.
    with engine.connect() as database:
        def scalar(sql):
            return database.execute(sqlalchemy.text(sql)).scalar()
        assert scalar("select count(*) from participant") == stack.players
        per_round = dict(database.execute(sqlalchemy.text(
            "select c.number, count(*) from submission s join challenge c on c.id = s.challenge_id "
            "group by c.number")).all())
        assert per_round == {n: sum(1 for p in players if n in p.submitted) for n in (1, 2, 3)}
        assert scalar("select count(*) from (select participant_id, challenge_id from submission "
                      "group by 1, 2 having count(*) > 1) twice") == 0
        assert scalar("select count(*) from participant where eliminated_in is null") == len(alive)
    engine.dispose()
