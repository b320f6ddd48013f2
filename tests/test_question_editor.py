"""The console's question editor and the bank's export: every edit of a draft round goes through the
loader's checks (a bad one shows the loader's message and changes nothing), open rounds are
read-only (409), and load → export → load gives the same bank."""
import re

import pytest
from PIL import Image
from sqlalchemy import select

from quiz.extensions import db
from quiz.models import Challenge, Question

from .helpers import PHOTO_BANK, ROOT, SMALL_BANK, csrf_from, login, text
from .test_roles import snapshot


def bank_rows() -> list[tuple]:
    """Every round's settings and question, in order (what a round trip must keep)."""
    rows = []
    for c in db.session.scalars(select(Challenge).order_by(Challenge.number)):
        rows.append((c.number, c.title, c.time_limit_seconds, c.keep_fraction, c.keep_count,
                     c.scoring, c.draw, c.status))
        rows += [(c.number, q.position, q.kind, q.text, q.choices, q.answer, q.points, q.images)
                 for q in c.questions]
    return rows


def export(runner, path=None) -> str:
    result = runner.invoke(args=["questions", "export", *([str(path)] if path else [])])
    assert result.exit_code == 0, result.output
    return path.read_text() if path else result.output


def load(runner, path) -> None:
    result = runner.invoke(args=["questions", "load", str(path)])
    assert result.exit_code == 0, result.output


EDGE_BANK = """challenges:
  - number: 3
    title: "Edge: cases # not a comment"
    time_limit_seconds: 30
    keep_count: 2
    scoring: speed
    draw: 2
    questions:
      - text: "yes?"
        choices: ["yes", "no", "42", "null", "- dash", "a: b"]
        answer: ["yes", "42"]
      - type: photo
        text: A selfie
      - text: |
          Two
          lines
        choices: [Ünïcode, "'quoted'"]
        answer: Ünïcode
  - number: 1
    title: First
    keep_fraction: 1
    questions:
      - text: Q
        choices: [a, b]
        answer: b
        points: 7
"""


@pytest.mark.parametrize("bank", ["demo", "small", "photo", "edge"])
def test_load_export_load_gives_the_same_bank_and_the_same_file(runner, tmp_path, bank):
    source = tmp_path / "source.yaml"
    if bank == "demo":
        source = ROOT / "questions" / "demo.yaml"
    else:
        source.write_text({"small": SMALL_BANK, "photo": PHOTO_BANK, "edge": EDGE_BANK}[bank])
    load(runner, source)
    rows = bank_rows()
    first = export(runner, tmp_path / "first.yaml")
    # the export loads, changes nothing and exports again byte for byte
    result = runner.invoke(args=["questions", "load", str(tmp_path / "first.yaml")])
    assert result.exit_code == 0 and "nothing to change" in result.output, result.output
    assert bank_rows() == rows
    assert export(runner, tmp_path / "second.yaml") == first
    if bank != "demo":
        assert export(runner) == first  # to the screen, the same
        return
    # The picture's original is written beside the file, named by its hash, and named by `image:`
    digest = db.session.scalar(select(Question).where(Question.position == 1)).images[
        "question"]["hash"]
    assert (f"image: pictures/{digest}.png\n"
            "    alt: A bucket full of coloured boxes under a cloud\n") in first
    assert ((tmp_path / "pictures" / f"{digest}.png").read_bytes()
            == (ROOT / "questions" / "storage-bucket.png").read_bytes())
    # To the screen (as the console's download) no file can be written: named in a comment
    screen = export(runner)
    assert "    image:" not in screen and "# Pictures not exported" in screen
    assert (f"#   round 1 question 1: its picture (stored as {digest}, "
            "alt 'A bucket full of coloured boxes under a cloud')") in screen


def test_a_fresh_database_loads_the_export_to_the_same_rows(app, runner, tmp_path):
    """Load → export → (another event) load: the same rows."""
    source = tmp_path / "edge.yaml"
    source.write_text(EDGE_BANK)
    load(runner, source)
    rows, first = bank_rows(), export(runner, tmp_path / "first.yaml")
    for challenge in db.session.scalars(select(Challenge)):
        db.session.delete(challenge)
    db.session.commit()
    assert bank_rows() == []
    load(runner, tmp_path / "first.yaml")
    assert bank_rows() == rows
    assert export(runner) == first


