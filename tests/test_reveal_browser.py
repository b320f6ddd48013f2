"""The reveal in a real browser: a 3-round event whose projector, once each round is final, shows
its questions, the right answers and the room's true answers (checked against the database),
stepped from the console, then the leaderboard — live, never reloaded."""
import json
from collections import Counter

import pytest
import sqlalchemy
from playwright.sync_api import expect

from .browser_fixtures import (POLL, PROJECTOR, assert_not_reloaded, console_login, mark_page,
                               stage_fits)
from .live_fixtures import running_stack
from .players import Api, answer_over_http

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def quick_stack(tmp_path, redis_url):
    """The live stack with the demo bank, whose rounds are final 2 s after their close."""
    with running_stack(tmp_path, redis_url, demo_bank=True, RESULTS_DELAY_SECONDS="2") as stack:
        yield stack


def room_answers(stack, number: int) -> dict[str, dict]:
    """Question text → right choices, answered, and picks per choice: from the database."""
    engine = sqlalchemy.create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            questions = connection.execute(sqlalchemy.text(
                "SELECT q.id, q.text, q.choices, q.answer FROM question q JOIN challenge c "
                "ON c.id = q.challenge_id WHERE c.number = :n ORDER BY q.position"),
                {"n": number}).all()
            stored = [row[0] for row in connection.execute(sqlalchemy.text(
                "SELECT s.answers FROM submission s JOIN challenge c ON c.id = s.challenge_id "
                "WHERE c.number = :n"), {"n": number})]
    finally:
        engine.dispose()
    result = {}
    for qid, text, choices, answer in questions:
        choices, answer = (json.loads(v) if isinstance(v, str) else v for v in (choices, answer))
        answers = [json.loads(a) if isinstance(a, str) else a for a in stored]
        picks = Counter(c for a in answers for c in a.get(str(qid), []))
        result[text] = {"right": answer, "answered": sum(str(qid) in a for a in answers),
                        "picks": {c: picks[c] for c in choices}}
    return result


def check_question(page, truth: dict) -> str:
    """The projector's question matches the database: every bar's count, the right one marked."""
    text = page.locator(".reveal-question").inner_text()
    expected = truth[text]
    bars = page.locator(".bar")
    expect(bars).to_have_count(len(expected["picks"]))
    for choice, count in expected["picks"].items():
        bar = page.locator(f'.bar[data-choice="{choice}"]')
        expect(bar).to_have_attribute("data-count", str(count))
        percent = round(100 * count / expected["answered"]) if expected["answered"] else 0
        expect(bar.locator(".count")).to_have_text(f"{percent}% · {count}")
        expect(bar).to_have_class("bar right" if choice in expected["right"] else "bar wrong")
    stage_fits(page)
    return text


def press(console, number: int, button: str, shows: str) -> None:
    """Press the round's Previous or Next in the console and wait for its answer."""
    console.locator(f"#reveal-{number}").get_by_role("button", name=button).click()
    expect(console.locator(".flash-ok")).to_have_text(
        f"The projector shows round {number}'s {shows}.")


def test_projector_reveals_each_round_stepped_from_the_console(quick_stack, new_page):
    stack, api = quick_stack, Api(quick_stack.url)
    links = [api.register(name, n)["form_urls"] for n, name in enumerate(
        ["Ada", "Bob", "Cy", "Di", "Ed", "Flo"], start=40)]
    display = new_page(**PROJECTOR)
    display.goto(f"{stack.url}/display")
    mark_page(display)
    console = new_page(viewport={"width": 1440, "height": 900})
    console_login(console, stack.url, "/admin/")
    plans = {1: [True, True, True, False, False, False], 2: [True, True, False], 3: [True]}
    for number, plan in plans.items():
        api.start(number)
        for link, right in zip(links, plan):
            answer_over_http(link[str(number)], number, right=right)
        api.end(number)
        truth = room_answers(stack, number)
        # final 2 s after the close: the projector moves to question 1 by itself
        expect(display.locator(".reveal .round-label")).to_have_text(
            f"Round {number} · question 1 of {len(truth)}", timeout=POLL)
        seen = [check_question(display, truth)]
        console.reload()
        expect(console.locator(f"#reveal-{number}")).to_contain_text(f"question 1 of {len(truth)}")
        for step in range(2, len(truth) + 1):
            press(console, number, "Next ▶", f"question {step} of {len(truth)}")
            expect(display.locator(".reveal .round-label")).to_have_text(
                f"Round {number} · question {step} of {len(truth)}", timeout=POLL)
            seen.append(check_question(display, truth))
        assert sorted(seen) == sorted(truth)  # every question, once
        press(console, number, "◀ Previous", f"question {len(truth) - 1} of {len(truth)}")
        expect(display.locator(".reveal .round-label")).to_contain_text(
            f"question {len(truth) - 1} of", timeout=POLL)
        press(console, number, "Next ▶", f"question {len(truth)} of {len(truth)}")
        press(console, number, "Next ▶", "the leaderboard")
        # then the leaderboard (or, after the final, the podium) as before
        final = display.locator(".podium" if number == 3 else "ol.board")
        expect(final).to_be_visible(timeout=POLL)
        expect(console.locator(f"#reveal-{number}")).to_contain_text("the leaderboard")
    expect(display.get_by_role("heading", level=1)).to_have_text("🏆 Ada wins!")
    assert_not_reloaded(display)
