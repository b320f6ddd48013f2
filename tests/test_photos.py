"""Photo answers: real images in, clean JPEGs stored, bad files refused with nothing written, staff
review and score."""
import html
import io
import re
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from quiz.extensions import db
from quiz.models import AuditEntry, FormLink, PhotoAnswer, Submission
from quiz.storage import StorageError

from .helpers import PHOTO_BANK, ROOT, csrf_from, post_form, token_field

GPS = 0x8825
ORIENTATION = 0x0112


def jpeg(size=(400, 200), orientation: int | None = None, gps: bool = True) -> bytes:
    """A real JPEG from a phone: EXIF with a GPS position and, optionally, an orientation tag."""
    image = Image.new("RGB", size, (200, 30, 30))
    # left half blue: shows which way is up
    image.paste((30, 30, 200), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        exif.get_ifd(GPS).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png(size=(300, 300)) -> bytes:
    """A real PNG with transparency (a screenshot, a sticker)."""
    image = Image.new("RGBA", size, (0, 128, 0, 128))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_bomb(side=40_000) -> bytes:
    """A PNG of side × side black pixels: a small file that would take gigabytes once decoded."""
    row = b"\x00" + b"\x00" * (side // 8)  # filter byte + one bit per pixel
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


@pytest.fixture
def photo_round(app, load_bank, make_participant, client, api_headers):
    """The photo bank loaded, two players, round 1 open; returns their round-1 link codes."""
    load_bank(PHOTO_BANK)
    players = [make_participant("Ada"), make_participant("Bob")]
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    return [db.session.scalar(select(FormLink.code).where(FormLink.participant_id == p.id,
                                                          FormLink.challenge_id == 1))
            for p in players]


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def fields(page: str) -> dict:
    """The question page's inputs: choice text → value for the choice question, and the photo
    field's name."""
    choices = dict((label, value) for value, label in re.findall(
        r'<input type="radio" name="q\d+" value="([^"]+)"[^>]*>\s*<span>([^<]*)</span>', page))
    return {"choice": re.search(r'<input type="radio" name="(q\d+)"', page).group(1),
            "choices": choices,
            "photo": re.search(r'<input type="file" name="(q\d+)"', page).group(1)}


def start_and_read(client, code) -> tuple[str, dict]:
    page = client.get(f"/f/{code}").get_data(as_text=True)
    client.post(f"/f/{code}/start", data=dict([token_field(page)]))
    page = client.get(f"/f/{code}").get_data(as_text=True)
    return page, fields(page)


def send(client, code, photo: bytes | None, filename="selfie.jpg", choice="S3", started=None):
    """Start (if needed) and submit the round with `photo` as the file, the way a phone's form posts
    it."""
    page, found = started or start_and_read(client, code)
    data = {"csrf_token": csrf_from(page), found["choice"]: found["choices"][choice]}
    if photo is not None:
        data[found["photo"]] = (io.BytesIO(photo), filename, "image/jpeg")
    return client.post(f"/f/{code}/submit", data=data, content_type="multipart/form-data")


def nothing_written(store) -> bool:
    return db.session.scalar(select(func.count()).select_from(Submission)) == 0 and \
        db.session.scalar(select(func.count()).select_from(PhotoAnswer)) == 0 and \
        store.keys("photos/") == []


def login(client):
    return post_form(client, "/admin/login", "/admin/login",
                     {"username": "admin", "password": "test-password"})


def test_round_page_asks_for_a_photo_in_a_multipart_form_that_works_without_javascript(
        client, photo_round):
    page, _ = start_and_read(client, photo_round[0])
    assert 'enctype="multipart/form-data"' in page
    assert re.search(r'<input type="file" name="q\d+" accept="image/\*" '
                     r'capture="environment" required>', page)
    assert "up to 8 MB" in page


@pytest.mark.parametrize("make, name", [(lambda: jpeg((3000, 1000), gps=True), "selfie.jpg"),
                                        (png, "sticker.png")])
def test_a_real_photo_is_stored_as_a_clean_jpeg_and_waits_for_review(client, photo_round, storage,
                                                                     make, name):
    response = send(client, photo_round[0], make(), name)
    assert response.status_code == 303
    photo = db.session.scalar(select(PhotoAnswer))
    submission = db.session.scalar(select(Submission))
    assert photo.status == "pending" and photo.key == (
        f"photos/challenge1/{submission.participant_id}-q{photo.question_id}.jpg")
    assert submission.answers[str(photo.question_id)] == [photo.key]
    # the choice is right; the photo is not reviewed yet
    assert (submission.score, submission.correct) == (1, 1)
    stored = Image.open(io.BytesIO(storage.get(photo.key)))
    assert stored.format == "JPEG" and max(stored.size) <= 2048
    assert dict(stored.getexif()) == {} and "exif" not in stored.info and "xmp" not in stored.info
    assert storage.keys("photos/") == [photo.key]
    assert "Your photo is with the staff" in text(client.get(f"/f/{photo_round[0]}"))


def test_the_photo_is_turned_upright_and_shrunk_to_2048_px(client, photo_round, storage):
    # Orientation 6: the camera held sideways; the stored photo is upright,
    # so width and height swap.
    assert send(client, photo_round[0], jpeg((3000, 1500), orientation=6)).status_code == 303
    stored = Image.open(io.BytesIO(storage.get(db.session.scalar(select(PhotoAnswer.key)))))
    assert stored.size == (1024, 2048)
    top = stored.convert("RGB").getpixel((512, 100))
    assert top[2] > 150 and top[0] < 100  # the blue (left) half of the original is now on top


@pytest.mark.parametrize("body, name, message", [
    (b"this is my photo, honest\n" * 40, "selfie.jpg", "isn't a photo we can read"),
    (jpeg((800, 600))[:3000], "cut.jpg", "damaged or incomplete"),
    (png_bomb(), "bomb.png", "too many pixels"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "anim.gif", "isn't a photo we can read"),
    (b"", "empty.jpg", "that file is empty"),
])
def test_a_bad_file_gets_422_with_what_to_do_and_nothing_is_written(client, photo_round, storage,
                                                                    body, name, message):
    response = send(client, photo_round[0], body, name)
    page = text(response)
    assert response.status_code == 422 and message in page
    assert nothing_written(storage)
    assert re.search(r'value="[^"]+"\s+checked', page)  # the player's choice is kept on the page
    assert "Pick the photo again" in page


def test_no_photo_at_all_is_refused(client, photo_round, storage):
    response = send(client, photo_round[0], None)
    assert response.status_code == 422 and "needs a photo" in text(response)
    assert nothing_written(storage)


@pytest.mark.config(PHOTO_MAX_BYTES=100_000)
@pytest.mark.parametrize("size", [130_000, 400_000])  # within the request's allowance, then past it
def test_an_oversized_photo_gets_413_saying_the_limit_and_nothing_is_stored(
        client, photo_round, storage, size):
    body = jpeg((50, 50)) + b"\x00" * size  # a real JPEG, padded past the limit
    response = send(client, photo_round[0], body)
    assert response.status_code == 413 and "larger than 0.1 MB" in text(response)
    assert nothing_written(storage)


def test_only_a_round_with_a_photo_question_takes_a_large_body(client, photo_round, api_headers):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    code = db.session.scalar(select(FormLink.code).where(FormLink.challenge_id == 2).limit(1))
    page = client.get(f"/f/{code}").get_data(as_text=True)
    client.post(f"/f/{code}/start", data=dict([token_field(page)]))
    response = client.post(f"/f/{code}/submit",
                           data={**dict([token_field(page)]), "x": "y" * 100_000})
    assert response.status_code == 413
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0


def test_storage_failing_gives_503_send_it_again_and_no_row(client, photo_round, storage,
                                                            monkeypatch):
    def broken(*args, **kwargs):
        raise StorageError("S3 put_object failed: connection refused")
    monkeypatch.setattr(type(storage), "put", broken)
    response = send(client, photo_round[0], jpeg())
    assert response.status_code == 503 and "send your answers again" in text(response)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0
    monkeypatch.undo()
    again = send(client, photo_round[0], jpeg(), started=start_and_read(client, photo_round[0]))
    assert (again.status_code == 303
            and db.session.scalar(select(func.count()).select_from(PhotoAnswer)) == 1)


def test_a_second_submission_never_replaces_the_first_photo(client, photo_round, storage):
    started = start_and_read(client, photo_round[0])
    assert send(client, photo_round[0], jpeg((400, 200)), started=started).status_code == 303
    key = db.session.scalar(select(PhotoAnswer.key))
    first = storage.get(key)
    again = send(client, photo_round[0], png(), "other.png", started=started)
    assert "already in" in text(again)
    assert (storage.get(key) == first
            and db.session.scalar(select(func.count()).select_from(PhotoAnswer)) == 1)


def review(client, photo_id, decision, htmx=False):
    page = client.get("/admin/photos/1").get_data(as_text=True)
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/admin/photos/review/{photo_id}",
                       data={"csrf_token": csrf_from(page), "decision": decision}, headers=headers)


def test_review_scores_the_photo_and_the_ranking_at_close_uses_it(
        app, client, photo_round, storage, api_headers):
    ada, bob = photo_round
    assert send(client, bob, jpeg()).status_code == 303
    ada_page = start_and_read(client, ada)
    link = db.session.scalar(select(FormLink).where(FormLink.code == ada))
    # Ada took a minute: on points alone, Bob would rank first
    link.started_at -= timedelta(seconds=60)
    db.session.commit()
    assert send(client, ada, jpeg(), started=ada_page).status_code == 303
    # one client: the app context (and its cached CSRF token) spans the test's requests
    staff = client
    login(staff)
    dashboard = text(staff.get("/admin/"))
    assert "2 photos not reviewed yet" in dashboard
    photos = {p.participant.name: p.id for p in db.session.scalars(select(PhotoAnswer))}
    accepted = review(staff, photos["Ada"], "accept", htmx=True)
    assert (accepted.status_code == 200 and 'id="photo-' in text(accepted)
            and "accepted" in text(accepted))
    counts = re.search(r'<nav class="filters" id="photo-filters"[^>]*hx-swap-oob="true">'
                       r'(.*?)</nav>', text(accepted), re.S)
    assert counts and re.findall(r"(\w+) \((\d+)\)", counts[1]) == [
        ("pending", "1"), ("accepted", "1"), ("rejected", "0")]
    assert review(staff, photos["Bob"], "reject").status_code == 303
    scores = {s.participant_id: (s.score, s.correct)
              for s in db.session.scalars(select(Submission))}
    assert sorted(scores.values()) == [(1, 1), (3, 2)]
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action.in_(["accept photo", "reject photo"]))) == 2
    assert "not reviewed yet" not in text(staff.get("/admin/"))
    assert staff.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200
    board = staff.get("/api/leaderboard/1").get_json()["entries"]
    assert [(e["name"], e["score"], e["eliminated"]) for e in board][0] == ("Ada", 3, False)
    assert board[1]["name"] == "Bob" and board[1]["eliminated"]


