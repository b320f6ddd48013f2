"""Stored forms: made in the background, served on the link, moved as the round goes on, repaired by
reconcile.

Every test runs on both storage backends (a folder, and S3 on moto's server over real HTTP).
"""
import html
import re

import pytest
from sqlalchemy import select

from quiz import stored_forms, tasks
from quiz.extensions import db, get_queue, state
from quiz.links import dealt_questions
from quiz.models import Challenge, FormLink, Participant, Submission
from quiz.storage import FileStorage

from .helpers import (AWS_TEST_ENV, ROOT, SMALL_BANK, choice_values, csrf_from, login, new_bucket,
                      press_start, token_field)


def links_of(participant_id: int) -> dict[int, FormLink]:
    return {l.challenge.number: l for l in db.session.scalars(
        select(FormLink).where(FormLink.participant_id == participant_id))}


def stored(storage, place: str, number: int, participant_id: int) -> str | None:
    body = storage.get(stored_forms.form_key(place, number, participant_id))
    return body.decode() if body is not None else None


def everything(storage) -> set[str]:
    return {key for place in stored_forms.PLACES for key in storage.keys(place + "/")}


def expected(numbers=(1, 2)) -> set[str]:
    """Every key the database says should exist: one per participant per round, in its one right
    place."""
    return {row.key() for row in stored_forms.form_rows()}


def answer(client, code, picks: list[list[str]]):
    """Open the questions (the stored form, when it is there) and post the picks through it."""
    page = client.get(f"/f/{code}").get_data(as_text=True)
    name, token = token_field(page)
    data = {name: token}
    for (field, options), chosen in zip(choice_values(page).items(), picks):
        data[field] = [options[c] for c in chosen]
    return client.post(f"/f/{code}/submit", data=data)


def inputs(page: str) -> list[tuple[str, str, str]]:
    """A questions page's choices as it shows them, in order: (field, value, label)."""
    return [(name, value, html.unescape(label)) for name, value, label in re.findall(
        r'<input type="(?:radio|checkbox)" name="(q\d+)" value="([^"]+)"[^>]*>\s*'
        r'<span>([^<]*)</span>', page)]


def play_round_1(client, api_headers, participant_id: int) -> None:
    """Open round 1 and have this participant answer it (one right, one wrong)."""
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    code = links_of(participant_id)[1].code
    press_start(client, code)
    assert answer(client, code, [["S3"], ["RDS"]]).status_code == 303


@pytest.fixture
def event(app, storage, load_bank, make_participant, run_jobs):
    """Three registered players; their forms made by the background job."""
    load_bank()
    players = [make_participant(name).id for name in ("Grace", "Alan", "Ada")]
    run_jobs()
    return players


def test_registration_makes_every_rounds_form_in_one_batched_job(
        app, storage, load_bank, make_participant, run_jobs):
    load_bank()
    players = [make_participant().id for _ in range(150)]
    assert everything(storage) == set()  # registration never waits on storage
    assert get_queue("forms").count == 1  # 150 registrations, one drain job
    run_jobs()
    assert everything(storage) == {stored_forms.form_key("forms", n, p)
                                   for n in (1, 2) for p in players}


def test_a_stored_form_is_personal_and_never_holds_the_answer_key(app, storage, event):
    first, second, _ = event
    page = stored(storage, "forms", 1, first)
    links = links_of(first)
    assert "<strong>Grace</strong>" in page and "Warm-up" in page
    assert f'/f/{links[1].code}/submit"' in page and 'name="form_token"' in page
    # The participant's own order of questions and choices, with their own values, as dealt.
    dealt = [(f"q{q.id}", value, label) for q, choices in dealt_questions(links[1])
             for value, label in choices]
    assert inputs(page) == dealt
    assert "checked" not in page and "answer" not in page.lower().replace("submit answers", "")
    assert page != stored(storage, "forms", 1, second).replace("Alan", "Grace")


