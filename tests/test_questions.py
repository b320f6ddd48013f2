"""The question bank: load, reload, and bad files that name the line and change nothing."""
import pytest
from sqlalchemy import func, select

from quiz.extensions import db
from quiz.models import Challenge, FormLink, Question
from quiz.questions import BankError, parse_bank

from .helpers import ROOT, SMALL_BANK


def counts():
    return (db.session.scalar(select(func.count()).select_from(Challenge)),
            db.session.scalar(select(func.count()).select_from(Question)))


def test_cli_loads_the_demo_bank_and_reloading_changes_nothing(runner, tmp_path):
    result = runner.invoke(args=["questions", "load", str(ROOT / "questions" / "demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "added round 1" in result.output
    assert counts() == (3, 8)
    first = [(q.id, q.text, q.choices, q.answer)
             for q in db.session.scalars(select(Question).order_by(Question.id))]
    again = runner.invoke(args=["questions", "load", str(ROOT / "questions" / "demo.yaml")])
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert [(q.id, q.text, q.choices, q.answer)
            for q in db.session.scalars(select(Question).order_by(Question.id))] == first


def test_settings_parse_with_their_types():
    rounds = parse_bank(SMALL_BANK)
    assert [r.number for r in rounds] == [1, 2]
    assert rounds[1].scoring == "speed" and rounds[1].time_limit_seconds == 60
    assert rounds[0].questions[1] == {"kind": "choice", "text": "Which are databases?",
                                      "choices": ["RDS", "Lambda", "DynamoDB"],
                                      "answer": ["RDS", "DynamoDB"], "points": 2}
    assert rounds[1].questions[0]["choices"] == ["3", "4", "5"]


def test_editing_a_draft_round_replaces_its_questions_and_links_survive(
        load_bank, make_participant):
    load_bank()
    participant = make_participant()
    codes = set(db.session.scalars(select(FormLink.code)
                                   .where(FormLink.participant_id == participant.id)))
    load_bank(SMALL_BANK.replace("Which service stores objects?", "Which service stores blobs?"))
    assert db.session.scalar(select(Question.text).join(Challenge).where(
        Challenge.number == 1, Question.position == 1)) == "Which service stores blobs?"
    assert set(db.session.scalars(select(FormLink.code)
                                  .where(FormLink.participant_id == participant.id))) == codes


def test_new_round_gets_links_for_existing_players(load_bank, make_participant):
    load_bank()
    participant = make_participant()
    load_bank(SMALL_BANK + """
  - number: 3
    title: Third
    questions:
      - text: Yes?
        choices: [yes, no]
        answer: yes
""")
    assert db.session.scalar(select(func.count()).select_from(FormLink).where(
        FormLink.participant_id == participant.id)) == 3


BAD_BANKS = [
    ("challenges: [", 1, "not valid YAML"),
    ("", None, "empty"),
    ("rounds: []", 1, "unknown key 'rounds'"),
    ("challenges:\n  - number: 1\n    title: A\n    questions: []", 4, "has no questions"),
    ("challenges:\n  - number: 0\n    title: A\n    questions: []", 2,
     "number should be a whole number"),
    ("challenges:\n  - number: 1\n    titel: A\n", 3, "unknown key 'titel'"),
    ("challenges:\n  - number: 1\n    title: A\n    keep_fraction: 1.5\n    questions: []", 4,
     "keep_fraction"),
    ("challenges:\n  - number: 1\n    title: A\n    scoring: fastest\n    questions: []", 4,
     "scoring should be one of"),
    ("challenges:\n  - number: 1\n    title: A\n    questions:\n"
     "      - text: Q\n        choices: [a, b]\n        answer: c\n",
     7, "answer 'c' is not one of its choices"),
    ("challenges:\n  - number: 1\n    title: A\n    questions:\n"
     "      - text: Q\n        choices: [a]\n        answer: a\n",
     6, "at least two choices"),
    ("challenges:\n  - number: 1\n    title: A\n    questions:\n"
     "      - text: Q\n        choices: [a, a]\n        answer: a\n",
     6, "same choice twice"),
    ("challenges:\n  - number: 1\n    title: A\n    questions:\n"
     "      - choices: [a, b]\n        answer: a\n",
     5, "has no 'text'"),
    ("challenges:\n  - number: 1\n    title: A\n    time_limit_seconds: soon\n    questions: []", 4,
     "time_limit_seconds"),
    ("challenges:\n  - number: 1\n    title: A\n    questions:\n"
     "      - text: Q\n        choices: [a, b]\n        answer: a\n        points: 0\n",
     8, "points should be 1 to 1000"),
    ("challenges:\n  - number: 1\n    title: A\n    questions:\n"
     "      - text: Q\n        choices: [a, b]\n        answer: a\n"
     "  - number: 1\n    title: B\n    questions:\n"
     "      - text: Q\n        choices: [a, b]\n        answer: a\n", 8, "appears twice"),
]


@pytest.mark.parametrize("text, line, problem", BAD_BANKS)
def test_bad_bank_names_line_and_problem(text, line, problem):
    with pytest.raises(BankError) as caught:
        parse_bank(text)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_bad_file_changes_nothing(runner, load_bank, tmp_path):
    load_bank()
    before = counts()
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL_BANK.replace("answer: S3", "answer: S4"))
    result = runner.invoke(args=["questions", "load", str(bad)])
    assert result.exit_code != 0
    assert "line 9" in result.output and "'S4' is not one of its choices" in result.output
    assert "Nothing was changed" in result.output
    assert counts() == before


def test_open_round_cannot_change(load_bank, make_participant, client, api_headers):
    load_bank()
    make_participant()
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    with pytest.raises(BankError, match="round 1 is open"):
        load_bank(SMALL_BANK.replace("Warm-up", "Renamed"))
    db.session.rollback()
    assert db.session.scalar(select(Challenge.title).where(Challenge.number == 1)) == "Warm-up"
    load_bank()  # the same bank again is fine


PHOTO_ROUND = "challenges:\n  - number: 1\n    title: A\n    questions:\n"


@pytest.mark.parametrize("text, line, problem", [
    (PHOTO_ROUND + "      - type: video\n        text: Film it\n", 5,
     "type should be one of: choice, photo (got 'video')"),
    (PHOTO_ROUND + "      - type: photo\n        text: Selfie\n        choices: [a, b]\n", 7,
     "is a photo question: it takes no 'choices'"),
    (PHOTO_ROUND + "      - type: photo\n        text: Selfie\n        answer: a\n", 7,
     "it takes no 'answer'"),
    (PHOTO_ROUND + "      - type: photo\n        points: 2\n", 5, "has no 'text'"),
    (PHOTO_ROUND + "      - type: photo\n        text: '  '\n", 6, "text should not be empty"),
    (PHOTO_ROUND + "      - type: photo\n        text: Selfie\n        points: 5000\n", 7,
     "points should be 1 to 1000"),
    (PHOTO_ROUND + "      - type: [photo]\n        text: Selfie\n", 5,
     "type should be a single value"),
    (PHOTO_ROUND + "      - type: choice\n        text: Q\n", 5, "has no 'choices'"),
])
def test_bad_photo_questions_name_line_and_problem(text, line, problem):
    with pytest.raises(BankError) as caught:
        parse_bank(text)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_photo_questions_load_with_their_kind_and_reloading_changes_nothing(runner, tmp_path):
    bank = tmp_path / "photo.yaml"
    bank.write_text(PHOTO_ROUND + "      - text: Q\n        choices: [a, b]\n        answer: a\n"
                    "      - type: photo\n        text: A selfie at booth 12\n        points: 3\n")
    assert runner.invoke(args=["questions", "load", str(bank)]).exit_code == 0
    questions = db.session.scalars(select(Question).order_by(Question.position)).all()
    assert [(q.kind, q.text, q.choices, q.answer, q.points) for q in questions] == [
        ("choice", "Q", ["a", "b"], ["a"], 1), ("photo", "A selfie at booth 12", [], [], 3)]
    assert [q.type.upload for q in questions] == [False, True]
    again = runner.invoke(args=["questions", "load", str(bank)])
    assert "nothing to change" in again.output


def pool(draw: str, points: tuple = (1, 1, 1)) -> str:
    """A round of three questions drawing `draw` of them per player; `points` of each (1 unsaid)."""
    questions = "".join(f"      - text: Q{i}\n        choices: [a, b]\n        answer: a\n"
                        + (f"        points: {p}\n" if p != 1 else "")
                        for i, p in enumerate(points, start=1))
    return ("challenges:\n  - number: 1\n    title: A\n"
            f"    draw: {draw}\n    questions:\n{questions}")


def test_a_pool_loads_with_its_draw_and_a_round_without_draw_asks_everything(load_bank):
    load_bank(pool("2", (3, 3, 3)) + "  - number: 2\n    title: B\n    questions:\n"
              "      - text: Q\n        choices: [a, b]\n        answer: a\n")
    first, second = db.session.scalars(select(Challenge).order_by(Challenge.number))
    assert (first.draw, first.asked, len(first.questions)) == (2, 2, 3)
    assert (second.draw, second.asked) == (None, 1)


@pytest.mark.parametrize("text, line, problem", [
    (pool("4"), 4, "draw should be 1 to 3, the number of its questions (got '4')"),
    (pool("0"), 4, "draw should be 1 to 3"),
    (pool("two"), 4, "draw should be 1 to 3"),
    (pool("[2]"), 4, "draw should be a single value"),
    (pool("2", (1, 2, 1)), 12, "round 1 draws 2 of its questions per player, so they must all be "
                               "worth the same: question 2 is worth 2, question 1 1."),
    # question 3 takes the default 1 point: the line of the question itself
    (pool("1", (5, 5, 1)), 14, "question 3 is worth 1, question 1 5"),
])
def test_a_bad_pool_names_line_and_problem(text, line, problem):
    with pytest.raises(BankError) as caught:
        parse_bank(text)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_a_pools_draw_is_a_setting_that_cannot_change_once_open(load_bank, make_participant,
                                                                client, api_headers):
    load_bank(pool("2"))
    make_participant()
    load_bank(pool("3"))  # a draft: fine
    assert db.session.scalar(select(Challenge.draw)) == 3
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    with pytest.raises(BankError, match="round 1 is open"):
        load_bank(pool("1"))
    db.session.rollback()
    assert db.session.scalar(select(Challenge.draw)) == 3