def test_review_after_close_is_refused_with_409_and_changes_nothing(
        app, client, photo_round, storage, api_headers):
    assert send(client, photo_round[0], jpeg()).status_code == 303
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    # one client: the app context (and its cached CSRF token) spans the test's requests
    staff = client
    login(staff)
    photo_id = db.session.scalar(select(PhotoAnswer.id))
    refused = review(staff, photo_id, "accept", htmx=True)
    assert refused.status_code == 409 and "ranking is final" in text(refused)
    db.session.expire_all()
    assert db.session.scalar(select(PhotoAnswer.status)) == "pending"
    assert db.session.scalar(select(Submission.score)) == 1
    # without JS: back to the round's grid, which says why
    plain = review(staff, photo_id, "accept")
    assert (plain.status_code == 303
            and plain.headers["Location"].endswith("/admin/photos/1?status=pending"))
    assert "ranking is final" in text(staff.get(plain.headers["Location"]))
    assert db.session.scalar(select(PhotoAnswer.status)) == "pending"


@pytest.mark.parametrize("decision", ["", "maybe", "accepted"])
def test_a_review_without_a_clear_decision_is_refused(app, client, photo_round, storage, decision):
    assert send(client, photo_round[0], jpeg()).status_code == 303
    # one client: the app context (and its cached CSRF token) spans the test's requests
    staff = client
    login(staff)
    refused = review(staff, db.session.scalar(select(PhotoAnswer.id)), decision, htmx=True)
    assert refused.status_code == 422 and "Choose Accept or Reject" in text(refused)
    assert db.session.scalar(select(PhotoAnswer.status)) == "pending"


