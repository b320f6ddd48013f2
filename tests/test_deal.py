"""What each player is dealt (quiz/deal.py): opaque choice values of their own, their own order of
questions and choices, a pool's draw; and a cheater with a laptop learning nothing from any of it.
"""
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from quiz.deal import choice_order, choice_value, choice_values, drawn
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Submission
from quiz.stored_forms import FormRow, render_form

from .helpers import answer_form, choice_values as page_values, csrf_from, start, text

SECRET = "test-secret"
codes = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                min_size=16, max_size=32)

# The right answer listed first, as banks often do: "always the first choice" would win it all.
FIRST_BANK = """
challenges:
  - number: 1
    title: Answer first
    questions:
""" + "".join(f"""      - text: Question {i}?
        choices: [right{i}, wrong{i}a, wrong{i}b]
        answer: right{i}
""" for i in range(1, 5))

POOL_BANK = """
challenges:
  - number: 1
    title: Pool
    draw: 2
    questions:
""" + "".join(f"""      - text: Pool question {i}?
        choices: [right{i}, wrong{i}]
        answer: right{i}
        points: 2
""" for i in range(1, 7))


# --- the rules, pure ----------------------------------------------------------------------------

@given(codes, st.integers(1, 10**6), st.integers(0, 20))
def test_a_value_is_16_hex_digits_and_reads_back_to_its_choice(code, question_id, index):
    value = choice_value(SECRET, code, question_id, index)
    assert re.fullmatch(r"[0-9a-f]{16}", value)
    assert value == choice_value(SECRET, code, question_id, index)  # the page and submit agree
    assert choice_values(SECRET, code, question_id, index + 1)[value] == index


@given(codes, codes, st.integers(1, 10**6), st.integers(1, 10**6), st.integers(0, 9),
       st.integers(0, 9))
def test_values_differ_per_link_question_and_choice(code, other_code, question, other_question,
                                                    index, other_index):
    if (code, question, index) != (other_code, other_question, other_index):
        assert (choice_value(SECRET, code, question, index)
                != choice_value(SECRET, other_code, other_question, other_index))


@given(codes, st.integers(1, 10**6))
def test_a_value_needs_the_secret(code, question_id):
    assert choice_value(SECRET, code, question_id, 0) != choice_value("guess", code, question_id, 0)


@given(st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
       st.integers(0, 2**31 - 1))
def test_a_draw_is_k_different_questions_of_the_pool_the_same_each_time(size, seed):
    count, draw = size
    pool = list(range(100, 100 + count))
    hand = drawn(pool, seed, draw)
    assert len(hand) == len(set(hand)) == draw and set(hand) <= set(pool)
    assert drawn(pool, seed, draw) == hand


@given(st.lists(st.integers(), min_size=1, max_size=20, unique=True), st.integers(0, 2**31 - 1))
def test_without_a_draw_every_question_is_asked_in_the_players_order(questions, seed):
    assert sorted(drawn(questions, seed, None)) == sorted(questions)
    assert sorted(choice_order(seed, 7, len(questions))) == list(range(len(questions)))


def test_orders_and_draws_differ_across_players_and_favour_no_question():
    """Seeded: 600 players (seeds 0..599). The choice listed first in the bank lands in each place
    about a third of the time, each question of a pool is drawn about as often as another, and
    each is asked first about as often."""
    seeds = range(600)
    places = Counter(choice_order(seed, 7, 3).index(0) for seed in seeds)
    assert set(places) == {0, 1, 2} and all(150 <= n <= 250 for n in places.values())
    draws = Counter(q for seed in seeds for q in drawn("abcdef", seed, 2))
    assert set(draws) == set("abcdef") and all(150 <= n <= 250 for n in draws.values())
    firsts = Counter(drawn("abcd", seed, None)[0] for seed in seeds)
    assert set(firsts) == set("abcd") and all(110 <= n <= 190 for n in firsts.values())


# --- through the app ----------------------------------------------------------------------------

@pytest.fixture
def room(client, load_bank, make_participant, open_round):
    """Players on a bank, each link with a fixed seed (a seeded room), round 1 open; their codes."""
    def make(bank: str, players: int) -> list[str]:
        load_bank(bank)
        ids = [make_participant().id for _ in range(players)]
        links = db.session.scalars(select(FormLink).where(FormLink.participant_id.in_(ids))
                                   .order_by(FormLink.participant_id)).all()
        for seed, link in enumerate(links, start=1):
            link.seed = seed * 7919
        db.session.commit()
        open_round()
        for link in links:
            start(client, link.code)
        return [link.code for link in links]
    return make


def stored_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Submission))


def shown(client, code) -> tuple[str, dict[str, list[tuple[str, str]]]]:
    """The questions page's token and, per question in page order, its (value, label)s in order."""
    page = client.get(f"/f/{code}").get_data(as_text=True)
    fields: dict[str, list] = {}
    for name, value, label in re.findall(r'name="(q\d+)" value="([^"]+)"[^>]*>\s*<span>([^<]*)<',
                                         page):
        fields.setdefault(name, []).append((value, label))
    return csrf_from(page), fields


def test_value_0_everywhere_is_refused_and_nothing_is_stored(client, room):
    for code in room(FIRST_BANK, 4):
        token, fields = shown(client, code)
        response = client.post(f"/f/{code}/submit",
                               data={"csrf_token": token, **{name: "0" for name in fields}})
        assert response.status_code == 422
        assert "Reload the page and choose again" in text(response)
    assert stored_count() == 0


