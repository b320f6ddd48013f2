"""A waiting phone in a real browser (Debian's Chromium via Playwright, the real stack): it moves on
by itself when its round opens and when it closes, and in between asks only the shared status."""
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from .a11y import audit
from .browser_fixtures import PHONE, POLL, assert_not_reloaded, mark_page, tick_right_answers
from .live_fixtures import running_stack
from .players import Api

pytestmark = [pytest.mark.browser, pytest.mark.live]


class Requests:
    """What the page asked for, and the status codes it got back."""

    def __init__(self, page):
        self.seen: list[tuple[str, int]] = []
        page.on("response", lambda response: self.seen.append((response.url, response.status)))

    def clear(self) -> None:
        self.seen.clear()

    def paths(self) -> list[str]:
        return [re.sub(r"^https?://[^/]+", "", url) for url, _ in self.seen]

    def status_polls(self) -> list[int]:
        return [code for url, code in self.seen if url.endswith("/api/status")]


def test_a_waiting_phone_moves_on_by_itself_and_polls_only_the_status(stack, api, new_page):
    link = api.register("Dale Cooper", 61)["form_urls"]["1"]
    path = re.sub(r"^https?://[^/]+", "", link)
    page = new_page(**PHONE)
    asked = Requests(page)
    page.goto(link)
    expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()
    mark_page(page)
    # Nothing changes: the phone asks the status and gets 304s (no body), nothing else.
    page.wait_for_event("response", lambda r: r.url.endswith("/api/status"), timeout=POLL)
    asked.clear()
    page.wait_for_event("response", lambda r: r.url.endswith("/api/status"), timeout=POLL)
    assert asked.status_polls() == [304] and asked.paths() == ["/api/status"]

    asked.clear()
    api.start(1)
    expect(page.get_by_role("heading", name="Ready?")).to_be_visible(timeout=POLL)
    assert_not_reloaded(page)
    # One fetch of its own page, when the status said the version changed.
    assert [p for p in asked.paths() if p != "/api/status"] == [path]
    assert asked.status_polls()[-1] == 200

    page.get_by_role("button", name="Start").click()
    tick_right_answers(page, 1)
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()
    mark_page(page)
    page.wait_for_event("response", lambda r: r.url.endswith("/api/status"), timeout=POLL)

    asked.clear()
    api.end(1)
    expect(page.locator("#round-state")).to_contain_text("ranked 1", timeout=POLL)
    assert_not_reloaded(page)
    assert [p for p in asked.paths() if p != "/api/status"] == [path]
    # The result page waits no more: no status poll after it.
    expect(page.locator("[data-status-version]")).to_have_count(0)


# Each phone in these tests draws the same random number: its poll's jitter and its fetch's delay
# are the longest they can be (the news always shows before its page's fetch).
DOCS = Path(__file__).resolve().parent.parent / "docs"
LATE = "Math.random = () => 0.99;"


@pytest.fixture
def spread_stack(request, tmp_path, redis_url):
    """The live stack with the demo bank, serving so few pages a second (the test's mark) that a
    room of one or two spreads its fetches over many seconds."""
    with running_stack(tmp_path, redis_url, demo_bank=True,
                       STATUS_PAGES_PER_SECOND=request.node.get_closest_marker("rate").args[0]) \
            as stack:
        yield stack


def fetches(asked: Requests) -> list[str]:
    """The phone's fetches of its own page."""
    return [p for p in asked.paths() if p.startswith("/f/")]


