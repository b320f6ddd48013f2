"""A scripted cheater: throwaway players who differ only in question 1's answer learn nothing while
the round is open.

Each round, four throwaways registered through the API answer question 1 with each of its four
choices (picked by label text, so opaque choice values don't stop them) and everything else alike,
beside an all-first-choice player. While the round is open, every public response each of them
gets (their report, their round page after submitting, the public leaderboard, the shadow league,
the projector's page and its websocket frame) must be byte-identical across them once what
legitimately differs is masked: names, codes, ids, tokens, times and the rows of rounds already
closed. The mask is from each viewer's side ("ME" for themselves, "OTHER" for the rest), so a list
that orders players by score differs between viewers, as a cheater would read it.
"""
import html
import json
import re
from dataclasses import dataclass, field

import pytest
import yaml
from sqlalchemy import func, select

from quiz.checkin import display_code
from quiz.extensions import db
from quiz.models import FormLink, Participant, Submission
from quiz.questions import apply_bank, parse_bank
from quiz.web.display import live_stage

from .helpers import csrf_from, token_field

# Rounds of three four-choice questions: (text, choices in bank order, answer).
ROUNDS = {
    1: [("Which service stores objects?", ["EC2", "S3", "SQS", "Lambda"], "S3"),
        ("Which is a queue?", ["SNS", "SQS", "EBS", "IAM"], "SQS"),
        ("Which runs code without servers?", ["EC2", "Lambda", "EBS", "VPC"], "Lambda")],
    2: [("The capital of Norway?", ["Paris", "Rome", "Oslo", "Bern"], "Oslo"),
        ("The capital of Italy?", ["Madrid", "Rome", "Lisbon", "Vienna"], "Rome"),
        ("The capital of Peru?", ["Quito", "Lima", "Bogota", "La Paz"], "Lima")],
    3: [("Pick yes", ["yes", "no"], "yes")],
}
# Round 1 keeps everyone who answers, so that its players can play round 2 for the prize with the
# same history. No time limit: no countdown to mask.
BANK = yaml.safe_dump({"challenges": [
    {"number": n, "title": f"Round {n}", **({"keep_count": 100} if n == 1 else {}),
     "questions": [{"text": t, "choices": c, "answer": a} for t, c, a in questions]}
    for n, questions in ROUNDS.items()]})
IN_BANK = {t: c for questions in ROUNDS.values() for t, c, _ in questions}
NAMES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India",
         "Juliett", "Kilo", "Lima", "Mike", "November")
FIELDSET = re.compile(r"<fieldset class=\"question.*?</fieldset>", re.S)
LEGEND = re.compile(r'<span class="qnum">\d+</span>\s*([^<]*?)\s*(?:<small>|</legend>)')
CHOICE = re.compile(r'name="([^"]+)" value="([^"]+)"[^>]*>\s*<span>([^<]*)</span>')


class Laptop:
    """A browser of its own: its cookies, and its own app context per request (Flask-WTF keeps a
    CSRF token in `g`, which the test's app context would otherwise share between players)."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def get(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.post(*args, **kwargs)


@dataclass
class Throwaway:
    """A player with a laptop: its own cookie jar, its links as the API handed them out."""
    name: str
    client: object
    user_id: int
    report: str  # the /r/ path
    links: dict  # round → /f/ path
    secrets: list = field(default_factory=list)  # its codes, as they may appear in a page


def register(app, n: int) -> Throwaway:
    client = Laptop(app)
    response = client.post("/api/register", json={
        "name": f"Player {NAMES[n]}", "email": f"throwaway{n}@example.com",
        "phone": f"+1415555{n:04d}", "company": "", "consent": True})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    player = Throwaway(f"Player {NAMES[n]}", client, body["user_id"],
                       body["report_url"].removeprefix("http://quiz.test"),
                       {int(k): u.removeprefix("http://quiz.test")
                        for k, u in body["form_urls"].items()})
    participant = db.session.get(Participant, player.user_id)
    codes = db.session.scalars(select(FormLink.code).where(
        FormLink.participant_id == player.user_id)).all()
    player.secrets = [*codes, participant.report_code, participant.checkin_code,
                      display_code(participant.checkin_code)]
    return player


def questions_on(page: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Question text → (field name, {choice label: value}), whatever order the page gives them."""
    found = {}
    for block in FIELDSET.findall(page):
        choices = CHOICE.findall(block)
        found[html.unescape(LEGEND.search(block)[1])] = (
            choices[0][0], {html.unescape(label): value for _, value, label in choices})
    return found


def play(player: Throwaway, number: int, pick) -> None:
    """Start, then submit `pick(question text, labels on the page)` → the label chosen."""
    link = player.links[number]
    page = player.client.get(link).get_data(as_text=True)
    name, token = token_field(page)
    assert player.client.post(f"{link}/start", data={name: token}).status_code == 303
    page = player.client.get(link).get_data(as_text=True)
    data = {"csrf_token": csrf_from(page)}
    for text, (name, choices) in questions_on(page).items():
        data[name] = choices[pick(text, list(choices))]
    response = player.client.post(f"{link}/submit", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def send_value_zero(player: Throwaway, number: int):
    """Start, then send 0 (a choice's index in the bank, alike for everyone) for every question."""
    link = player.links[number]
    page = player.client.get(link).get_data(as_text=True)
    player.client.post(f"{link}/start", data=dict([token_field(page)]))
    page = player.client.get(link).get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), **{name: "0" for name, _ in questions_on(page).values()}}
    return player.client.post(f"{link}/submit", data=data)


