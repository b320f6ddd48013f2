"""Players and organizers over plain HTTP, and the projector over its websocket: shared by the
live tests and bin/screenshots.py."""
import re
import time

import requests
import websocket
import yaml

from quiz.rehearsal_pages import answer_token, form_fields, question_choices, question_texts

from .helpers import ROOT

DEMO_BANK = ROOT / "questions" / "demo.yaml"


def answer_key() -> dict[int, dict[str, set[str]]]:
    """Round number → question text → its right choices, from the demo bank (each player gets the
    questions in an order of their own: a page is read by its question texts, never by position)."""
    bank = yaml.safe_load(DEMO_BANK.read_text())
    return {c["number"]: {q["text"]: set(q["answer"]) if isinstance(q["answer"], list)
                          else {q["answer"]} for q in c["questions"]}
            for c in bank["challenges"]}


KEY = answer_key()


def load_demo_bank(stack) -> None:
    stack.flask("questions", "load", str(DEMO_BANK))


class Api:
    """The organizer's JSON API and the SMS outbox, over HTTP."""

    def __init__(self, url: str, token: str = "live-token"):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    def register(self, name: str, n: int) -> dict:
        response = requests.post(f"{self.url}/api/register", json={
            "name": name, "email": f"player{n}@example.com", "phone": f"+1415555{n:04d}",
            "company": "Acme", "consent": True})
        assert response.status_code == 201, response.text
        return response.json()

    def start(self, number: int) -> None:
        response = requests.post(f"{self.url}/api/admin/start-challenge/{number}",
                                 headers=self.headers)
        assert response.status_code == 200, response.text

    def end(self, number: int) -> dict:
        """End Round; a timed round everyone has answered may have closed itself first (then its
        counts come from its leaderboard, `closed_itself` set)."""
        response = requests.post(f"{self.url}/api/admin/end-challenge/{number}",
                                 headers=self.headers)
        if response.status_code == 409 and response.json()["error"] == "not_open":
            board = requests.get(f"{self.url}/api/leaderboard/{number}", headers=self.headers)
            if board.json()["status"] == "closed":
                entries = board.json()["entries"]
                return {"closed_itself": True,
                        "submitted": sum(e["score"] is not None for e in entries)}
        assert response.status_code == 200, response.text
        return response.json()

    def outbox(self) -> list[dict]:
        """Every SMS the outbox holds (GET /api/admin/outbox)."""
        response = requests.get(f"{self.url}/api/admin/outbox?limit=100000", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()["messages"]

    def sms_link(self, phone: str, number: int, timeout: float = 20) -> str:
        """The round link the worker texted to `phone`, once it is in the outbox."""
        deadline = time.monotonic() + timeout
        while True:
            messages = requests.get(f"{self.url}/api/admin/outbox",
                                    headers=self.headers).json()["messages"]
            for m in messages:
                if m["to"] == phone and m["challenge"] == number and m["kind"] == "round_link":
                    return re.search(r"(http://\S+/f/\S+)", m["body"]).group(1)
            assert time.monotonic() < deadline, f"no round {number} SMS to {phone}: {messages}"
            time.sleep(0.2)


def answer_over_http(link: str, number: int, right: bool = True, think: float = 0) -> None:
    """A phone without JavaScript: open the link, press Start, post every answer (right or wrong)
    `think` s later."""
    http = requests.Session()
    page = http.get(link).text
    assert "Ready?" in page, page[:2000]
    assert http.post(f"{link}/start", data=form_fields(page, "/start")).status_code == 200
    page = http.get(link).text
    questions, texts = question_choices(page), question_texts(page)
    assert len(questions) == len(KEY[number]), page[:2000]
    data = answer_token(page)
    for name, options in questions.items():
        correct = KEY[number][texts[name]]
        chosen = sorted(correct) if right else [next(o for o in options if o not in correct)]
        data[name] = [options[c] for c in chosen]
    time.sleep(think)
    response = http.post(f"{link}/submit", data=data)
    assert response.status_code == 200 and "Answers in" in response.text, response.text[:2000]


def ready_phone(link: str, number: int) -> tuple[requests.Session, dict]:
    """A phone that opened its link and pressed Start, with its (right) answers ready to post."""
    phone = requests.Session()
    page = phone.get(link).text
    assert phone.post(f"{link}/start", data=form_fields(page, "/start")).status_code == 200
    page = phone.get(link).text
    data, texts = answer_token(page), question_texts(page)
    for name, choices in question_choices(page).items():
        data[name] = [choices[c] for c in sorted(KEY[number][texts[name]])]
    return phone, data


def round_links(api: Api, number: int, players: int) -> dict[str, str]:
    """Phone → round link, once the worker has texted them all."""
    deadline = time.monotonic() + 60
    while requests.get(f"{api.url}/api/admin/sms-progress/{number}",
                       headers=api.headers).json()["sent"] < players:
        assert time.monotonic() < deadline, "round links were not all sent"
        time.sleep(0.2)
    messages = requests.get(f"{api.url}/api/admin/outbox?limit=100000",
                            headers=api.headers).json()["messages"]
    return {m["to"]: re.search(r"(http://\S+/f/\S+)", m["body"]).group(1)
            for m in messages if m["challenge"] == number and m["kind"] == "round_link"}


def connect(stack, topic="display", origin=None) -> websocket.WebSocket:
    """A websocket on the stack's /ws, as the projector (or the console: topic "admin") opens it."""
    return websocket.create_connection(stack.url.replace("http", "ws") + f"/ws?topic={topic}",
                                       timeout=10, origin=origin)


def wait_for(ws, text: str, seconds: float = 5) -> str:
    """Frames until one contains `text` (a change may arrive a tick after another)."""
    deadline = time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, f"no frame with {text!r}"
        frame = ws.recv()
        if text in frame:
            return frame
