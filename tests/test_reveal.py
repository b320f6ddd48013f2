"""The reveal: a final round's questions, right answers and the room's answers on the projector,
stepped from the console or by the clock; nothing of it before the round is final; the player's
report shows their answers beside the right ones."""
import re
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from quiz import reveal
from quiz.clock import utcnow
from quiz.extensions import db
from quiz.models import AuditEntry, Challenge, FormLink, Participant, Submission

from .helpers import SMALL_BANK, answer_form, csrf_from, login, post_form, start, submit, text

POOL_BANK = """
challenges:
  - number: 1
    title: Pool
    draw: 2
    questions:
""" + "".join(f"""      - text: Pool question {i}?
        choices: [right{i}, wrong{i}, other{i}]
        answer: right{i}
""" for i in range(1, 6)) + """
  - number: 2
    title: After
    questions:
      - text: Last?
        choices: ["yes", "no"]
        answer: "yes"
"""


@pytest.fixture(autouse=True)
def reveal_on(app):
    """The suite's config keeps the leaderboard at a close; these tests are about the reveal."""
    app.config["REVEAL_ANSWERS"] = True


def codes_of(number: int) -> dict[int, str]:
    return {link.participant_id: link.code for link in db.session.scalars(
        select(FormLink).join(Challenge).where(Challenge.number == number))}


def end(client, api_headers, number: int):
    response = client.post(f"/api/admin/end-challenge/{number}", headers=api_headers)
    assert response.status_code == 200, response.get_json()


def expected_tallies(challenge) -> dict[str, tuple[int, int, dict]]:
    """Question text → (answered, right, picks per choice), straight from the stored answers."""
    result = {}
    subs = db.session.scalars(select(Submission).where(
        Submission.challenge_id == challenge.id)).all()
    for q in challenge.questions:
        answers = [s.answers[str(q.id)] for s in subs if str(q.id) in s.answers]
        picks = Counter(c for a in answers for c in a)
        result[q.text] = (len(answers), sum(set(a) == set(q.answer) for a in answers),
                          {c: picks[c] for c in q.choices})
    return result


def as_found(tallies) -> dict[str, tuple[int, int, dict]]:
    return {t.question.text: (t.answered, t.right, {c.text: c.count for c in t.choices})
            for t in tallies}


@pytest.fixture
def pool_round(client, load_bank, make_participant, open_round, api_headers):
    """Round 1 draws 2 of 5 questions per player, each in the player's order, with opaque values
    per player; eight players answer it, some right, some not; the round is ended."""
    load_bank(POOL_BANK)
    ids = [make_participant().id for _ in range(8)]
    open_round(1)
    codes = codes_of(1)
    for n, pid in enumerate(ids):
        assert start(client, codes[pid]).status_code == 303
        token, fields = answer_form(client, codes[pid])
        data = {"csrf_token": token}
        for name, options in fields.items():  # choice text → this player's value
            kind = ("right", "wrong", "other")[(n + int(name[1:])) % 3]
            data[name] = options[next(c for c in options if c.startswith(kind))]
        assert client.post(f"/f/{codes[pid]}/submit", data=data).status_code == 303
    end(client, api_headers, 1)
    return db.session.scalar(select(Challenge).where(Challenge.number == 1))


def test_counts_come_by_choice_identity_over_those_asked_in_a_pool(pool_round):
    found = as_found(reveal.tallies(pool_round))
    expected = expected_tallies(pool_round)
    assert found == expected
    # a pool: every player answered 2 of the 5, so 16 answers in all, and no question had all 8
    assert sum(answered for answered, _, _ in found.values()) == 16
    assert all(answered < 8 for answered, _, _ in found.values())
    for tally in reveal.tallies(pool_round):
        assert tally.right == tally.picks[tally.question.answer[0]]
        assert sum(c.count for c in tally.choices) == tally.answered
        if tally.answered:
            assert tally.right_percent == round(100 * tally.right / tally.answered)