def test_the_console_export_is_the_clis(client, runner, load_bank):
    load_bank()
    login(client)
    response = client.get("/admin/questions/export.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True) == export(runner)


# --- the editor ---------------------------------------------------------------------------------


@pytest.fixture
def editor(client, load_bank):
    """SMALL_BANK loaded, the host logged in; post(path, data) sends a form as htmx does, or
    (htmx=False) as a browser without JavaScript does once the confirmation page's Yes (a delete
    asks first) was pressed."""
    load_bank()
    login(client)
    token = csrf_from(client.get("/admin/questions/").get_data(as_text=True))

    def post(path, data, htmx=True):
        headers = {"HX-Request": "true"} if htmx else {}
        confirmed = {} if htmx else {"confirmed": "yes"}
        return client.post(f"/admin/questions{path}",
                           data={"csrf_token": token, **confirmed, **data}, headers=headers)
    return post


def questions_of(number: int) -> list[tuple]:
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == number))
    db.session.refresh(challenge)
    return [(q.text, q.choices, q.answer, q.points) for q in challenge.questions]


def test_the_editor_page_shows_every_round(client, load_bank):
    load_bank()
    login(client)
    page = text(client.get("/admin/questions/"))
    assert "Round 1: Warm-up" in page and "Which are databases?" in page
    assert "Save round 2" in page and "Add a round" in page
    # each question's buttons name it (not the up/down loop's own count)
    assert 'action="/admin/questions/rounds/1/questions/2/move"' in page
    assert 'aria-label="Move question 2 up">' in page
    assert 'aria-label="Move question 2 down" disabled' in page


def test_add_a_question(editor):
    response = editor("/rounds/2/questions", {"type": "choice", "text": "3 + 3?",
                                              "choices": "5\n6\n\n7\n", "answer": "6",
                                              "points": "3"})
    assert response.status_code == 200, text(response)
    assert 'id="bank"' in text(response) and "<html" not in text(response)  # the list, for htmx
    assert "Question added to round 2." in text(response)
    assert questions_of(2)[-1] == ("3 + 3?", ["5", "6", "7"], ["6"], 3)
    assert "3 + 3?" in text(response)


def test_add_a_photo_question(editor):
    assert editor("/rounds/2/questions", {"type": "photo", "text": "A selfie",
                                          "points": "2"}).status_code == 200
    question = db.session.scalars(select(Question).where(Question.text == "A selfie")).one()
    assert (question.kind, question.choices, question.answer, question.points) == (
        "photo", [], [], 2)


def test_edit_a_question_without_htmx_redirects_back(client, editor):
    response = editor("/rounds/1/questions/2", {"text": "Which are SQL databases?",
                                                "choices": "RDS\nLambda\nAurora",
                                                "answer": "RDS\nAurora", "points": "2"},
                      htmx=False)
    assert response.status_code == 303 and response.location.endswith("/admin/questions/")
    assert questions_of(1)[1] == ("Which are SQL databases?", ["RDS", "Lambda", "Aurora"],
                                  ["RDS", "Aurora"], 2)
    assert "Round 1 question 2 saved." in text(client.get("/admin/questions/"))


def test_delete_a_question(editor):
    assert editor("/rounds/1/questions/1/delete", {}).status_code == 200
    assert [q[0] for q in questions_of(1)] == ["Which are databases?"]


def test_reorder_questions_up_and_down(editor):
    assert editor("/rounds/1/questions/2/move", {"direction": "up"}).status_code == 200
    assert [q[0] for q in questions_of(1)] == ["Which are databases?",
                                               "Which service stores objects?"]
    assert editor("/rounds/1/questions/1/move", {"direction": "down"}).status_code == 200
    assert [q[0] for q in questions_of(1)] == ["Which service stores objects?",
                                               "Which are databases?"]
    # the first can't go further up: nothing to change
    response = editor("/rounds/1/questions/1/move", {"direction": "up"})
    assert response.status_code == 200 and "Nothing to change." in text(response)
    bad = editor("/rounds/1/questions/1/move", {"direction": "sideways"})
    assert bad.status_code == 422 and "Move a question 'up' or 'down'." in text(bad)