def test_the_first_choice_everywhere_scores_as_chance_would(client, room):
    """The bank lists every right answer first; twelve seeded players tick the first choice their
    page shows, everywhere: each scores what their deal says, and the room about a third."""
    codes = room(FIRST_BANK, 12)
    expected = 0
    for code in codes:
        token, fields = shown(client, code)
        client.post(f"/f/{code}/submit",
                    data={"csrf_token": token, **{n: c[0][0] for n, c in fields.items()}})
        link = db.session.scalar(select(FormLink).where(FormLink.code == code))
        right = sum(c[0][1].startswith("right") for c in fields.values())
        assert right == sum(choice_order(link.seed, q.id, 3)[0] == 0
                            for q in link.challenge.questions)
        assert db.session.scalar(select(Submission.score).where(
            Submission.participant_id == link.participant_id)) == right
        expected += right
    assert stored_count() == 12
    assert 8 <= expected <= 24  # of 48 questions: chance is 16, "always first" would have been 48


def test_another_players_values_are_refused_then_their_own_page_works(client, room):
    mine, theirs = room(FIRST_BANK, 2)
    token, my_fields = shown(client, mine)
    _, their_fields = shown(client, theirs)
    assert set(my_fields) == set(their_fields)  # the same questions...
    # ...under other values: their right answers, posted on my link
    right = {name: next(v for v, label in choices if label.startswith("right"))
             for name, choices in their_fields.items()}
    response = client.post(f"/f/{mine}/submit", data={"csrf_token": token, **right})
    assert response.status_code == 422 and "Reload the page and choose again" in text(response)
    assert stored_count() == 0


def test_a_page_of_another_link_goes_stale_and_the_refusal_carries_fresh_values(client, room):
    """A shared phone: the form of one link still open while another link was loaded; posted to
    the new link, it is refused, and the page that says so carries the new link's own values."""
    old, new = room(FIRST_BANK, 2)
    token, old_fields = answer_form(client, old)
    client.get(f"/f/{new}")  # the reload, on the other link
    stale = {name: options[f"right{i}"] for i, (name, options) in
             enumerate(old_fields.items(), start=1)}
    refused = client.post(f"/f/{new}/submit", data={"csrf_token": token, **stale})
    assert refused.status_code == 422 and stored_count() == 0
    fresh = page_values(refused.get_data(as_text=True))
    assert set(fresh) == set(stale) and not {v for o in fresh.values() for v in o.values()} & {
        v for o in old_fields.values() for v in o.values()}
    picks = {name: options[f"right{i}"] for i, (name, options) in enumerate(fresh.items(), 1)}
    assert client.post(f"/f/{new}/submit", data={"csrf_token": token, **picks}).status_code == 303
    assert db.session.scalar(select(Submission.score)) == 4


def test_questions_come_in_each_players_own_order_the_same_on_every_load(client, room):
    codes = room(FIRST_BANK, 8)
    orders = {code: list(shown(client, code)[1]) for code in codes}
    assert len({tuple(order) for order in orders.values()}) > 1
    assert {frozenset(order) for order in orders.values()} == {frozenset(orders[codes[0]])}
    for code in codes[:3]:
        assert list(shown(client, code)[1]) == orders[code]
    # and scoring goes by question, whatever the order
    token, fields = answer_form(client, codes[0])
    picks = {name: options[f"right{i}"] for i, (name, options) in enumerate(fields.items(), 1)}
    assert client.post(f"/f/{codes[0]}/submit",
                       data={"csrf_token": token, **picks}).status_code == 303
    assert db.session.scalar(select(Submission.score)) == 4


def test_a_pool_deals_k_questions_per_player_the_same_on_page_and_stored_form(client, room):
    codes = room(POOL_BANK, 8)
    hands = {}
    for code in codes:
        _, fields = shown(client, code)
        assert len(fields) == 2
        assert list(shown(client, code)[1]) == list(fields)  # deterministic
        link = db.session.scalar(select(FormLink).where(FormLink.code == code))
        stored = render_form(FormRow(link, None)).decode()
        assert re.findall(r'name="(q\d+)" value="([^"]+)"', stored) == [
            (name, value) for name, choices in fields.items() for value, _ in choices]
        hands[code] = fields
    assert len({frozenset(fields) for fields in hands.values()}) > 1


def test_answers_to_questions_not_drawn_are_refused_and_a_score_counts_only_the_draw(
        client, room):
    codes = room(POOL_BANK, 3)
    questions = {f"q{q.id}": q for q in db.session.scalar(select(Challenge)).questions}
    for code in codes:
        token, fields = shown(client, code)
        right = {name: next(v for v, label in choices if label.startswith("right"))
                 for name, choices in fields.items()}
        # a question of the pool not drawn for this player, under this link's own value for it
        undrawn = next(name for name in questions if name not in fields)
        extra = choice_value(SECRET, code, questions[undrawn].id, 0)
        refused = client.post(f"/f/{code}/submit",
                              data={"csrf_token": token, **right, undrawn: extra})
        assert refused.status_code == 422 and "not in this round" in text(refused)
        assert stored_count() == codes.index(code)
        assert client.post(f"/f/{code}/submit",
                           data={"csrf_token": token, **right}).status_code == 303
    scores = db.session.scalars(select(Submission.score)).all()
    assert scores == [4, 4, 4]  # K × points: 2 drawn questions of 2 points
    assert all(len(answers) == 2 for answers in db.session.scalars(select(Submission.answers)))


def test_the_ready_page_says_how_many_questions_a_pool_asks(client, load_bank, make_participant,
                                                            open_round):
    load_bank(POOL_BANK)
    code = db.session.scalar(select(FormLink.code).where(
        FormLink.participant_id == make_participant().id))
    open_round()
    assert "2 questions." in text(client.get(f"/f/{code}"))
