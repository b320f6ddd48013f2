"""The stored form's submit answered before Flask (quiz/web/submit_path.py): the same row, 303,
headers, rate limit and metrics as the route; a repeat's "already in" answered here too
(tests/test_repeat_page.py); every other refusal and everything else handed to the route, which
answers it exactly as before."""
from datetime import timedelta
from urllib.parse import urlencode

import gevent
import pytest
from sqlalchemy import func, select, update
from werkzeug.test import Client

from quiz import stored_forms
from quiz.effects import CHANNEL, Drain, pending_key
from quiz.extensions import db, get_redis, state
from quiz.models import Challenge, FormLink, Submission
from quiz.observability import REGISTRY
from quiz.web import submit_path

from .helpers import answer_form, start, text

PICKS = [["S3"], ["RDS", "DynamoDB"]]


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("knockout_submit_fast_path_total",
                                     {"outcome": outcome}) or 0.0


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Paths:
    """How many submits the fast path answered and handed on since this was made."""

    def __init__(self):
        self.before = counted("answered"), counted("handed_on")

    def answered(self) -> float:
        return counted("answered") - self.before[0]

    def handed_on(self) -> float:
        return counted("handed_on") - self.before[1]


def code_of(participant_id: int, number: int = 1) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == participant_id, Challenge.number == number))


def fields_for(client, code: str, picks=PICKS) -> tuple[str, dict]:
    """The live page's CSRF token, and the answer fields for `picks`."""
    token, fields = answer_form(client, code)
    data = {}
    for (name, options), chosen in zip(fields.items(), picks):
        data[name] = [options[c] for c in chosen]
    return token, data


def stored_form_body(code: str, data: dict) -> dict:
    """What a phone's stored form posts: its fields and the form's own token (no session)."""
    return {"form_token": stored_forms.form_token(code), **data}


def rows() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Submission))


@pytest.fixture
def players(client, load_bank, make_participant, open_round):
    """Two players with round 1 open and Start pressed: their codes."""
    load_bank()
    ids = [make_participant(name).id for name in ("Grace", "Alan")]
    open_round()
    codes = [code_of(i) for i in ids]
    for code in codes:
        assert start(client, code).status_code == 303
    return codes


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_a_stored_form_submit_is_answered_before_flask_with_the_routes_303_and_headers(
        app, client, players):
    fast_code, flask_code = players
    paths = Paths()
    submissions = metric("knockout_submissions_total")
    latency = metric("knockout_request_seconds_count", endpoint="play.submit", method="POST")
    _, data = fields_for(client, fast_code)
    fast = client.post(f"/f/{fast_code}/submit", data=stored_form_body(fast_code, data),
                       headers={"X-Request-ID": "phone-42"})
    assert (paths.answered(), paths.handed_on()) == (1, 0)
    # the same stored form's submit as it was answered before: by the route alone
    _, data = fields_for(client, flask_code)
    fast_path = app.wsgi_app  # under the outer wrappers (quiz/web/priority.py)
    while not isinstance(fast_path, submit_path.SubmitFastPath):
        fast_path = fast_path.wrapped
    route_alone = Client(fast_path.wrapped, app.response_class)
    through_flask = route_alone.post(f"/f/{flask_code}/submit",
                                     data=stored_form_body(flask_code, data))
    assert (paths.answered(), paths.handed_on()) == (1, 0)

    assert fast.status_code == through_flask.status_code == 303
    assert fast.headers["Location"] == f"/f/{fast_code}"
    assert through_flask.headers["Location"] == f"/f/{flask_code}"
    assert fast.headers["X-Request-ID"] == "phone-42"
    varying = {"Location", "X-Request-ID", "Retry-After", "X-RateLimit-Reset", "Content-Length"}
    assert sorted(fast.headers.keys()) == sorted(through_flask.headers.keys())
    assert ({k: v for k, v in fast.headers if k not in varying}
            == {k: v for k, v in through_flask.headers if k not in varying})
    assert fast.headers["X-RateLimit-Remaining"] == "29"
    assert (fast.get_data(as_text=True).replace(fast_code, "CODE")
            == through_flask.get_data(as_text=True).replace(flask_code, "CODE"))
    # one row each, scored alike; both counted in /metrics
    assert rows() == 2
    assert set(db.session.scalars(select(Submission.score))) == {3}
    assert metric("knockout_submissions_total") - submissions == 2
    assert metric("knockout_request_seconds_count", endpoint="play.submit",
                  method="POST") - latency == 2
    assert "Answers in" in text(client.get(f"/f/{fast_code}"))


def test_a_submit_answered_here_still_sends_what_it_owes(client, players):
    """After the commit: the player's stored form moves to answered/ (the pending set), and the live
    pages hear that something changed."""
    code = players[0]
    listener = get_redis().pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    _, data = fields_for(client, code)
    paths = Paths()
    assert client.post(f"/f/{code}/submit", data=stored_form_body(code, data)).status_code == 303
    assert paths.answered() == 1
    link = db.session.scalar(select(FormLink).where(FormLink.code == code))
    pending = get_redis().smembers(pending_key(Drain.ANSWERED_FORMS, link.challenge_id))
    assert {int(i) for i in pending} == {link.participant_id}
    messages = [listener.get_message(timeout=1) for _ in range(3)]  # the first: the subscription
    listener.close()
    assert {"type": "message", "pattern": None, "channel": CHANNEL.encode(),
            "data": b"changed"} in messages


