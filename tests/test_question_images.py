"""Pictures in questions: loaded with the bank (checked, drawn, stored under content-hashed keys),
served with a year's cache, shown on the phone and in stored forms; a bad picture names its line
and changes nothing."""
import io
import random
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from quiz.bank_images import PHONE_BUDGET
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Question
from quiz.question_images import PREFIX, image_key, original_key
from quiz.rehearsal_pages import question_choices
from quiz.storage import get_storage
from quiz.stored_forms import FormRow, render_form

from .helpers import login, post_form, press_start, text

BANK = """challenges:
  - number: 1
    title: Pictures
    questions:
      - text: Which animal is this?
        image: pics/photo.jpg
        alt: A grey blur
        choices:
          - {text: Cat, image: pics/cat.png}
          - Dog
          - {text: Owl, image: pics/owl.gif, alt: An owl}
        answer: Cat
      - text: Plain question?
        choices: [yes, no]
        answer: yes
"""


def noisy(size, mode="RGB") -> Image.Image:
    """A picture that compresses badly (the worst case for the phone's data budget)."""
    return Image.frombytes(mode, size, random.Random(7).randbytes(size[0] * size[1] * len(mode)))


def write_bank(folder, text=BANK):
    (folder / "pics").mkdir(exist_ok=True)
    noisy((3000, 2000)).save(folder / "pics" / "photo.jpg", quality=95)
    Image.new("RGBA", (300, 300), (200, 100, 0, 128)).save(folder / "pics" / "cat.png")
    frames = [Image.new("P", (120, 90), i) for i in (1, 2)]
    frames[0].save(folder / "pics" / "owl.gif", save_all=True, append_images=frames[1:])
    path = folder / "bank.yaml"
    path.write_text(text)
    return path


def stored_keys():
    return get_storage().keys(PREFIX)


def counts():
    return (db.session.scalar(select(func.count()).select_from(Challenge)),
            db.session.scalar(select(func.count()).select_from(Question)))


def test_a_bank_with_pictures_loads_draws_and_stores_them_once(runner, storage, tmp_path):
    bank = write_bank(tmp_path)
    result = runner.invoke(args=["questions", "load", str(bank)])
    assert result.exit_code == 0, result.output
    first, plain = db.session.scalars(select(Question).order_by(Question.position)).all()
    assert plain.images is None and plain.choices == ["yes", "no"]
    picture = first.images["question"]
    assert picture["alt"] == "A grey blur"
    assert picture["phone"] == [800, 533] and picture["stage"] == [1620, 1080]
    assert first.choices == ["Cat", "Dog", "Owl"] and first.answer == ["Cat"]
    assert set(first.images["choices"]) == {"Cat", "Owl"}
    assert first.images["choices"]["Owl"]["alt"] == "An owl"
    assert first.images["choices"]["Cat"]["phone"] == [300, 300]  # never grown
    hashes = {picture["hash"], *(i["hash"] for i in first.images["choices"].values())}
    assert stored_keys() == sorted([image_key(h, s) for h in hashes for s in ("phone", "stage")]
                                   + [original_key(h) for h in hashes])
    phone = storage.get(image_key(picture["hash"], "phone"))
    assert len(phone) <= PHONE_BUDGET  # a phone's data budget, even for noise
    with Image.open(io.BytesIO(phone)) as drawn:
        assert drawn.format == "WEBP" and drawn.size == (800, 533)
    with Image.open(io.BytesIO(storage.get(image_key(picture["hash"], "stage")))) as drawn:
        assert drawn.format == "WEBP" and drawn.size == (1620, 1080)

    rows = [(q.id, q.images) for q in db.session.scalars(select(Question).order_by(Question.id))]
    keys = stored_keys()
    again = runner.invoke(args=["questions", "load", str(bank)])
    assert again.exit_code == 0 and "nothing to change" in again.output
    db.session.expire_all()
    assert [(q.id, q.images)
            for q in db.session.scalars(select(Question).order_by(Question.id))] == rows
    assert stored_keys() == keys


