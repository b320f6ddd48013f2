"""A player's link: the right page per state, the clock on Start, answers stored exactly once."""
import html
import re
import time

import pytest
from sqlalchemy import event, func, select

from quiz.extensions import db
from quiz.models import FormLink, Submission

from .helpers import answer_form, csrf_from, make_config, session_token, start, submit, text


def test_states_from_not_open_to_submitted(client, player, open_round):
    _, links = player
    assert "Not started yet" in text(client.get(f"/f/{links[1]}"))
    open_round()
    ready = text(client.get(f"/f/{links[1]}"))
    assert "Ready?" in ready and "Start" in ready and "Which service" not in ready
    assert start(client, links[1]).status_code == 303
    assert "Which service stores objects?" in text(client.get(f"/f/{links[1]}"))
    response = submit(client, links[1], [["S3"], ["RDS", "DynamoDB"]])
    assert response.status_code == 303
    assert "Answers in" in text(client.get(f"/f/{links[1]}"))
    stored = db.session.scalar(select(Submission))
    assert (stored.score, stored.correct) == (3, 2)
    assert stored.answers == {str(q): a for q, a in zip(sorted(map(int, stored.answers)),
                                                        [["S3"], ["RDS", "DynamoDB"]])}


def test_opening_the_link_never_starts_the_clock(client, player, open_round):
    _, links = player
    open_round()
    for _ in range(3):
        client.get(f"/f/{links[1]}")
    assert db.session.scalar(select(FormLink.started_at).where(FormLink.code == links[1])) is None


def test_response_time_runs_from_start_to_arrival_and_a_second_start_keeps_the_clock(
        client, player, open_round):
    _, links = player
    open_round()
    start(client, links[1])
    first = db.session.scalar(select(FormLink.started_at).where(FormLink.code == links[1]))
    time.sleep(0.3)
    start(client, links[1])
    db.session.expire_all()
    assert db.session.scalar(select(FormLink.started_at).where(FormLink.code == links[1])) == first
    submit(client, links[1], [["S3"], ["RDS"]])
    assert db.session.scalar(select(Submission.response_time)) >= 0.3


def test_question_page_has_no_answer_key_and_choices_shuffle_per_player(
        client, app, load_bank, make_participant, open_round):
    load_bank()
    players = [make_participant() for _ in range(8)]
    open_round()
    orders = set()
    for participant in players:
        code = db.session.scalar(select(FormLink.code)
                                 .where(FormLink.participant_id == participant.id))
        start(client, code)
        page = client.get(f"/f/{code}").get_data(as_text=True)
        assert "answer" not in page.lower().replace("answers", "")
        assert "points" not in page
        orders.add(tuple(re.findall(r"<span>(EC2|S3|SQS)</span>", page)))
    assert len(orders) > 1


def started(client, code, open_round) -> tuple[str, dict, list[str]]:
    """Round 1 open, this player's Start pressed: the form's token, fields and field names."""
    open_round()
    start(client, code)
    token, fields = answer_form(client, code)
    return token, fields, list(fields)


def test_double_submit_gets_already_submitted_and_one_row(client, player, open_round):
    _, links = player
    token, fields, names = started(client, links[1], open_round)
    first = {"csrf_token": token, names[0]: fields[names[0]]["S3"],
             names[1]: [fields[names[1]]["RDS"]]}
    other = {"csrf_token": token, names[0]: fields[names[0]]["EC2"],
             names[1]: [fields[names[1]]["Lambda"]]}
    assert client.post(f"/f/{links[1]}/submit", data=first).status_code == 303
    for body in (first, other):
        again = client.post(f"/f/{links[1]}/submit", data=body)
        assert again.status_code == 200
        assert "already in" in text(again)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 1
    assert db.session.scalar(select(Submission.score)) == 1


def test_a_doubled_submit_is_answered_from_two_reads(client, player, open_round):
    """A doubled tap comes with every burst: its page (the round, "already in") costs the submit's
    own read and one more, not a read per part of the page."""
    _, links = player
    token, fields, names = started(client, links[1], open_round)
    body = {"csrf_token": token, names[0]: fields[names[0]]["S3"],
            names[1]: [fields[names[1]]["RDS"]]}
    assert client.post(f"/f/{links[1]}/submit", data=body).status_code == 303
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        again = client.post(f"/f/{links[1]}/submit", data=body)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert again.status_code == 200 and "already in" in text(again)
    assert len(statements) <= 2, statements