def test_review_grid_filters_by_status_and_streams_photos_to_staff_only(
        app, client, photo_round, storage):
    assert send(client, photo_round[0], jpeg()).status_code == 303
    photo_id = db.session.scalar(select(PhotoAnswer.id))
    for anonymous in ("/admin/photos/", "/admin/photos/1", f"/admin/photos/image/{photo_id}.jpg"):
        response = client.get(anonymous)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert client.post(f"/admin/photos/review/{photo_id}",
                       data={"decision": "accept"}).status_code in (302, 400)
    assert db.session.scalar(select(PhotoAnswer.status)) == "pending"
    # one client: the app context (and its cached CSRF token) spans the test's requests
    staff = client
    login(staff)
    assert ("Photos" in text(staff.get("/admin/"))
            and "Booth hunt" in text(staff.get("/admin/photos/")))
    pending = text(staff.get("/admin/photos/1"))
    assert ("Ada" in pending and "A selfie at booth 12" in pending
            and f"/admin/photos/image/{photo_id}.jpg" in pending)
    assert "Ada" not in text(staff.get("/admin/photos/1?status=accepted"))
    assert staff.get("/admin/photos/1?status=bogus").status_code == 400
    image = staff.get(f"/admin/photos/image/{photo_id}.jpg")
    assert (image.status_code == 200 and image.mimetype == "image/jpeg"
            and "no-store" in image.headers["Cache-Control"])
    assert Image.open(io.BytesIO(image.data)).format == "JPEG"
    assert "img-src 'self'" in image.headers["Content-Security-Policy"]