@pytest.mark.rate("0.25")  # two players: both spreads are 8 s
def test_a_room_fetches_its_pages_spread_out_and_says_so_at_once(spread_stack, new_page):
    api = Api(spread_stack.url)
    links = [api.register(name, n)["form_urls"]["1"] for name, n in (("Ada", 71), ("Bo", 72))]
    paths = [re.sub(r"^https?://[^/]+", "", link) for link in links]
    late, other = new_page(**PHONE), new_page(**PHONE)
    late.add_init_script(LATE)
    asked, other_asked = Requests(late), Requests(other)
    for page, link in ((late, links[0]), (other, links[1])):
        page.goto(link)
        expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()
        mark_page(page)
    asked.clear()
    other_asked.clear()
    api.start(1)

    # The status alone says the round is open (a live region), before the page's own fetch, and
    # offers to fetch it at once.
    news = late.get_by_role("status").filter(has_text="Round 1 is open — loading your questions…")
    expect(news).to_be_visible(timeout=POLL)
    assert fetches(asked) == []
    audit(late, "round: open, said from the status before the page's fetch")
    late.screenshot(path=str(DOCS / "phone-round-open-news.png"))
    # What the page said before no longer holds: hidden while the news stands.
    expect(late.get_by_role("heading", name="Not started yet")).to_be_hidden()
    expect(late.get_by_text("Round 1 hasn't started.")).to_be_hidden()
    late.get_by_role("button", name="Show my questions now").click()
    expect(late.get_by_role("heading", name="Ready?")).to_be_visible()
    expect(late.get_by_role("button", name="Start")).to_be_focused()
    assert fetches(asked) == [paths[0]]
    assert_not_reloaded(late)

    # The other phone, left alone, fetches its page by itself within the spread: once.
    expect(other.get_by_role("heading", name="Ready?")).to_be_visible(timeout=16_000 + POLL)
    assert fetches(other_asked) == [paths[1]]
    assert_not_reloaded(other)

    # Answered, then the round ends: the result is on its way at once, and comes within its spread
    # (no button: nobody races a clock for it).
    late.get_by_role("button", name="Start").click()
    tick_right_answers(late, 1)
    late.get_by_role("button", name="Submit answers").click()
    expect(late.get_by_role("heading", name="Answers in")).to_be_visible()
    mark_page(late)
    asked.clear()
    api.end(1)
    expect(late.get_by_role("status").filter(
        has_text="Round 1 has ended — your result is on its way.")).to_be_visible(timeout=POLL)
    expect(late.get_by_role("button", name="Show my questions now")).to_be_hidden()
    expect(late.get_by_role("heading", name="Answers in")).to_be_visible()  # still true
    expect(late.get_by_text("Your results come when the round ends")).to_be_hidden()
    assert fetches(asked) == []
    audit(late, "round: ended, said from the status before the page's fetch")
    expect(late.locator("#round-state")).to_contain_text("ranked 1", timeout=16_000 + POLL)
    assert fetches(asked) == [paths[0]]
    assert_not_reloaded(late)


@pytest.mark.rate("0.1")  # one player: the spread is 10 s (the close is heard within a poll, 4.5 s)
def test_a_phone_whose_rounds_changed_twice_during_its_delay_fetches_once(spread_stack, new_page):
    api = Api(spread_stack.url)
    link = api.register("Cy", 73)["form_urls"]["1"]
    path = re.sub(r"^https?://[^/]+", "", link)
    page = new_page(**PHONE)
    page.add_init_script(LATE)
    asked = Requests(page)
    page.goto(link)
    expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()
    asked.clear()
    api.start(1)
    expect(page.get_by_role("status")).to_contain_text("Round 1 is open", timeout=POLL)
    api.end(1)
    # The phone learns of the close (its next poll, long before its fetch is due): the news it gave
    # no longer holds, so it goes.
    expect(page.get_by_role("button", name="Show my questions now")).to_be_hidden(timeout=POLL)
    expect(page.get_by_role("status")).to_have_text("")
    expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()  # true again
    assert fetches(asked) == []
    expect(page.get_by_role("heading", name="Round closed")).to_be_visible(timeout=20_000 + POLL)
    assert fetches(asked) == [path]
    assert page.locator("[data-status-version]").count() == 0


@pytest.mark.rate("0.25")  # two players: the spread is 8 s
def test_a_change_undone_before_the_fetch_takes_its_news_and_fetch_back(spread_stack, new_page):
    api = Api(spread_stack.url)
    link = api.register("Di", 74)["form_urls"]["1"]
    api.register("Ed", 75)  # yet to play: the round can be reopened (not everyone's time is up)
    path = re.sub(r"^https?://[^/]+", "", link)
    page = new_page(**PHONE)
    page.add_init_script(LATE)
    api.start(1)
    page.goto(link)
    page.get_by_role("button", name="Start").click()
    tick_right_answers(page, 1)
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()
    asked = Requests(page)
    api.end(1)
    expect(page.get_by_role("status")).to_contain_text("Round 1 has ended", timeout=POLL)
    # Reopened as it was before its close: the page is current again, nothing to say or fetch.
    reopened = requests.post(f"{api.url}/api/admin/reopen-challenge/1", headers=api.headers)
    assert reopened.status_code == 200, reopened.text
    expect(page.get_by_role("status")).to_have_text("", timeout=POLL)
    expect(page.get_by_text("Your results come when the round ends")).to_be_visible()  # true again
    # Closed again: one fetch, for this close (the first one's was called off).
    api.end(1)
    expect(page.get_by_role("status")).to_contain_text("Round 1 has ended", timeout=POLL)
    expect(page.locator("#round-state")).to_contain_text("ranked 1", timeout=20_000 + POLL)
    assert fetches(asked) == [path]