@pytest.mark.parametrize("mangle, message", [
    (lambda d, f: d.pop(next(iter(f))), "needs an answer"),
    (lambda d, f: d.update({next(iter(f)): "99"}), "isn't one of the options"),
    (lambda d, f: d.update({next(iter(f)): "abc"}), "isn't one of the options"),
    (lambda d, f: d.update({next(iter(f)): list(next(iter(f.values())).values())[:2]}),
     "takes one answer"),
    (lambda d, f: d.update({"q999999": "0"}), "not in this round"),
])
def test_bad_answers_are_refused_and_nothing_is_stored(client, player, open_round, mangle, message):
    _, links = player
    token, fields, names = started(client, links[1], open_round)
    data = {"csrf_token": token, names[0]: fields[names[0]]["S3"],
            names[1]: [fields[names[1]]["RDS"]]}
    mangle(data, fields)
    response = client.post(f"/f/{links[1]}/submit", data=data)
    assert response.status_code == 422
    assert message in text(response)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0


def test_submit_without_start_is_refused(client, player, open_round):
    _, links = player
    open_round()
    response = client.post(f"/f/{links[1]}/submit", data={"csrf_token": session_token(client)})
    assert response.status_code == 409
    assert "Press Start first" in text(response)


def test_submission_after_close_is_refused_with_a_clear_page(
        client, player, make_participant, api_headers, open_round):
    _, links = player
    open_round()
    start(client, links[1])
    token, fields = answer_form(client, links[1])
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    names = list(fields)
    response = client.post(f"/f/{links[1]}/submit", data={
        "csrf_token": token, names[0]: fields[names[0]]["S3"], names[1]: [fields[names[1]]["RDS"]]})
    assert response.status_code == 409
    assert "Round 1 is closed" in text(response)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0


def test_time_limit_plus_grace_closes_submissions(client, app, player, open_round):
    from quiz.models import Challenge
    _, links = player
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    challenge.time_limit_seconds = 5
    db.session.commit()
    open_round()
    start(client, links[1])
    token, fields = answer_form(client, links[1])
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    # Move the player's own time into the past instead of sleeping: 5 s limit, 1 s grace,
    # started 7 s ago (their time runs from their Start; the round itself is still open).
    from datetime import timedelta
    from quiz.models import FormLink
    link = db.session.scalar(select(FormLink).where(FormLink.code == links[1]))
    link.started_at -= timedelta(seconds=7)
    link.window_ends_at -= timedelta(seconds=7)
    db.session.commit()
    names = list(fields)
    response = client.post(f"/f/{links[1]}/submit", data={
        "csrf_token": token, names[0]: fields[names[0]]["S3"], names[1]: [fields[names[1]]["RDS"]]})
    assert response.status_code == 409
    assert "Your time for round 1 is up" in text(response)
    assert challenge.is_open


def test_unknown_and_malformed_links_are_404(client, player):
    _, links = player
    for code in ("A" * 22, links[1][:-1] + ("A" if links[1][-1] != "A" else "B"), "short",
                 "x" * 200):
        response = client.get(f"/f/{code}")
        assert response.status_code == 404
        assert "This link is not valid" in text(response)


# on, the shadow league offers the round instead (tests/test_shadow.py)
@pytest.mark.config(SHADOW_LEAGUE=False)
def test_eliminated_player_sees_out_page_for_the_next_round(client, player, make_participant,
                                                            api_headers, open_round):
    _, links = player
    open_round()
    client.post("/api/admin/end-challenge/1", headers=api_headers)  # Grace never answered
    open_round(2)
    response = client.get(f"/f/{links[2]}")
    assert "You're out" in text(response) and "knocked out in round 1" in text(response)
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    refused = client.post(f"/f/{links[2]}/start", data={"csrf_token": token})
    assert refused.status_code == 403
    assert db.session.scalar(select(FormLink.started_at).where(FormLink.code == links[2])) is None