def test_the_link_serves_the_stored_form_and_its_answers_count(
        app, client, storage, event, api_headers, run_jobs):
    player = event[0]
    code = links_of(player)[1].code
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    # the GET never starts the clock
    assert "Ready?" in client.get(f"/f/{code}").get_data(as_text=True)
    press_start(client, code)
    page = client.get(f"/f/{code}").get_data(as_text=True)
    assert 'data-stored-form="forms"' in page and 'name="form_token"' in page
    assert "<!--knockout:timer-->" not in page
    response = answer(client, code, [["S3"], ["RDS", "DynamoDB"]])
    assert response.status_code == 303
    submission = db.session.scalar(select(Submission).where(Submission.participant_id == player))
    assert submission.score == 3
    run_jobs()
    answered = stored(storage, "answered", 1, player)
    assert stored(storage, "forms", 1, player) is None
    assert "Answers in" in answered and answered.count("checked") == 3 and "disabled" in answered
    assert re.search(r'value="[^"]+"\s+checked[^>]*>\s*<span>S3</span>', answered)


def test_closing_the_round_moves_the_rest_to_unanswered(app, client, storage, event, api_headers,
                                                        run_jobs):
    player, absent, _ = event
    play_round_1(client, api_headers, player)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    run_jobs()
    assert storage.keys("forms/challenge1/") == []
    assert storage.keys("answered/challenge1/") == [stored_forms.form_key("answered", 1, player)]
    assert len(storage.keys("unanswered/challenge1/")) == 2
    assert "Round closed" in stored(storage, "unanswered", 1, absent)
    assert everything(storage) == expected() and stored_forms.drift().clean


def test_moves_are_safe_to_run_twice(app, client, storage, event, api_headers, run_jobs):
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    challenge_id = db.session.scalar(select(Challenge.id).where(Challenge.number == 1))
    first = tasks.settle_forms(challenge_id, event)
    again = tasks.settle_forms(challenge_id, event)
    assert first == {"moved": 3} and again == {"already": 3}
    run_jobs()  # the queued job after the close runs too: nothing changes
    assert everything(storage) == expected() and stored_forms.drift().clean


def fail_deletes(storage, monkeypatch):
    """The delete after the copy fails: on S3 through botocore's event hook, in a folder through the
    OS call."""
    if isinstance(storage, FileStorage):
        def refuse(key):
            raise PermissionError("delete refused")
        monkeypatch.setattr(storage, "delete", refuse)
        return lambda: monkeypatch.undo()

    def refuse_call(**kwargs):
        raise RuntimeError("injected: DeleteObjects failed")
    events = storage.client.meta.events
    events.register("before-call.s3.DeleteObjects", refuse_call)
    return lambda: events.unregister("before-call.s3.DeleteObjects", refuse_call)