def test_players_never_see_a_photo_url(client, photo_round, storage):
    assert send(client, photo_round[0], jpeg()).status_code == 303
    for code in photo_round:
        assert ("/admin/photos" not in text(client.get(f"/f/{code}"))
                and "photos/challenge" not in text(client.get(f"/f/{code}")))


def test_the_stored_form_of_a_photo_round_posts_the_photo_with_its_form_token(
        client, photo_round, storage):
    from quiz.stored_forms import form_rows, render_form
    link = db.session.scalar(select(FormLink).where(FormLink.code == photo_round[0]))
    page = render_form(form_rows([link.participant_id], [link.challenge_id])[0]).decode()
    assert 'enctype="multipart/form-data"' in page and 'capture="environment"' in page
    start_and_read(client, photo_round[0])
    found = fields(page)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    # a phone with no session: the stored page's token is its proof
    fresh = client.application.test_client()
    response = fresh.post(f"/f/{photo_round[0]}/submit", content_type="multipart/form-data", data={
        "form_token": token, found["choice"]: found["choices"]["S3"],
        found["photo"]: (io.BytesIO(png()), "p.png")})
    assert (response.status_code == 303
            and db.session.scalar(select(PhotoAnswer.status)) == "pending")


def test_nginx_lets_photos_through_to_the_submit_only():
    from quiz.config import Config
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    submit = re.search(r"location ~ \^/f/\[\^/\]\+/submit\$ \{\s*client_max_body_size (\d+)m;",
                       nginx)
    assert submit and int(submit.group(1)) * 1_000_000 >= 2 * Config.PHOTO_MAX_BYTES
    assert re.search(r"^    client_max_body_size 64k;", nginx, re.M)


def test_shredding_personal_data_deletes_the_photos_and_keeps_the_scores(
        client, photo_round, storage, runner):
    assert send(client, photo_round[0], jpeg()).status_code == 303
    assert send(client, photo_round[1], png(), "b.png").status_code == 303
    assert len(storage.keys("photos/")) == 2
    result = runner.invoke(args=["privacy", "shred", "--force", "--yes"])
    assert result.exit_code == 0, result.output
    assert storage.keys("photos/") == []
    # reviews and scores stay
    assert db.session.scalar(select(func.count()).select_from(PhotoAnswer)) == 2


def test_a_submit_retried_after_a_busy_database_still_has_its_photo(
        client, photo_round, storage, monkeypatch):
    from sqlalchemy.exc import OperationalError
    from quiz import answers
    real, calls = answers.store_photos, []

    def busy_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(*args)
    monkeypatch.setattr(answers, "store_photos", busy_once)
    assert send(client, photo_round[0], jpeg()).status_code == 303
    assert len(calls) == 2 and len(storage.keys("photos/")) == 1