@pytest.mark.config(RATELIMIT_ENABLED=True)
@pytest.mark.parametrize("last", ["stored form", "live page"])
def test_the_fast_path_and_the_route_count_against_one_limit(client, players, last):
    """30 a minute per link, however they come: the 31st is a 429 whichever way it comes, and a
    request the fast path counted then handed on is not counted twice."""
    code = players[0]
    token, data = fields_for(client, code)
    stored_form = stored_form_body(code, data)
    live_page = {"csrf_token": token, **data}
    paths = Paths()
    statuses = [client.post(f"/f/{code}/submit", data=stored_form).status_code
                for _ in range(15)]  # the first stores; the repeats are refused here too
    statuses += [client.post(f"/f/{code}/submit", data=live_page).status_code for _ in range(15)]
    assert statuses == [303] + [200] * 29
    assert (paths.answered(), paths.handed_on()) == (15, 15)
    over = client.post(f"/f/{code}/submit",
                       data=stored_form if last == "stored form" else live_page)
    assert over.status_code == 429 and "Too many" in text(over)
    assert rows() == 1
    # another player behind the same address is not affected
    _, other = fields_for(client, players[1])
    assert client.post(f"/f/{players[1]}/submit",
                       data=stored_form_body(players[1], other)).status_code == 303


def close_round(client, api_headers, code):
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200


def time_up(client, api_headers, code):
    link = db.session.scalar(select(FormLink).where(FormLink.code == code))
    link.window_ends_at = link.started_at = link.started_at - timedelta(minutes=5)
    link.window_ends_at += timedelta(seconds=30)
    db.session.commit()


def not_started(client, api_headers, code):
    db.session.execute(update(FormLink).where(FormLink.code == code)
                       .values(started_at=None, window_ends_at=None))
    db.session.commit()


def doubled(client, api_headers, code):
    _, data = fields_for(client, code)
    assert client.post(f"/f/{code}/submit", data=stored_form_body(code, data)).status_code == 303


def eliminated(client, api_headers, code):
    """Out in round 1 (no answer; the shadow league is off here), posting to their round 2."""
    close_round(client, api_headers, code)
    assert client.post("/api/admin/start-challenge/2", headers=api_headers).status_code == 200
    return code_of(db.session.scalar(select(FormLink.participant_id)
                                     .where(FormLink.code == code)), 2)


@pytest.mark.config(SHADOW_LEAGUE=False)
@pytest.mark.parametrize("arrange, status, message", [
    (doubled, 200, "Your answers are already in"),
    (close_round, 409, "Round 1 is closed"),
    (time_up, 409, "Your time for round 1 is up"),
    (not_started, 409, "Press Start first"),
    (eliminated, 403, "knocked out in round 1"),
])
def test_every_refusal_is_the_routes_own_answer(client, players, api_headers, arrange, status,
                                                message):
    code = players[0]
    token, data = fields_for(client, code)
    code = arrange(client, api_headers, code) or code
    before = rows()
    paths = Paths()
    through_here = client.post(f"/f/{code}/submit", data=stored_form_body(code, data))
    # "already in" is answered here (quiz/web/repeat_page.py), every other refusal by the route
    assert (paths.answered(), paths.handed_on()) == ((1, 0) if arrange is doubled else (0, 1))
    through_flask = client.post(f"/f/{code}/submit", data={"csrf_token": token, **data})
    for response in (through_here, through_flask):
        assert response.status_code == status and message in text(response), text(response)[:400]
    assert rows() == before


def first_question(data: dict) -> str:
    return next(name for name in data if name.startswith("q"))


@pytest.mark.parametrize("mangle, status, message", [
    (lambda code, data: data.update({first_question(data): "abc"}), 422,
     "isn't one of the options"),
    (lambda code, data: data.pop(first_question(data)), 422, "needs an answer"),
    (lambda code, data: data.update({"q999999": "0"}), 422, "not in this round"),
    (lambda code, data: data.update({"form_token": "f" * 32}), 400, "Reload the page"),
    (lambda code, data: data.pop("form_token"), 400, "Reload the page"),
    (lambda code, data: data.update(
        {"form_token": stored_forms.form_token(code[:-1] + ("A" if code[-1] != "A" else "B"))}),
     400, "Reload the page"),
])
def test_bad_answers_and_bad_tokens_get_the_routes_answer(client, players, mangle, status,
                                                          message):
    code = players[0]
    _, data = fields_for(client, code)
    body = stored_form_body(code, data)
    mangle(code, body)
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data=body)
    assert response.status_code == status and message in text(response)
    assert (paths.answered(), paths.handed_on()) == (0, 1)
    assert rows() == 0