def first_question_is(number: int, k: int):
    """Question 1 answered with its k-th choice in the bank, every other with its first: picked by
    label text, so the answers are the same whatever the page's order or choice values."""
    first = ROUNDS[number][0][0]
    return lambda text, labels: IN_BANK[text][k if text == first else 0]


def all_first_on_page(text, labels):
    return labels[0]


def views(app, player: Throwaway, number: int) -> dict[str, str]:
    """Every public response this player can get while round `number` is open."""
    link, client = player.links[number], player.client
    fragment = {"HX-Request": "true"}
    with app.test_request_context("/ws"):
        frame = live_stage()  # what the hub pushes to every projector
    return {"report": client.get(player.report).get_data(as_text=True),
            "round page": client.get(link).get_data(as_text=True),
            "round poll": client.get(link, headers=fragment).get_data(as_text=True),
            "leaderboard": json_of(client.get(f"/api/leaderboard/{number}")),
            "shadow": json_of(client.get("/api/shadow")),
            "display": client.get("/display").get_data(as_text=True),
            "display poll": client.get("/display", headers=fragment).get_data(as_text=True),
            "websocket frame": frame}


def json_of(response) -> str:
    """A JSON answer with every user id masked as ME / OTHER by the normalizer (see mask)."""
    def ids(value):
        if isinstance(value, dict):
            return {k: (f"@id{v}@" if k == "user_id" else ids(v)) for k, v in value.items()}
        return [ids(v) for v in value] if isinstance(value, list) else value
    return f"{response.status_code} " + json.dumps(ids(response.get_json()), sort_keys=True)


def mask(text: str, me: Throwaway, everyone: list[Throwaway], closed: set[int]) -> str:
    """What legitimately differs between players' views, masked from `me`'s side."""
    for number in closed:  # a closed round's results are public: not what this test is about
        text = re.sub(rf'<tr class="round-row" data-round="{number}">.*?</tr>', "", text,
                      flags=re.S)
        text = re.sub(rf'<section class="card answers-card" id="answers-{number}">.*?</section>',
                      "", text, flags=re.S)  # and, once final, their answers beside the right ones
    for player in everyone:
        who = "ME" if player is me else "OTHER"
        text = text.replace(f"@id{player.user_id}@", who).replace(player.name, who)
        for secret in player.secrets:
            text = text.replace(secret, f"{who}-CODE")
    text = re.sub(r"<svg.*?</svg>", "<svg/>", text, flags=re.S)  # QR codes of the codes
    text = re.sub(r'(name="(?:csrf_token|form_token)" value=")[^"]+"', r'\1TOKEN"', text)
    text = re.sub(r"[\w-]{20,}\.[\w-]{4,}\.[\w-]{20,}", "TOKEN", text)  # signed, e.g. in hx-headers
    text = re.sub(r"delay:\d+(\.\d+)?s", "delay:Ns", text)  # poll jitter
    text = re.sub(r"\d+\.\d s\b", "T s", text)
    return re.sub(r"\b\d\d:\d\d\b", "HH:MM", text)


def assert_nothing_tells_them_apart(app, group: list[Throwaway], everyone, number: int,
                                    closed: set[int]) -> None:
    seen = {p.name: {k: mask(v, p, everyone, closed) for k, v in views(app, p, number).items()}
            for p in group}
    first = seen[group[0].name]
    for name, mine in seen.items():
        for what, body in mine.items():
            assert body == first[what], f"{what} differs for {name} in round {number}"
    assert "results when the round ends" in first["report"].replace("\n", " ")


@pytest.fixture
def cheaters(app, api_headers):
    apply_bank(parse_bank(BANK))
    db.session.commit()
    everyone = [register(app, n) for n in range(len(NAMES))]
    return everyone


def test_throwaways_differing_in_one_answer_learn_nothing_while_the_round_is_open(
        app, client, cheaters, api_headers):
    everyone = cheaters
    round1, all_first, round2, shadow = (everyone[0:4], everyone[4], everyone[5:9],
                                         everyone[9:13])
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    for k, player in enumerate(round1):
        play(player, 1, first_question_is(1, k))
    for player in round2:  # the same answers each: the same history for round 2
        play(player, 1, first_question_is(1, 0))
    play(all_first, 1, all_first_on_page)
    assert_nothing_tells_them_apart(app, [*round1, all_first, *round2], everyone, 1, set())
    # The all-value-0 strategy (a bank index for every answer) is refused; nothing is stored.
    zero = everyone[13]
    refused = send_value_zero(zero, 1)
    assert refused.status_code == 422
    assert "Reload the page and choose again" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Submission)
                             .where(Submission.participant_id == zero.user_id)) == 0

    # Closed: the results show, and differ (the mask hides none of it).
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    scores = {mask(client.get(p.report).get_data(as_text=True), p, everyone, set())
              for p in round1}
    assert len(scores) > 1
    assert json.loads(json_of(client.get("/api/leaderboard/1"))[4:])["entries"]

    # Round 2: four more for the prize, four throwaways out since round 1 in the shadow league.
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    for k, (player, ghost) in enumerate(zip(round2, shadow)):
        play(player, 2, first_question_is(2, k))
        play(ghost, 2, first_question_is(2, k))
    play(all_first, 2, all_first_on_page)
    assert_nothing_tells_them_apart(app, [*round2, all_first], everyone, 2, {1})
    assert_nothing_tells_them_apart(app, shadow, everyone, 2, {1})