def test_round_settings(editor):
    response = editor("/rounds/2", {"title": " Finals ", "time_limit_seconds": "",
                                    "keep_fraction": "0.25", "keep_count": "3",
                                    "scoring": "accuracy", "draw": "1"})
    assert response.status_code == 200, text(response)
    c = db.session.scalar(select(Challenge).where(Challenge.number == 2))
    db.session.refresh(c)
    assert (c.title, c.time_limit_seconds, c.keep_fraction, c.keep_count, c.scoring, c.draw) == (
        "Finals", None, 0.25, 3, "accuracy", 1)
    assert questions_of(2) == [("2 + 2?", ["3", "4", "5"], ["4"], 1)]


def test_add_a_round(editor):
    response = editor("/rounds", {"number": "3", "title": "Bonus", "time_limit_seconds": "45",
                                  "keep_fraction": "0.5", "scoring": "speed", "type": "choice",
                                  "text": "Pick b", "choices": "a\nb", "answer": "b"})
    assert response.status_code == 200, text(response)
    c = db.session.scalar(select(Challenge).where(Challenge.number == 3))
    assert (c.title, c.time_limit_seconds, c.scoring, c.is_draft) == ("Bonus", 45, "speed", True)
    assert questions_of(3) == [("Pick b", ["a", "b"], ["b"], 1)]


BAD_EDITS = [
    ("/rounds/1/questions/1", {"text": "  ", "choices": "a\nb", "answer": "a"},
     "Round 1 question 1 text should not be empty"),
    ("/rounds/1/questions/1", {"text": "Q", "choices": "a\nb", "answer": "c"},
     "Round 1 question 1 answer 'c' is not one of its choices."),
    ("/rounds/1/questions/1", {"text": "Q", "choices": "a\na\nb", "answer": "a"},
     "Round 1 question 1 lists the same choice twice."),
    ("/rounds/1/questions/1", {"text": "Q", "choices": "a", "answer": "a"},
     "Round 1 question 1 needs at least two choices."),
    ("/rounds/1/questions/1", {"text": "Q", "choices": "a\nb", "answer": "a", "points": "lots"},
     "Round 1 question 1 points should be 1 to 1000 (got 'lots')."),
    ("/rounds/1", {"title": "T", "time_limit_seconds": "2", "scoring": "accuracy"},
     "Round 1 time_limit_seconds should be 5 to 86400 seconds (got '2')."),
    ("/rounds/1", {"title": "T", "keep_fraction": "1.5", "scoring": "accuracy"},
     "Round 1 keep_fraction should be more than 0 and at most 1 (got '1.5')."),
    ("/rounds/1", {"title": "T", "scoring": "luck"}, "Round 1 scoring should be one of"),
    ("/rounds/1", {"title": "", "scoring": "accuracy"}, "Round 1 title should be 1 to 200"),
    ("/rounds/1", {"title": "T", "scoring": "accuracy", "draw": "5"},
     "Round 1 draw should be 1 to 2, the number of its questions (got '5')."),
    ("/rounds/2/questions/1/delete", {}, "Round 2 has no questions."),
    ("/rounds", {"number": "2", "title": "Again", "scoring": "accuracy", "text": "Q",
                 "choices": "a\nb", "answer": "a"}, "Round 2 appears twice."),
]


@pytest.mark.parametrize("path, data, message", BAD_EDITS)
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "page"])
def test_a_bad_edit_shows_the_loaders_message_and_changes_nothing(editor, path, data, message,
                                                                  htmx):
    before = snapshot()
    response = editor(path, data, htmx=htmx)
    assert response.status_code == 422
    page = text(response)
    assert message in page
    assert ("<html" in page) != htmx
    assert 'role="alert"' in page
    assert snapshot() == before


def test_the_refused_form_keeps_what_was_typed(editor):
    page = text(editor("/rounds/1/questions/1", {"text": "My new question", "choices": "a\nb",
                                                 "answer": "zz"}))
    assert 'value="My new question"' in page and ">zz</textarea>" in page