def test_an_unknown_link_gets_the_routes_404(client, players):
    code = "Z" * 22
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data={"form_token": stored_forms.form_token(code)})
    assert response.status_code == 404 and "This link is not valid" in text(response)
    assert (paths.answered(), paths.handed_on()) == (0, 1)


def test_the_live_pages_submit_and_multipart_bodies_go_to_the_route(client, players):
    """A missing form_token with the session's CSRF token, or a multipart body with a form_token:
    not taken here, and the route stores them as before (the body read here is handed on)."""
    live, multipart = players
    token, data = fields_for(client, live)
    paths = Paths()
    assert client.post(f"/f/{live}/submit", data={"csrf_token": token, **data}).status_code == 303
    _, data = fields_for(client, multipart)
    response = client.post(f"/f/{multipart}/submit", data=stored_form_body(multipart, data),
                           content_type="multipart/form-data")
    assert response.status_code == 303
    assert (paths.answered(), paths.handed_on()) == (0, 2)
    assert rows() == 2


@pytest.mark.config(MAX_CONTENT_LENGTH=2048)
def test_garbled_and_over_long_bodies_get_the_routes_answer(client, players):
    code = players[0]
    _, data = fields_for(client, code)
    token = stored_forms.form_token(code)
    paths = Paths()
    garbled = client.post(f"/f/{code}/submit", data=f"form_token={token}&q1=%FF%FE".encode(),
                          content_type="application/x-www-form-urlencoded")
    assert garbled.status_code == 400 and "garbled" in text(garbled)
    too_long = client.post(f"/f/{code}/submit",
                           data={**stored_form_body(code, data), "padding": "x" * 4096})
    assert too_long.status_code == 413
    assert (paths.answered(), paths.handed_on()) == (0, 2)
    assert rows() == 0


class Broken:
    """A metric that fails (a full disk under prometheus' multiprocess files, a bug)."""

    def inc(self, *args):
        raise OSError("no space left on device")


def test_a_failure_after_the_row_is_stored_still_answers_303_never_already_in(
        client, players, monkeypatch):
    """Handing the request on after its row is stored would run the submit again and tell the
    player "already in" (or an error) for the answers just stored: it answers 303 instead."""
    code = players[0]
    _, data = fields_for(client, code)
    monkeypatch.setattr(submit_path, "SUBMISSIONS", Broken())
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data=stored_form_body(code, data))
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{code}"
    assert response.headers["Content-Security-Policy"]  # what the app adds, still there
    assert (paths.answered(), paths.handed_on()) == (1, 0)
    assert rows() == 1


def test_an_error_before_the_row_is_stored_hands_the_submit_to_the_route(
        client, players, monkeypatch):
    code = players[0]
    _, data = fields_for(client, code)

    def clock_fails():
        raise RuntimeError("clock source gone")
    monkeypatch.setattr(submit_path, "utcnow", clock_fails)
    paths = Paths()
    response = client.post(f"/f/{code}/submit", data=stored_form_body(code, data))
    assert response.status_code == 303  # the route stored it
    assert (paths.answered(), paths.handed_on()) == (0, 1)
    assert rows() == 1


def test_a_rush_of_stored_form_submits_goes_through_the_group_commit_once_each(
        app, client, load_bank, make_participant, open_round):
    """As in a gevent web process: the fast path's submits, posted at once, meet in the writer's
    batches; each stored once, each answered 303 once committed, a repeat refused ("already
    in")."""
    load_bank()
    ids = [make_participant(f"Player {i}").id for i in range(10)]
    open_round()
    posts = []
    for participant_id in ids:
        code = code_of(participant_id)
        assert start(client, code).status_code == 303
        posts.append((code, stored_form_body(code, fields_for(client, code)[1])))
    db.session.commit()
    writer = state(app).submit_writer
    writer.batched = True
    batches, paths = writer.batches, Paths()
    greenlets = [gevent.spawn(client.post, f"/f/{code}/submit", data=body)
                 for code, body in posts + posts[:2]]
    gevent.joinall(greenlets, raise_error=True)
    statuses = [g.value.status_code for g in greenlets]
    assert sorted(statuses) == [200] * 2 + [303] * 10
    assert paths.answered() == 12 and paths.handed_on() == 0
    assert writer.batches - batches < 10
    db.session.rollback()
    assert dict(db.session.execute(select(Submission.participant_id, func.count())
                                   .group_by(Submission.participant_id)).all()) == {
        i: 1 for i in ids}


def test_a_body_shorter_than_its_length_goes_to_the_route(client, players):
    """The phone went away mid-body: not taken here; the route answers as it does to that."""
    code = players[0]
    _, data = fields_for(client, code)
    paths = Paths()
    body = urlencode(stored_form_body(code, data), doseq=True).encode()
    response = client.post(f"/f/{code}/submit", data=body,
                           content_type="application/x-www-form-urlencoded",
                           environ_overrides={"CONTENT_LENGTH": str(len(body) + 50)})
    assert response.status_code == 400
    assert (paths.answered(), paths.handed_on()) == (0, 1)
    assert rows() == 0