def test_waiting_pages_wait_on_the_shared_status_and_the_questions_page_does_not(
        client, player, api_headers, open_round):
    """Waiting pages carry the status version they were rendered at (static/js/waiting.js polls
    /api/status and fetches this fragment when it changes); the questions page never refreshes."""
    _, links = player
    fragment = client.get(f"/f/{links[1]}", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.startswith("{#") is False and "<html" not in body and 'id="round-state"' in body
    assert "data-status-version=" in body and "HX-Request" in fragment.headers["Vary"]
    assert "hx-trigger" not in body  # not its own page: the shared status
    token, fields, names = started(client, links[1], open_round)
    # questions: no polling
    page = client.get(f"/f/{links[1]}").get_data(as_text=True)
    assert "hx-trigger" not in page and "data-status-version" not in page
    client.post(f"/f/{links[1]}/submit", data={"csrf_token": token,
                                               names[0]: fields[names[0]]["S3"],
                                               names[1]: [fields[names[1]]["RDS"]]})
    # waiting for results
    assert "data-status-version" in client.get(f"/f/{links[1]}").get_data(as_text=True)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    final = client.get(f"/f/{links[1]}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "You're through" in html.unescape(final) and "data-status-version" not in final


def test_a_doubled_post_that_passes_the_check_together_is_stopped_by_the_key(
        client, player, open_round, monkeypatch):
    """Two POSTs that both see "not in yet" (concurrent requests): the INSERT's unique key lets one
    through."""
    from quiz import answers
    _, links = player
    token, fields, names = started(client, links[1], open_round)
    body = {"csrf_token": token, names[0]: fields[names[0]]["S3"],
            names[1]: [fields[names[1]]["RDS"]]}
    assert client.post(f"/f/{links[1]}/submit", data=body).status_code == 303
    real = answers.state_of
    # as if the first weren't committed yet
    monkeypatch.setattr(answers, "state_of", lambda link, now, grace: answers.QUESTIONS
                        if link.submitted else real(link, now, grace))
    again = client.post(f"/f/{links[1]}/submit", data=body)
    assert again.status_code == 200
    assert "already in" in text(again)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 1


def test_questions_remembered_per_database_never_leak_into_another(tmp_path, redis_url):
    """Two databases whose round 1 has the same id and opening time but other answers: each scores
    by its own."""
    from datetime import datetime

    from quiz import create_app
    from quiz.answers import submit_answers
    from quiz.deal import choice_value
    from quiz.models import Challenge
    from quiz.questions import apply_bank, parse_bank
    from werkzeug.datastructures import MultiDict

    opened = datetime(2026, 11, 23, 9, 0)
    scores = []
    for answer in ("a", "b"):
        directory = tmp_path / answer
        directory.mkdir()
        app = create_app(make_config(directory, redis_url))
        with app.app_context():
            db.create_all()
            apply_bank(parse_bank(f"challenges: [{{number: 1, title: T, questions: "
                                  f"[{{text: Q, choices: [a, b], answer: {answer}}}]}}]"))
            from quiz.registration import register_participant
            register_participant({"name": "Ada", "email": "ada@example.com",
                                  "phone": "+12025550100", "company": "", "consent": True})
            db.session.commit()
            challenge = db.session.scalar(select(Challenge))
            challenge.status, challenge.opened_at = "open", opened
            link = db.session.scalar(select(FormLink))
            link.started_at = opened
            question_id = challenge.questions[0].id
            db.session.commit()
            picks_a = choice_value(app.config["SECRET_KEY"], link.code, question_id, 0)
            submit_answers(link.code, MultiDict({f"q{question_id}": picks_a}), opened)
            db.session.commit()
            scores.append(db.session.scalar(select(Submission.score)))
            db.session.remove()
            db.engine.dispose()
    assert scores == [1, 0]


def test_a_draft_rounds_questions_are_never_remembered(app, load_bank):
    """A draft round's questions may still change (bank reload): only an open round's are kept per
    process."""
    from quiz.answers import _questions
    from quiz.models import Challenge
    load_bank("challenges: [{number: 1, title: T, questions: "
              "[{text: Old, choices: [a, b], answer: a}]}]")
    challenge_id = db.session.scalar(select(Challenge.id))
    assert [q.answer for q in _questions(db.session.connection(), challenge_id, None)] == [["a"]]
    load_bank("challenges: [{number: 1, title: T, questions: "
              "[{text: New, choices: [a, b], answer: b}]}]")
    assert [q.answer for q in _questions(db.session.connection(), challenge_id, None)] == [["b"]]


def test_the_page_after_submitting_shows_no_score_or_time_until_the_close(
        client, player, open_round, api_headers):
    _, links = player
    open_round()
    start(client, links[1])
    submit(client, links[1], [["S3"], ["RDS", "DynamoDB"]])
    stored = db.session.scalar(select(Submission))
    for page in (text(client.get(f"/f/{links[1]}")),
                 text(client.get(f"/f/{links[1]}", headers={"HX-Request": "true"}))):
        assert "Answers in" in page and "results come when the round ends" in page
        assert f"{stored.response_time:.1f} s" not in page and "ranked" not in page
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    page = text(client.get(f"/f/{links[1]}"))
    assert f"Received in {stored.response_time:.1f} s" in page and "ranked 1" in page