def test_a_multiple_answer_question_is_right_only_when_exactly_right(
        client, load_bank, make_participant, open_round, api_headers):
    load_bank(SMALL_BANK)
    ids = [make_participant().id for _ in range(3)]
    open_round(1)
    codes = codes_of(1)
    for pid, picks in zip(ids, ([["S3"], ["RDS", "DynamoDB"]], [["S3"], ["RDS"]],
                                [["EC2"], ["RDS", "Lambda", "DynamoDB"]])):
        start(client, codes[pid])
        assert submit(client, codes[pid], picks).status_code == 303
    end(client, api_headers, 1)
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    found = as_found(reveal.tallies(challenge))
    assert found["Which service stores objects?"] == (3, 2, {"EC2": 1, "S3": 2, "SQS": 0})
    assert found["Which are databases?"] == (3, 1, {"RDS": 3, "Lambda": 1, "DynamoDB": 2})
    assert found == expected_tallies(challenge)


def test_the_reveal_waits_until_the_round_can_no_longer_be_reopened(app, pool_round):
    app.config["RESULTS_DELAY_SECONDS"] = 60
    closed = pool_round.closed_at
    assert not reveal.can_reveal(pool_round, closed + timedelta(seconds=59))
    assert reveal.can_reveal(pool_round, closed + timedelta(seconds=60))
    # the next round starting makes it final at once
    db.session.scalar(select(Challenge).where(Challenge.number == 2)).open(closed)
    db.session.flush()
    assert reveal.can_reveal(pool_round, closed + timedelta(seconds=1))


def test_the_clock_steps_the_reveal_when_set(app, pool_round):
    app.config["RESULTS_DELAY_SECONDS"] = 60
    app.config["REVEAL_SECONDS_PER_QUESTION"] = 10
    final = pool_round.closed_at + timedelta(seconds=60)
    assert reveal.current_step(pool_round, 5, final) == (0, 10)
    assert reveal.current_step(pool_round, 5, final + timedelta(seconds=25)) == (2, 5)
    assert reveal.current_step(pool_round, 5, final + timedelta(seconds=500)) == (5, None)
    # the console moved it back to question 1 at +25 s: the clock counts from there
    pool_round.reveal_step, pool_round.reveal_moved_at = 0, final + timedelta(seconds=25)
    assert reveal.current_step(pool_round, 5, final + timedelta(seconds=31)) == (0, 4)
    app.config["REVEAL_SECONDS_PER_QUESTION"] = 0  # manual: only the console moves it
    assert reveal.current_step(pool_round, 5, final + timedelta(seconds=500)) == (0, None)


def right_marked(page: str, answer: str) -> bool:
    """Whether the page marks `answer` as the right one (the projector's bar, the report's line)."""
    return bool(re.search(rf'class="bar right" data-choice="{re.escape(answer)}"', page)
                or re.search(rf"Right answer: <strong>{re.escape(answer)}", page)
                or re.search(rf"Your answer: <strong>{re.escape(answer)}</strong> "
                             r'<span class="mark">✔', page))


def test_nothing_shows_inside_the_reopen_window(app, client, pool_round, api_headers):
    app.config["RESULTS_DELAY_SECONDS"] = 600
    participant = db.session.scalar(select(Participant).order_by(Participant.id))
    pages = [text(client.get("/display")), text(client.get("/api/leaderboard/1")),
             text(client.get(f"/r/{participant.report_code}"))]
    for page in pages:
        assert 'class="reveal"' not in page and "answers-card" not in page
        for i in range(1, 6):
            assert not right_marked(page, f"right{i}")
    login(client)
    response = post_form(client, "/admin/", "/admin/rounds/1/reveal/next", {})
    assert response.status_code == 303
    assert "can still be reopened" in text(client.get("/admin/"))
    assert db.session.scalar(select(Challenge.reveal_step).where(Challenge.number == 1)) == 0
    # once the window is over, the same pages show it
    app.config["RESULTS_DELAY_SECONDS"] = 0
    assert 'class="reveal"' in text(client.get("/display"))
    assert "answers-card" in text(client.get(f"/r/{participant.report_code}"))