def test_the_migration_makes_existing_questions_multiple_choice(app):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text as sql
    db.drop_all()
    upgrade(revision="0002_checkin_helpdesk")
    with db.engine.begin() as connection:
        connection.execute(sql("INSERT INTO challenge "
                               "(id, number, title, keep_fraction, scoring, status) "
                               "VALUES (1, 1, 'Old', 0.5, 'accuracy', 'draft')"))
        connection.execute(sql("INSERT INTO question "
                               "(id, challenge_id, position, text, choices, answer, points) "
                               "VALUES (1, 1, 1, 'Q', '[\"a\", \"b\"]', '[\"a\"]', 1)"))
    upgrade()
    with db.engine.connect() as connection:
        assert connection.execute(sql("SELECT kind, text, points FROM question")).all() == [
            ("choice", "Q", 1)]
    downgrade(revision="0002_checkin_helpdesk")
    with db.engine.connect() as connection:
        assert connection.execute(sql("SELECT text FROM question")).all() == [("Q",)]


@pytest.mark.live
def test_through_gunicorn_a_photo_goes_in_and_an_oversized_one_gets_the_413_page(
        live_stack, tmp_path):
    import requests
    from quiz.rehearsal_pages import answer_token, form_fields, question_choices
    bank = tmp_path / "photos.yaml"
    bank.write_text(PHOTO_BANK)
    live_stack.flask("questions", "load", str(bank))
    links = [requests.post(f"{live_stack.url}/api/register", json={
        "name": name, "email": f"{name}@example.com", "phone": f"+1415555{n:04d}",
        "company": "Acme", "consent": True}).json()
        ["form_urls"]["1"] for n, name in enumerate(["ada", "bob"], 1)]
    requests.post(f"{live_stack.url}/api/admin/start-challenge/1",
                  headers={"Authorization": "Bearer live-token"})
    for link, photo in zip(links, [jpeg((4000, 3000)), jpeg((50, 50)) + b"\x00" * 9_000_000]):
        phone = requests.Session()
        phone.post(f"{link}/start", data=form_fields(phone.get(link).text, "/start"))
        page = phone.get(link).text
        (name, options), = question_choices(page).items()
        field = re.search(r'<input type="file" name="(q\d+)"', page).group(1)
        sent = phone.post(f"{link}/submit", data={**answer_token(page), name: options["S3"]},
                          files={field: ("p.jpg", photo, "image/jpeg")}, allow_redirects=False,
                          timeout=30)
        if link == links[0]:
            assert sent.status_code == 303, sent.text[:1000]
        else:
            assert sent.status_code == 413 and "larger than 8 MB" in html.unescape(sent.text)
    board = requests.get(f"{live_stack.url}/api/leaderboard/1",  # open: staff see who is in
                         headers={"Authorization": "Bearer live-token"}).json()["entries"]
    assert [e["name"] for e in board] == ["ada"]


# --- what a photo costs the server ----------------------------------------------------------------

def flat_png(size: tuple[int, int], mode: str = "RGB", level: int = 9) -> bytes:
    """A mostly flat image as a PNG: a small file that decodes to size[0] × size[1] pixels."""
    image = Image.new(mode, size, "white")
    image.paste((200, 30, 30, 255)[:len(mode)], (100, 100, 900, 900))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=level)
    return out.getvalue()


@pytest.fixture
def decodes(monkeypatch):
    """How many times a photo was opened for decoding."""
    opened, real = [], Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real(*a, **k))
    return opened


@pytest.mark.parametrize("situation, message", [
    ("not started", "Press Start first"), ("submitted", "already in"), ("closed", "is closed")])
def test_a_link_that_cannot_submit_never_decodes_the_photo(client, photo_round, storage,
                                                           api_headers, decodes, situation,
                                                           message):
    code = photo_round[0]
    page, found = start_and_read(client, code)
    if situation == "not started":
        code = photo_round[1]
    elif situation == "submitted":
        assert send(client, code, jpeg(), started=(page, found)).status_code == 303
    else:
        client.post("/api/admin/end-challenge/1", headers=api_headers)
    decodes.clear()
    response = send(client, code, flat_png((3000, 3000)), "big.png", started=(page, found))
    assert message in text(response)
    assert decodes == []  # refused on the link's state alone: not one pixel decoded