def test_a_delete_that_fails_after_the_copy_is_repaired(
        app, client, storage, event, api_headers, runner, monkeypatch):
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    challenge_id = db.session.scalar(select(Challenge.id).where(Challenge.number == 1))
    restore = fail_deletes(storage, monkeypatch)
    with pytest.raises(Exception):
        tasks.settle_forms(challenge_id, event)
    restore()
    # The copies are in place, the originals too: a duplicate of each, never a loss.
    assert (len(storage.keys("unanswered/challenge1/")) == 3
            and len(storage.keys("forms/challenge1/")) == 3)
    assert len(stored_forms.drift().duplicated) == 3
    result = runner.invoke(args=["forms", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "3 duplicate(s)" in result.output
    assert everything(storage) == expected() and stored_forms.drift().clean


def test_reconcile_repairs_missing_misplaced_duplicated_and_orphaned(
        app, client, storage, event, api_headers, runner):
    one, two, three = event
    play_round_1(client, api_headers, one)
    # Drift of every kind, as a crash or a lost job could leave it (the answered move never ran):
    storage.delete(stored_forms.form_key("forms", 2, two))                   # missing
    storage.put(stored_forms.form_key("unanswered", 2, three),
                storage.get(stored_forms.form_key("forms", 2, three)))
    storage.delete(stored_forms.form_key("forms", 2, three))                 # misplaced
    storage.put(stored_forms.form_key("answered", 2, one), b"stray copy")    # duplicated
    storage.put(stored_forms.form_key("forms", 1, 99999), b"nobody's")       # orphaned
    status = runner.invoke(args=["forms", "status"])
    assert "round 1 (open)" in status.output and "drift:" in status.output
    result = runner.invoke(args=["forms", "reconcile"])
    assert result.exit_code == 0, result.output
    # Round 1's answered move was never done: found as misplaced, like round 2's wrong-folder form.
    assert result.output.startswith("1 missing form(s) written, 2 misplaced form(s) moved, "
                                    "1 duplicate(s) and 1 orphan(s) removed."), result.output
    assert everything(storage) == expected() and stored_forms.drift().clean
    assert "Alan" in stored(storage, "forms", 2, two)
    assert "Answers in" in stored(storage, "answered", 1, one)
    again = runner.invoke(args=["forms", "reconcile"])
    assert again.output.startswith("0 missing form(s) written, 0 misplaced form(s) moved, "
                                   "0 duplicate(s) and 0 orphan(s)")


def test_without_its_stored_form_the_link_still_works(
        app, client, storage, load_bank, make_participant, api_headers):
    load_bank()
    player = make_participant("Ada").id  # no worker ran: nothing stored yet
    code = links_of(player)[1].code
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    press_start(client, code)
    page = client.get(f"/f/{code}").get_data(as_text=True)
    assert ("data-stored-form" not in page and 'name="csrf_token"' in page
            and "Submit answers" in page)
    assert answer(client, code, [["S3"], ["RDS"]]).status_code == 303


@pytest.mark.parametrize("token", ["forged", "other player's"])
def test_a_stored_form_token_must_be_this_links(app, client, storage, event, api_headers, token):
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    code, other = links_of(event[0])[1].code, links_of(event[1])[1].code
    press_start(client, code)
    page = client.get(f"/f/{code}").get_data(as_text=True)
    data = {"form_token": stored_forms.form_token(other) if token == "other player's" else "f" * 32}
    for field, options in choice_values(page).items():
        data[field] = next(iter(options.values()))
    response = client.post(f"/f/{code}/submit", data=data)
    assert (response.status_code == 400
            and "Reload the page" in html.unescape(response.get_data(as_text=True)))
    assert db.session.scalar(select(Submission.id)) is None


def test_new_questions_render_the_forms_again(app, storage, event, load_bank, run_jobs):
    load_bank(SMALL_BANK.replace("2 + 2?", "3 + 3?").replace('["3", "4", "5"]', '["5", "6", "7"]')
              .replace('answer: "4"', 'answer: "6"'))
    run_jobs()
    assert ("3 + 3?" in stored(storage, "forms", 2, event[0])
            and "2 + 2?" not in stored(storage, "forms", 2, event[0]))
    assert "3 + 3?" not in stored(storage, "forms", 1, event[0])


def test_shred_renders_the_forms_again_without_names(app, client, storage, event, api_headers,
                                                     runner, run_jobs):
    for number in (1, 2):
        client.post(f"/api/admin/start-challenge/{number}", headers=api_headers)
        client.post(f"/api/admin/end-challenge/{number}", headers=api_headers)
    run_jobs()
    assert "Grace" in stored(storage, "unanswered", 2, event[0])
    result = runner.invoke(args=["privacy", "shred", "--force", "--yes"])
    assert result.exit_code == 0, result.output
    names = db.session.scalars(select(Participant.name)).all()
    for key in everything(storage):
        body = storage.get(key).decode()
        assert not any(name in body for name in ("Grace", "Alan", "Ada"))
        assert any(f"<strong>{name}</strong>" in body for name in names)


def test_worker_killed_mid_batch_then_reconcile_leaves_every_form_in_one_place(
        app, client, load_bank, api_headers, s3_server, redis_url, tmp_path, monkeypatch, run_jobs):
    """Forms on S3 (moto): a real worker moving a closed round's forms is kill -9'd halfway;
    reconcile finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from quiz.registration import register_participant, validate_registration
    from quiz.storage import get_storage

    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    storage_url = f"s3://{new_bucket(s3_server)}/event"
    app.config.update(STORAGE_URL=storage_url, S3_ENDPOINT_URL=s3_server)
    state(app).storage = None
    load_bank()
    players = 150  # two batches of moves and then some: the kill lands in the middle
    for n in range(players):
        register_participant(validate_registration({"name": f"P{n}", "email": f"p{n}@example.com",
                                                    "phone": f"+1415556{n:04d}", "consent": True}))
    db.session.commit()
    run_jobs()
    storage = get_storage()
    assert len(storage.keys("forms/challenge1/")) == players
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    # nobody answered: every form to move
    client.post("/api/admin/end-challenge/1", headers=api_headers)

    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": redis_url, "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "x", "ADMIN_API_TOKEN": "x", "STORAGE_URL": storage_url,
           "S3_ENDPOINT_URL": s3_server, "LOG_LEVEL": "WARNING", **AWS_TEST_ENV}
    # Its own process group: the kill takes its RQ scheduler too, as a dying machine would (an
    # orphaned scheduler would go on holding the scheduler lock in the shared Redis for the tests
    # after this one).
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                              start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(storage.keys("unanswered/challenge1/")) < 20:
            assert (time.monotonic() < deadline
                    and worker.poll() is None), "the worker never got going"
            time.sleep(0.02)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    moved = len(storage.keys("unanswered/challenge1/"))
    assert moved < players, "the worker finished before it could be killed: nothing was tested"
    report = stored_forms.drift()
    # Each form is in its old place, its new one, or (caught between copy and delete) both; none
    # lost.
    assert (len(report.misplaced) == players - moved and len(report.duplicated) <= moved
            and not report.missing)
    result = stored_forms.reconcile()
    assert result["misplaced"] + result["duplicated"] > 0
    assert (storage.keys("forms/challenge1/") == []
            and len(storage.keys("unanswered/challenge1/")) == players)
    assert everything(storage) == expected() and stored_forms.drift().clean


def test_console_shows_storage_state_and_repairs_it(app, client, storage, event, run_jobs):
    login(client)
    storage.delete(stored_forms.form_key("forms", 1, event[0]))
    storage.put(stored_forms.form_key("answered", 2, event[1]), b"stray")
    page = " ".join(html.unescape(client.get("/admin/forms/").get_data(as_text=True)).split())
    assert "2 / 3" in page and "1 missing · 0 misplaced · 0 duplicated · 0 orphaned" in page
    assert "0 missing · 0 misplaced · 1 duplicated · 0 orphaned" in page
    response = client.post("/admin/forms/repair", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    run_jobs()
    page = client.get("/admin/forms/").get_data(as_text=True)
    assert page.count("in sync") == 2 and "3 / 3" in page and everything(storage) == expected()


def test_console_regenerates_one_participants_forms(app, client, storage, event, run_jobs):
    login(client)
    participant = db.session.get(Participant, event[0])
    participant.name = "Grace Hopper"
    db.session.commit()
    page = client.get("/admin/participants?q=grace").get_data(as_text=True)
    response = client.post(f"/admin/forms/participants/{event[0]}/regenerate",
                           data={"csrf_token": csrf_from(page), "q": "grace"})
    assert (response.status_code == 303
            and response.headers["Location"].endswith("/admin/participants?q=grace"))
    run_jobs()
    assert "<strong>Grace Hopper</strong>" in stored(storage, "forms", 1, event[0])
    assert "<strong>Grace Hopper</strong>" in stored(storage, "forms", 2, event[0])
    assert client.post("/admin/forms/participants/999/regenerate",
                       data={"csrf_token": csrf_from(page)}).status_code == 404


def test_console_storage_page_needs_login(client, storage):
    assert client.get("/admin/forms/").status_code == 302
    assert client.post("/admin/forms/repair").status_code in (302, 400)


class _Body:
    """A raw HTTP body for a botocore response made up by a test hook."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **kwargs):
        yield self.data


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
def test_s3_throttling_and_server_errors_are_retried(app, storage, load_bank, make_participant,
                                                     run_jobs):
    """Three forms' PutObject first meet a 503 SlowDown, then a 500 (injected in botocore's send
    hook); all arrive."""
    from collections import Counter

    from botocore.awsrequest import AWSResponse
    refused = Counter()

    def flaky(request, **kwargs):
        if refused[request.url] < 2 and (request.url in refused or len(refused) < 3):
            refused[request.url] += 1
            status, code = ((503, "SlowDown") if refused[request.url] == 1
                            else (500, "InternalError"))
            return AWSResponse(request.url, status, {},
                               _Body(f"<Error><Code>{code}</Code></Error>".encode()))
        return None
    storage.client.meta.events.register("before-send.s3.PutObject", flaky)
    load_bank()
    players = [make_participant().id for _ in range(5)]
    run_jobs()
    assert sorted(refused.values()) == [2, 2, 2]  # each refused twice, then stored
    assert everything(storage) == {stored_forms.form_key("forms", n, p)
                                   for n in (1, 2) for p in players}


def test_storage_down_players_still_get_their_form(
        app, client, load_bank, make_participant, api_headers, monkeypatch):
    """S3 unreachable: the link serves the form Knockout renders itself, and answers count."""
    from quiz.storage import S3Storage

    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    state(app).storage = S3Storage("forms", "event", endpoint_url="http://127.0.0.1:9")
    load_bank()
    player = make_participant("Ada").id
    code = links_of(player)[1].code
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    press_start(client, code)
    page = client.get(f"/f/{code}")
    assert page.status_code == 200 and "Submit answers" in page.get_data(as_text=True)
    assert answer(client, code, [["S3"], ["RDS"]]).status_code == 303


def test_the_stored_form_and_the_live_page_carry_the_same_values_in_the_same_order(
        app, client, storage, event, api_headers, run_jobs):
    grace, alan, _ = event
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    pages = {}
    for player in (grace, alan):
        code = links_of(player)[1].code
        press_start(client, code)
        served = client.get(f"/f/{code}").get_data(as_text=True)
        assert 'data-stored-form="forms"' in served  # the stored form, from storage
        live = client.get(f"/f/{code}", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "data-stored-form" not in live  # the page Knockout renders itself
        assert inputs(served) == inputs(live) and len(inputs(live)) == 6
        pages[player] = inputs(live)
    # Another player: other values for the very same choices.
    values = {player: {value for _, value, _ in shown} for player, shown in pages.items()}
    assert not values[grace] & values[alan]
    assert answer(client, links_of(grace)[1].code, [["S3"], ["RDS", "DynamoDB"]]).status_code == 303
    assert db.session.scalar(select(Submission.score)) == 3


def test_forms_regenerate_renders_stored_forms_afresh_after_an_upgrade(app, storage, event,
                                                                      runner):
    """A form stored by an older version (index values: the same for everyone) is rendered again
    with the player's own values."""
    grace = event[0]
    key = stored_forms.form_key("forms", 1, grace)
    storage.put(key, b'<input type="radio" name="q1" value="0"><span>EC2</span>')
    result = runner.invoke(args=["forms", "regenerate", "--round", "1"])
    assert result.exit_code == 0 and "3 form(s) rendered afresh" in result.output
    dealt = [(f"q{q.id}", value, label) for q, choices in dealt_questions(links_of(grace)[1])
             for value, label in choices]
    assert inputs(stored(storage, "forms", 1, grace)) == dealt
    assert runner.invoke(args=["forms", "regenerate", "--round", "9"]).exit_code != 0