def test_a_changed_picture_updates_the_question(runner, tmp_path):
    bank = write_bank(tmp_path)
    assert runner.invoke(args=["questions", "load", str(bank)]).exit_code == 0
    before = db.session.scalar(select(Question.images).where(Question.position == 1))
    Image.new("RGB", (64, 48), "blue").save(tmp_path / "pics" / "photo.jpg")
    result = runner.invoke(args=["questions", "load", str(bank)])
    assert "updated round 1: questions" in result.output
    after = db.session.scalar(select(Question.images).where(Question.position == 1))
    assert after["question"]["hash"] != before["question"]["hash"]
    assert after["question"]["phone"] == [64, 48]


def _bad(tmp_path, name: str) -> str:
    """The bank with its first picture made bad in the way `name` says; the path to write."""
    pics = tmp_path / "pics"
    if name == "missing":
        (pics / "photo.jpg").unlink()
    elif name == "broken":
        (pics / "photo.jpg").write_text("challenges: not a picture at all")
    elif name == "truncated":
        data = (pics / "photo.jpg").read_bytes()
        (pics / "photo.jpg").write_bytes(data[:len(data) // 3])
    elif name == "symlink":
        outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
        Image.new("RGB", (10, 10)).save(outside)
        (pics / "photo.jpg").unlink()
        (pics / "photo.jpg").symlink_to(outside)
    return {"dotdot": "../photo.jpg", "absolute": "/etc/hostname"}.get(name, "pics/photo.jpg")


@pytest.mark.parametrize("name, problem", [
    ("missing", "is not there"),
    ("broken", "is not a picture we can read"),
    ("truncated", "is damaged or incomplete"),
    ("dotdot", "must be a path inside the bank's folder"),
    ("absolute", "must be a path inside the bank's folder"),
    ("symlink", "leaves the bank's folder"),
])
def test_a_bad_picture_names_its_line_and_changes_nothing(runner, tmp_path, name, problem):
    bank = write_bank(tmp_path)
    bank.write_text(BANK.replace("image: pics/photo.jpg", f"image: {_bad(tmp_path, name)}"))
    result = runner.invoke(args=["questions", "load", str(bank)])
    assert result.exit_code != 0
    assert f"line 6: round 1 question 1 image " in result.output, result.output
    assert problem in result.output and "Nothing was changed" in result.output
    assert counts() == (0, 0) and stored_keys() == []


@pytest.mark.config(PHOTO_MAX_PIXELS=250_000)
def test_a_picture_with_too_many_pixels_names_its_line(runner, tmp_path):
    bank = write_bank(tmp_path)
    Image.new("RGB", (400, 300)).save(tmp_path / "pics" / "photo.jpg")
    Image.new("RGB", (600, 500)).save(tmp_path / "pics" / "cat.png")  # 300,000 pixels
    result = runner.invoke(args=["questions", "load", str(bank)])
    assert result.exit_code != 0
    assert "line 9: round 1 question 1 choice image 'pics/cat.png' has too many pixels " \
           "(600 × 500; the limit is 0.25 million, PHOTO_MAX_PIXELS)" in result.output
    assert counts() == (0, 0) and stored_keys() == []


def test_a_bad_picture_leaves_the_loaded_bank_as_it_was(runner, tmp_path):
    bank = write_bank(tmp_path)
    assert runner.invoke(args=["questions", "load", str(bank)]).exit_code == 0
    rows = [(q.id, q.text, q.images) for q in db.session.scalars(select(Question))]
    keys = stored_keys()
    bank.write_text(BANK.replace("Which animal is this?", "Which bird is this?")
                    .replace("pics/owl.gif", "pics/nowhere.gif"))
    result = runner.invoke(args=["questions", "load", str(bank)])
    assert "line 11: round 1 question 1 choice image 'pics/nowhere.gif' is not there" \
           in result.output
    db.session.expire_all()
    assert [(q.id, q.text, q.images) for q in db.session.scalars(select(Question))] == rows
    assert stored_keys() == keys


@pytest.mark.parametrize("question, line, problem", [
    ("      - text: Q?\n        alt: nothing\n        choices: [a, b]\n        answer: a\n", 6,
     "has an 'alt' but no 'image'"),
    ("      - text: Q?\n        choices: [{image: x.png}, b]\n        answer: b\n", 6,
     "has no 'text'"),
    ("      - text: Q?\n        choices: [{text: a, colour: red}, b]\n        answer: b\n", 6,
     "unknown key 'colour'"),
])
def test_bad_picture_keys_name_their_line(runner, tmp_path, question, line, problem):
    bank = tmp_path / "bank.yaml"
    bank.write_text("challenges:\n  - number: 1\n    title: T\n    questions:\n" + question)
    result = runner.invoke(args=["questions", "load", str(bank)])
    assert result.exit_code != 0 and f"line {line}:" in result.output and problem in result.output


def test_a_pasted_bank_with_pictures_says_to_load_the_file(app, client, tmp_path):
    login(client)
    page = text(post_form(client, "/admin/", "/admin/questions", {"yaml": BANK, "confirmed": "yes"},
                          follow_redirects=True))
    assert "line 6: round 1 question 1 image" in page and "questions load FILE" in page
    assert counts() == (0, 0)


def test_the_picture_is_served_with_a_year_of_cache_and_an_etag(runner, client, storage, tmp_path):
    assert runner.invoke(args=["questions", "load", str(write_bank(tmp_path))]).exit_code == 0
    digest = db.session.scalar(select(Question.images).where(Question.position == 1))[
        "question"]["hash"]
    response = client.get(f"/q/img/{digest}.phone.webp")
    assert response.status_code == 200 and response.mimetype == "image/webp"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["ETag"] == f'"{digest}.phone"'
    assert len(response.data) <= PHONE_BUDGET
    with Image.open(io.BytesIO(response.data)) as drawn:
        assert drawn.width <= 800
    again = client.get(f"/q/img/{digest}.phone.webp",
                       headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    assert client.get(f"/q/img/{digest}.stage.webp").status_code == 200
    for missing in (f"{digest}.huge.webp", f"{'0' * 32}.phone.webp", "..%2f..%2fx.phone.webp"):
        assert client.get(f"/q/img/{missing}").status_code == 404


def _page_images(page: str) -> list[str]:
    return re.findall(r'<img class="(?:question|choice)-image"[^>]*>', page)


def test_the_phone_and_the_stored_form_show_the_pictures_the_same_for_everyone(
        app, runner, client, tmp_path, make_participant, open_round):
    assert runner.invoke(args=["questions", "load", str(write_bank(tmp_path))]).exit_code == 0
    players = [make_participant(), make_participant()]
    open_round()
    pages = []
    for participant in players:
        code = db.session.scalar(select(FormLink.code).where(
            FormLink.participant_id == participant.id))
        press_start(client, code)
        pages.append(client.get(f"/f/{code}").get_data(as_text=True))
    question = db.session.scalar(select(Question).where(Question.position == 1))
    digest = question.images["question"]["hash"]
    tags = _page_images(pages[0])
    assert (f'<img class="question-image" src="/q/img/{digest}.phone.webp" width="800" '
            'height="533" alt="A grey blur" decoding="async">') in tags
    cat = question.images["choices"]["Cat"]["hash"]
    assert (f'<img class="choice-image" src="/q/img/{cat}.phone.webp" width="300" height="300" '
            'alt="" loading="lazy" decoding="async">') in tags
    assert len(tags) == 3
    # The rehearsal's and the live tests' players still read every choice (a picture follows it).
    assert sorted(sorted(c) for c in question_choices(pages[0]).values()) == [
        ["Cat", "Dog", "Owl"], ["no", "yes"]]
    # Fair: the same URLs for every player (content hashes), whatever their order of choices.
    assert sorted(_page_images(pages[1])) == sorted(tags)

    link = db.session.scalar(select(FormLink).where(FormLink.participant_id == players[0].id))
    stored = render_form(FormRow(link, None)).decode()
    base = app.config["PUBLIC_BASE_URL"]
    assert f'src="{base}/q/img/{digest}.phone.webp"' in stored
    assert f'src="{base}/q/img/{cat}.phone.webp"' in stored


def test_the_projector_partial_shows_the_stage_size(app, runner, tmp_path):
    """The reveal includes display/_question_image.html where it shows a question."""
    from flask import render_template
    assert runner.invoke(args=["questions", "load", str(write_bank(tmp_path))]).exit_code == 0
    question, plain = db.session.scalars(select(Question).order_by(Question.position)).all()
    with app.test_request_context():
        html = render_template("display/_question_image.html", question=question)
        assert render_template("display/_question_image.html", question=plain).strip() == ""
    digest = question.images["question"]["hash"]
    assert (f'<img class="stage-image" src="/q/img/{digest}.stage.webp" width="1620" '
            'height="1080" alt="A grey blur" decoding="async">') in html