@pytest.mark.config(PHOTO_MAX_PIXELS=4_000_000)
@pytest.mark.parametrize("photo, taken", [
    (lambda: flat_png((2500, 2000)), False),  # 5 MP, decoded whole: over the cap
    (lambda: flat_png((2000, 2000)), True),
    # 12.6 MP, but a JPEG decodes at half scale here (2100 × 1500): under the cap
    (lambda: jpeg((4200, 3000)), True),
])
def test_the_pixel_cap_counts_what_is_decoded_and_is_configurable(client, photo_round, storage,
                                                                  photo, taken):
    response = send(client, photo_round[0], photo())
    if taken:
        assert response.status_code == 303
    else:
        assert response.status_code == 422 and "more than 4 million" in text(response)
        assert nothing_written(storage)


def test_a_process_decodes_one_photo_at_a_time(monkeypatch):
    import threading

    from quiz import images
    inside, most, both = [], [], threading.Barrier(2, timeout=0.5)
    real = Image.Image.load

    def load(image):
        inside.append(1)
        most.append(len(inside))
        try:
            both.wait()  # two decodes at once meet here; one at a time, the wait gives up
        except threading.BrokenBarrierError:
            pass
        inside.pop()
        return real(image)
    monkeypatch.setattr(Image.Image, "load", load)
    photo = jpeg((800, 600))
    threads = [threading.Thread(target=images.prepare_photo, args=(photo, 10**7, 10**7))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(most) == 1


def memory(pid: int) -> dict[str, int]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {line.split(":")[0]: int(line.split()[1]) // 1024 for line in lines
            if line.startswith(("VmRSS:", "VmHWM:"))}


PHOTO_ONLY_BANK = """
challenges:
  - number: 1
    title: Selfies
    questions:
      - type: photo
        text: A selfie at booth 12
  - number: 2
    title: Final
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""


@pytest.mark.live
def test_six_photos_decoding_at_once_keep_each_web_process_within_300_mb(live_stack, tmp_path,
                                                                         capsys):
    """Six players send a photo at the same moment: each web process stays within 300 MB of where
    it was (VmHWM, its peak) and gives it back (VmRSS after)."""
    import requests
    from concurrent.futures import ThreadPoolExecutor

    from quiz.rehearsal_pages import answer_token, form_fields

    from .players import Api
    bank = tmp_path / "photos.yaml"
    bank.write_text(PHOTO_ONLY_BANK)
    live_stack.flask("questions", "load", str(bank))
    api = Api(live_stack.url)
    links = [api.register(f"p{n}", n)["form_urls"]["1"] for n in range(6)]
    api.start(1)
    phones = []
    for link in links:
        phone = requests.Session()
        phone.post(f"{link}/start", data=form_fields(phone.get(link).text, "/start"))
        page = phone.get(link).text
        field = re.search(r'<input type="file" name="(q\d+)"', page).group(1)
        phones.append((phone, link, answer_token(page), field))

    def send_all(photo: bytes) -> list:
        def one(args):
            phone, link, token, field = args
            return phone.post(f"{link}/submit", data=token, allow_redirects=False, timeout=120,
                              files={field: ("p.png", photo, "image/png")})
        with ThreadPoolExecutor(len(phones)) as pool:
            return list(pool.map(one, phones))

    for name, photo, status in [
            ("49 MP PNG", flat_png((7000, 7000)), 422),  # past the cap: refused from its header
            ("16 MP RGBA PNG", flat_png((4000, 4000), "RGBA"), 303)]:  # at the cap: decoded
        pids = live_stack.web_workers
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
        before = {pid: memory(pid)["VmRSS"] for pid in pids}
        responses = send_all(photo)
        after = {pid: memory(pid) for pid in pids}
        figures = {pid: (before[pid], after[pid]["VmHWM"] - before[pid],
                         after[pid]["VmRSS"] - before[pid]) for pid in pids}
        with capsys.disabled():  # the figures, for the record (pytest -s shows them)
            print(f"\n{name} × 6: " + "; ".join(
                f"pid {pid}: base {base} MB, peak +{peak} MB, after +{kept} MB"
                for pid, (base, peak, kept) in figures.items()))
        assert [r.status_code for r in responses] == [status] * 6, responses[0].text[:2000]
        for pid in pids:
            assert after[pid]["VmHWM"] - before[pid] < 300, figures
            assert after[pid]["VmRSS"] - before[pid] < 60, figures  # given back after