def test_an_open_round_is_read_only(client, editor, api_headers):
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    page = text(client.get("/admin/questions/"))
    assert "Save round 1" not in page and "read-only" in page and "Save round 2" in page
    for path, data in [("/rounds/1", {"title": "T", "scoring": "accuracy"}),
                       ("/rounds/1/questions", {"text": "Q", "choices": "a\nb", "answer": "a"}),
                       ("/rounds/1/questions/1", {"text": "Q", "choices": "a\nb", "answer": "a"}),
                       ("/rounds/1/questions/1/delete", {}),
                       ("/rounds/1/questions/2/move", {"direction": "up"})]:
        before = snapshot()
        response = editor(path, data)
        assert response.status_code == 409, path
        assert "Round 1 is open: only a draft round's settings and questions can change" in text(
            response)
        assert snapshot() == before


def test_a_missing_round_or_question_is_404(editor):
    assert editor("/rounds/9", {"title": "T"}).status_code == 404
    response = editor("/rounds/1/questions/7", {"text": "Q"})
    assert response.status_code == 404 and "Round 1 has no question 7." in text(response)


def test_an_edit_needs_the_csrf_token(client, load_bank):
    load_bank()
    login(client)
    before = snapshot()
    response = client.post("/admin/questions/rounds/1/questions/1/delete")
    assert response.status_code == 400
    assert snapshot() == before


def test_every_edit_is_in_the_audit_log(editor, client):
    editor("/rounds/1/questions/1/delete", {})
    assert re.search(r"edit questions.*updated round 1: questions",
                     text(client.get("/admin/")), re.S)


def test_an_edit_keeps_the_pictures(app, editor, runner, tmp_path):
    """The question's picture stays through an edit of its text; a choice's goes with its text."""
    Image.new("RGB", (40, 30), (0, 90, 200)).save(tmp_path / "blue.png")
    (tmp_path / "bank.yaml").write_text("""challenges:
  - number: 3
    title: Pictures
    questions:
      - text: Which colour?
        image: blue.png
        alt: A blue square
        choices: [{text: Blue, image: blue.png}, Red]
        answer: Blue
""")
    load(runner, tmp_path / "bank.yaml")
    question = db.session.scalars(select(Question).where(Question.text == "Which colour?")).one()
    images = question.images
    assert images["question"]["alt"] == "A blue square" and set(images["choices"]) == {"Blue"}
    assert editor("/rounds/3/questions/1", {"text": "Which colour is it?", "choices": "Blue\nRed",
                                            "answer": "Blue"}).status_code == 200
    question = db.session.scalars(select(Question).where(Question.challenge_id == question
                                                         .challenge_id)).one()
    assert question.text == "Which colour is it?" and question.images == images
    assert editor("/rounds/3/questions/1", {"text": "Which colour is it?",
                                            "choices": "Navy\nRed",
                                            "answer": "Navy"}).status_code == 200
    question = db.session.scalars(select(Question).where(Question.challenge_id == question
                                                         .challenge_id)).one()
    assert question.images == {"question": images["question"], "choices": {}}


def test_choice_pictures_round_trip_through_an_exported_file(runner, tmp_path):
    Image.new("RGB", (40, 30), (0, 90, 200)).save(tmp_path / "blue.png")
    Image.new("RGB", (30, 40), (200, 0, 0)).save(tmp_path / "red.jpg")
    (tmp_path / "bank.yaml").write_text("""challenges:
  - number: 1
    title: Pictures
    questions:
      - text: Which colour?
        choices: [{text: Blue, image: blue.png, alt: Blue square}, {text: Red, image: red.jpg}]
        answer: Blue
""")
    load(runner, tmp_path / "bank.yaml")
    rows = bank_rows()
    out = tmp_path / "out"
    out.mkdir()
    first = export(runner, out / "bank.yaml")
    assert "- text: Blue\n" in first and "alt: Blue square" in first and ".jpg" in first
    assert "# Pictures not exported" not in first
    result = runner.invoke(args=["questions", "load", str(out / "bank.yaml")])
    assert result.exit_code == 0 and "nothing to change" in result.output, result.output
    assert bank_rows() == rows and export(runner, out / "bank.yaml") == first