def test_the_console_steps_the_projector_and_a_reload_comes_back(client, pool_round):
    questions = reveal.revealed_questions(pool_round)
    login(client)
    page = text(client.get("/display"))
    assert f"question 1 of {len(questions)}" in page and questions[0].text in page
    expected = expected_tallies(pool_round)[questions[0].text]
    for choice, count in expected[2].items():
        assert f'data-choice="{choice}" data-count="{count}"' in page
    assert right_marked(page, questions[0].answer[0])
    assert "Projector: <strong>question 1 of 5</strong>" in text(client.get("/admin/"))
    for _ in range(2):
        assert post_form(client, "/admin/", "/admin/rounds/1/reveal/next", {}).status_code == 303
    page = text(client.get("/display"))  # a reloaded projector
    assert f"question 3 of {len(questions)}" in page and questions[2].text in page
    assert post_form(client, "/admin/", "/admin/rounds/1/reveal/previous",
                     {}).status_code == 303
    assert questions[1].text in text(client.get("/display"))
    for _ in range(10):  # past the last question: the leaderboard, as before
        post_form(client, "/admin/", "/admin/rounds/1/reveal/next", {})
    page = text(client.get("/display"))
    assert 'class="reveal"' not in page and 'class="board"' in page
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert actions.count("reveal next") == 12 and actions.count("reveal previous") == 1


def test_an_open_round_has_no_reveal_to_move(client, load_bank, make_participant, open_round):
    load_bank(SMALL_BANK)
    make_participant()
    open_round(1)
    login(client)
    page = client.get("/admin/").get_data(as_text=True)
    response = client.post("/admin/rounds/1/reveal/next", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    assert "Round 1 is open: its answers are revealed once it has closed." in text(
        client.get("/admin/"))
    missing = client.post("/admin/rounds/9/reveal/next", data={"csrf_token": csrf_from(page)})
    assert missing.status_code in (303, 404)


def test_the_report_shows_the_players_answers_beside_the_right_ones(client, pool_round):
    for participant in db.session.scalars(select(Participant)):
        sub = db.session.scalar(select(Submission).where(
            Submission.participant_id == participant.id))
        page = text(client.get(f"/r/{participant.report_code}"))
        sheet = page[page.index('id="answers-1"'):]
        asked = [q for q in pool_round.questions if str(q.id) in sub.answers]
        assert len(asked) == 2
        for q in asked:
            picked = sub.answers[str(q.id)][0]
            assert q.text in sheet and f"Your answer: <strong>{picked}</strong>" in sheet
            if picked != q.answer[0]:
                assert f"Right answer: <strong>{q.answer[0]}</strong>" in sheet
        others = [q for q in pool_round.questions if str(q.id) not in sub.answers]
        assert not any(q.text in sheet for q in others)


def test_with_the_reveal_off_the_projector_shows_the_leaderboard_at_once(app, client,
                                                                        pool_round):
    app.config["REVEAL_ANSWERS"] = False
    page = text(client.get("/display"))
    assert 'class="reveal"' not in page and 'class="board"' in page
    login(client)
    assert "reveal/next" not in client.get("/admin/").get_data(as_text=True)
    # the player's report still shows their answers: the round is final
    participant = db.session.scalar(select(Participant))
    assert "answers-card" in text(client.get(f"/r/{participant.report_code}"))


def test_reopening_a_round_resets_its_reveal(app, pool_round):
    pool_round.reveal_step, pool_round.reveal_moved_at = 3, utcnow()
    app.config["RESULTS_DELAY_SECONDS"] = 600
    from quiz.undo import reopen_round
    reopen_round(1, utcnow())
    assert (pool_round.reveal_step, pool_round.reveal_moved_at) == (0, None)


def test_the_projector_asks_again_when_the_reveal_is_due_to_move(app, client, pool_round):
    app.config["RESULTS_DELAY_SECONDS"] = 600
    page = client.get("/display").get_data(as_text=True)
    # inside the window: the leaderboard, and a fetch when the round becomes final
    assert 'class="board"' in page
    wait = int(re.search(r'hx-trigger="load delay:(\d+)s"', page)[1])
    assert 590 <= wait <= 600
    app.config["RESULTS_DELAY_SECONDS"] = 0
    app.config["REVEAL_SECONDS_PER_QUESTION"] = 10**6  # far from its next step
    page = client.get("/display").get_data(as_text=True)
    assert 'class="reveal"' in page
    assert int(re.search(r'hx-trigger="load delay:(\d+)s"', page)[1]) > 10**6 - 60
    app.config["REVEAL_SECONDS_PER_QUESTION"] = 0  # manual: nothing to fetch by itself
    assert "load delay" not in client.get("/display").get_data(as_text=True)
