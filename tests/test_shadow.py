"""The shadow league (knocked-out players play on, never for the prize) and
PRIZE_REQUIRES_CHECKIN."""
import html
import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from quiz import rounds, shadow, stored_forms
from quiz.clock import utcnow
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Message, Participant, Submission
from quiz.questions import apply_bank, parse_bank
from quiz.ranking import ShadowTotal, shadow_key, shadow_standings

from .helpers import csrf_from, report_rows, rows_of, session_token, start, submit, text
from .players import Api, answer_over_http, connect, load_demo_bank, wait_for

QUESTIONS = """
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
      - text: Which are databases?
        choices: [RDS, Lambda, DynamoDB]
        answer: [RDS, DynamoDB]
        points: 2
"""
# Three rounds of the same two questions (3 points for all right); each keeps the top half.
BANK = "challenges:\n" + "".join(
    f"  - number: {n}\n    title: Round {n}\n    keep_fraction: 0.5\n{QUESTIONS}"
    for n in (1, 2, 3))
RIGHT = [["S3"], ["RDS", "DynamoDB"]]  # 3 points
HALF = [["S3"], ["RDS"]]  # 1 point
WRONG = [["EC2"], ["Lambda"]]  # 0 points
INVITE = "You're out of the prize, but you can still play this round in the shadow league"


def code_of(pid: int, number: int) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge)
                             .where(FormLink.participant_id == pid, Challenge.number == number))


def play(client, pid: int, number: int, picks) -> None:
    start(client, code_of(pid, number))
    assert submit(client, code_of(pid, number), picks).status_code == 303


def snapshot() -> dict:
    """Everything the real game decides, to show a refused request changed none of it."""
    return {"players": db.session.execute(select(Participant.id, Participant.eliminated_in,
                                                 Participant.elimination_reason)
                                          .order_by(Participant.id)).all(),
            "submissions": db.session.execute(select(Submission.participant_id,
                                                     Submission.challenge_id, Submission.score,
                                                     Submission.rank, Submission.shadow)
                                              .order_by(Submission.id)).all(),
            "started": db.session.execute(select(FormLink.id, FormLink.started_at)
                                          .order_by(FormLink.id)).all()}


@pytest.fixture
def knocked_out(app, client, make_participant, api_headers, open_round):
    """Round 1 played: Ann 3, Bob 1 → through; Cy 0 → ranked out; Di no answer → out. Round 2
    open."""
    apply_bank(parse_bank(BANK))
    db.session.commit()
    ids = {name: make_participant(name).id for name in ("Ann", "Bob", "Cy", "Di")}
    open_round()
    for name, picks in (("Ann", RIGHT), ("Bob", HALF), ("Cy", WRONG)):
        play(client, ids[name], 1, picks)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    open_round(2)
    return ids


# --- the player's side ---------------------------------------------------------------------------

def test_a_knocked_out_player_plays_the_next_round_in_the_shadow_league(client, knocked_out,
                                                                        api_headers):
    code = code_of(knocked_out["Cy"], 2)
    page = text(client.get(f"/f/{code}"))
    assert INVITE in page and "Ready?" in page and "Which service" not in page
    assert start(client, code).status_code == 303
    questions = text(client.get(f"/f/{code}"))
    assert INVITE in questions and "Which service stores objects?" in questions
    assert "RDS, DynamoDB" not in questions  # never the answer key
    assert submit(client, code, RIGHT).status_code == 303
    done = text(client.get(f"/f/{code}"))
    # no score while the round is open: it would say which answers were right
    assert ("Answers in" in done and "Shadow league — not ranked for the prize." in done
            and "3 points" not in done and "Received in" not in done)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    done = text(client.get(f"/f/{code}"))
    assert "Answers in" in done and "Shadow league — not ranked for the prize: 3 points" in done
    stored = db.session.scalar(select(Submission)
                               .where(Submission.participant_id == knocked_out["Cy"])
                               .join(Challenge).where(Challenge.number == 2))
    assert (stored.shadow, stored.score, stored.correct, stored.rank) == (True, 3, 2, None)
    # still out of the prize
    assert db.session.get(Participant, knocked_out["Cy"]).eliminated_in == 1


def test_the_round_they_were_knocked_out_in_points_to_the_shadow_league(client, knocked_out):
    for name in ("Cy", "Di"):  # ranked out / no answer
        page = text(client.get(f"/f/{code_of(knocked_out[name], 1)}"))
        assert ("you're out this time" in page.lower()
                and "still play the next rounds in the shadow league" in page)


def test_shadow_players_who_would_rank_first_never_touch_the_real_round(
        client, knocked_out, api_headers, open_round):
    ids = knocked_out
    play(client, ids["Cy"], 2, RIGHT)  # 3 points, the best score of the round...
    play(client, ids["Di"], 2, RIGHT)
    play(client, ids["Ann"], 2, WRONG)
    play(client, ids["Bob"], 2, HALF)
    board = client.get("/api/leaderboard/2", headers=api_headers).get_json()["entries"]
    # ...yet not in the round's ranking
    assert [e["user_id"] for e in board] == [ids["Bob"], ids["Ann"]]
    assert client.get("/display", headers={"HX-Request": "true"}).status_code == 200
    assert "<strong>2</strong> of 2 answered" in text(client.get("/display"))
    summary = client.post("/api/admin/end-challenge/2", headers=api_headers).get_json()
    assert (summary["submitted"], summary["kept"], summary["eliminated_ranked_out"]) == (2, 1, 1)
    ranks = dict(db.session.execute(select(Submission.participant_id, Submission.rank)
                                    .join(Challenge).where(Challenge.number == 2)).all())
    assert ranks == {ids["Bob"]: 1, ids["Ann"]: 2, ids["Cy"]: None, ids["Di"]: None}
    out = dict(db.session.execute(select(Participant.id, Participant.eliminated_in)).all())
    assert out == {ids["Ann"]: 2, ids["Bob"]: None, ids["Cy"]: 1, ids["Di"]: 1}
    assert [e["user_id"] for e in client.get("/api/leaderboard/2").get_json()["entries"]] == [
        ids["Bob"], ids["Ann"]]
    # The final: Bob alone in the real round, the shadow players score more; Bob still wins.
    open_round(3)
    for name in ("Cy", "Di", "Ann"):
        play(client, ids[name], 3, RIGHT)
    play(client, ids["Bob"], 3, WRONG)
    assert client.post("/api/admin/end-challenge/3",
                       headers=api_headers).get_json()["winner_id"] == ids["Bob"]
    assert rounds.winner().id == ids["Bob"]
    assert "Bob wins!" in text(client.get("/display"))


def test_exactly_once_and_the_same_close_rules(client, knocked_out, api_headers):
    code = code_of(knocked_out["Cy"], 2)
    token = session_token(client)
    early = client.post(f"/f/{code}/submit", data={"csrf_token": token})
    assert early.status_code == 409 and "Press Start first" in text(early)
    play(client, knocked_out["Cy"], 2, RIGHT)
    before = snapshot()
    again = submit(client, code, WRONG)
    assert "already in" in text(again) and snapshot() == before
    late = code_of(knocked_out["Di"], 2)
    start(client, late)
    token = csrf_from(client.get(f"/f/{late}").get_data(as_text=True))
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    before = snapshot()
    refused = client.post(f"/f/{late}/submit", data={"csrf_token": token})
    assert refused.status_code == 409 and "closed" in text(refused) and snapshot() == before


def test_the_time_limit_and_grace_apply_too(client, knocked_out, app):
    code = code_of(knocked_out["Cy"], 2)
    start(client, code)
    token = csrf_from(client.get(f"/f/{code}").get_data(as_text=True))
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 2))
    challenge.closes_at = utcnow() - timedelta(seconds=app.config["SUBMIT_GRACE_SECONDS"] + 1)
    db.session.commit()
    before = snapshot()
    refused = client.post(f"/f/{code}/submit", data={"csrf_token": token})
    assert refused.status_code == 409 and "closed" in text(refused) and snapshot() == before


def test_disqualified_players_are_not_invited(client, app, make_participant, api_headers,
                                              open_round):
    apply_bank(parse_bank(BANK))
    db.session.commit()
    eve, fay = make_participant("Eve"), make_participant("Fay")
    open_round()
    rounds.disqualify(db.session.get(Participant, eve.id), "two phones")
    db.session.commit()
    play(client, fay.id, 1, RIGHT)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    open_round(2)
    code = code_of(eve.id, 2)
    page = text(client.get(f"/f/{code}"))
    assert "knocked out in round 1" in page and "shadow league" not in page
    before = snapshot()
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    assert client.post(f"/f/{code}/start", data={"csrf_token": token}).status_code == 403
    assert snapshot() == before
    assert "shadow league" not in text(
        client.get(f"/r/{db.session.get(Participant, eve.id).report_code}"))


@pytest.mark.config(SHADOW_LEAGUE=False)
def test_off_means_todays_behaviour(client, knocked_out, run_jobs):
    code = code_of(knocked_out["Cy"], 2)
    page = text(client.get(f"/f/{code}"))
    assert ("You're out" in page and "knocked out in round 1" in page
            and "shadow" not in page.lower())
    before = snapshot()
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    assert client.post(f"/f/{code}/start", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/f/{code}/submit", data={"csrf_token": token}).status_code == 403
    assert snapshot() == before
    run_jobs()
    kinds = {m.kind for m in db.session.scalars(
        select(Message).where(Message.participant_id == knocked_out["Cy"]))}
    assert "result_out" in kinds and "result_out_shadow" not in kinds
    assert client.get("/api/shadow").status_code == 404
    assert "shadow" not in text(client.get("/display")).lower()
    report = rows_of(text(client.get(
        f"/r/{db.session.get(Participant, knocked_out['Cy']).report_code}")))
    assert report[2]["verdict"] == "Not played: knocked out earlier."


# --- how they hear of it -------------------------------------------------------------------------

def test_one_sms_invites_to_the_shadow_league_and_no_link_per_round(client, knocked_out, run_jobs,
                                                                    api_headers):
    ids = knocked_out
    run_jobs()
    sent = {(m.participant_id, m.kind): m.body for m in db.session.scalars(select(Message))}
    for name in ("Cy", "Di"):
        body = sent[ids[name], "result_out_shadow"]
        assert ("shadow league" in body
                and body.endswith(db.session.get(Participant, ids[name]).report_code))
        assert (ids[name], "result_out") not in sent
    round2 = {m.participant_id for m in db.session.scalars(select(Message).join(Challenge).where(
        Challenge.number == 2, Message.kind == "round_link"))}
    # no new link texted to the knocked-out players
    assert round2 == {ids["Ann"], ids["Bob"]}


def test_the_report_lists_shadow_rounds_apart(client, knocked_out, api_headers):
    ids = knocked_out
    report = db.session.get(Participant, ids["Cy"]).report_code
    page = text(client.get(f"/r/{report}"))
    assert ("still play the next rounds in the shadow league" in " ".join(page.split())
            and f"/f/{code_of(ids['Cy'], 2)}" in page)
    assert (rows_of(page)[2]["verdict"]
            == "Open now in the shadow league — not ranked for the prize.")
    play(client, ids["Cy"], 2, RIGHT)
    seconds = db.session.scalar(select(Submission.response_time).where(Submission.shadow.is_(True)))
    # While round 2 is open: answers in, no score, time or totals yet.
    assert report_rows(client, report)[2] == {
        "score": "–", "rank": "–", "time": "–",
        "verdict": "Shadow league — not ranked for the prize. Answers in; results when the round "
                   "ends."}
    assert "over 1 round" not in " ".join(text(client.get(f"/r/{report}")).split())
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    row = report_rows(client, report)[2]
    assert row == {"score": "3", "rank": "–", "time": f"{seconds:.1f} s",
                   "verdict": "Shadow league — not ranked for the prize: 3 points in "
                              f"{seconds:.1f} s."}
    assert "Shadow league — not ranked for the prize: 3 points over 1 round" in " ".join(
        text(client.get(f"/r/{report}")).split())


# --- the standings -------------------------------------------------------------------------------

def test_standings_add_up_the_rounds_played_in_the_shadow_league(
        client, knocked_out, api_headers, open_round):
    ids = knocked_out
    play(client, ids["Cy"], 2, HALF)
    play(client, ids["Di"], 2, RIGHT)
    play(client, ids["Ann"], 2, RIGHT)
    play(client, ids["Bob"], 2, WRONG)
    # Bob out in round 2: joins the league
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    open_round(3)
    play(client, ids["Cy"], 3, RIGHT)  # Cy 1 + 3 = 4
    play(client, ids["Bob"], 3, RIGHT)  # Bob 3
    # the only real player left: 0, still never below the shadow league
    play(client, ids["Ann"], 3, WRONG)
    # Di: 3 over one round
    # While round 3 is open the standings are round 2's: Cy's and Bob's round 3 doesn't show yet.
    body = client.get("/api/shadow").get_json()
    assert [(e["user_id"], e["score"], e["rounds"]) for e in body["entries"]] == [
        (ids["Di"], 3, 1), (ids["Cy"], 1, 1)]
    assert body["players"] == 3  # a count: who played, not how well
    client.post("/api/admin/end-challenge/3", headers=api_headers)
    body = client.get("/api/shadow").get_json()
    assert body["players"] == 3
    entries = body["entries"]
    assert (entries[0]["user_id"], entries[0]["score"], entries[0]["rounds"]) == (ids["Cy"], 4, 2)
    assert sorted((e["user_id"], e["score"], e["rounds"]) for e in entries[1:]) == sorted(
        [(ids["Bob"], 3, 1), (ids["Di"], 3, 1)])
    times = dict(db.session.execute(select(Submission.participant_id,
                                           func.sum(Submission.response_time))
                                    .where(Submission.shadow.is_(True))
                                    .group_by(Submission.participant_id)).all())
    expected = sorted([ids["Bob"], ids["Di"]], key=lambda pid: (times[pid], pid))
    # a tie on score: less total time first
    assert [e["user_id"] for e in body["entries"][1:]] == expected
    assert [e["place"] for e in body["entries"]] == [1, 2, 3]
    assert client.get("/api/shadow?limit=1").get_json()["entries"] == body["entries"][:1]
    # Never in a real round's results.
    assert {e["user_id"]
            for e in client.get("/api/leaderboard/3").get_json()["entries"]} == {ids["Ann"]}


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=100001", "limit=-3"])
def test_a_bad_limit_says_what_to_send(client, knocked_out, query):
    play(client, knocked_out["Cy"], 2, RIGHT)
    response = client.get(f"/api/shadow?{query}")
    assert response.status_code == 400
    assert response.get_json() == {"error": "bad_limit",
                                   "message": "limit must be a whole number between 1 and 100000."}


totals = st.lists(st.builds(ShadowTotal, st.integers(1, 40), st.integers(0, 9),
                            st.sampled_from([0.5, 1.0, 1.5, 2.25]), st.integers(1, 3)),
                  max_size=30, unique_by=lambda t: t.participant_id)


@given(totals)
def test_shadow_order_is_total_and_independent_of_input_order(entries):
    ordered = shadow_standings(entries)
    assert ordered == shadow_standings(list(reversed(entries)))
    assert sorted(ordered, key=shadow_key) == ordered and len(ordered) == len(entries)
    for better, worse in zip(ordered, ordered[1:]):
        assert (better.score > worse.score or (better.score == worse.score and (
            better.response_time < worse.response_time
            or (better.response_time == worse.response_time
                and better.participant_id < worse.participant_id))))


@given(totals)
def test_more_points_always_rank_higher_whatever_the_time(entries):
    ordered = shadow_standings(entries)
    scores = [t.score for t in ordered]
    assert scores == sorted(scores, reverse=True)


def test_the_database_orders_the_table_as_the_pure_function_does(app, make_participant):
    """Many players with tied totals, submitted straight into the table: the SQL order is the
    function's."""
    apply_bank(parse_bank(BANK))
    db.session.commit()
    challenges = db.session.scalars(select(Challenge).order_by(Challenge.number)).all()
    players = [make_participant().id for _ in range(24)]
    rows, now = [], datetime(2026, 11, 23, 10)
    for i, pid in enumerate(players):
        for challenge in challenges[: 1 + i % 3]:
            rows.append(Submission(participant_id=pid, challenge_id=challenge.id, answers={},
                                   score=(i * 7) % 4, correct=0,
                                   response_time=[0.5, 1.0, 1.5][(i * 5) % 3], submitted_at=now,
                                   shadow=True))
    db.session.add_all(rows)
    db.session.commit()
    table = shadow.standings()
    mine = shadow_standings([ShadowTotal(e["user_id"], e["score"], e["response_time_seconds"],
                                         e["rounds"])
                             for e in table])
    assert [e["user_id"] for e in table] == [t.participant_id for t in mine]
    assert [e["user_id"] for e in shadow.standings(limit=5)] == [t.participant_id for t in mine[:5]]


# --- the projector and the console ---------------------------------------------------------------

def panel(page: str) -> list[str]:
    """The names in the display's shadow-league panel, top first."""
    aside = re.search(r'<aside id="shadow-panel".*?</aside>', page, re.S)
    return [html.unescape(n)
            for n in re.findall(r'<span class="name">([^<]*)</span>', aside[0])] if aside else []


def test_the_display_shows_the_shadow_league_in_its_own_panel(app, client, knocked_out,
                                                              api_headers):
    from quiz.web.display import live_stage
    assert panel(text(client.get("/display"))) == []
    play(client, knocked_out["Di"], 2, HALF)
    play(client, knocked_out["Cy"], 2, RIGHT)
    page = text(client.get("/display"))
    # While round 2 is open: counts only, no standings that would say who scored.
    assert panel(page) == [] and "+ 2 in the shadow league" in page
    assert "<strong>0</strong> of 2 answered" in page
    with app.test_request_context("/ws"):
        frame = live_stage()  # what the websocket sends every display, rendered once per tick
    assert panel(frame) == [] and "+ 2 in the shadow league" in frame
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    assert panel(text(client.get("/display"))) == ["Cy", "Di"]
    with app.test_request_context("/ws"):
        assert panel(live_stage()) == ["Cy", "Di"]


def test_the_console_counts_the_shadow_league(client, knocked_out, api_headers):
    client.post("/admin/login", data={
        "username": "admin", "password": "test-password",
        "csrf_token": csrf_from(client.get("/admin/login").get_data(as_text=True))})
    play(client, knocked_out["Cy"], 2, RIGHT)
    page = text(client.get("/admin/"))
    card = re.search(r'id="shadow-players"><strong>(\d+)</strong>', page)
    assert card and card[1] == "1"
    answered = re.search(r"<strong>(\d+)</strong>\s*<span>answered round 2", page)
    assert answered and answered[1] == "0"


def test_forms_stay_consistent_after_shadow_submissions(client, knocked_out, run_jobs, runner):
    run_jobs()  # stored forms for everyone
    code = code_of(knocked_out["Cy"], 2)
    start(client, code)
    # the live page, not the stored form (which can't say so)
    assert INVITE in text(client.get(f"/f/{code}"))
    play(client, knocked_out["Di"], 2, RIGHT)
    assert submit(client, code, HALF).status_code == 303
    run_jobs()
    result = runner.invoke(args=["forms", "reconcile"])
    assert result.exit_code == 0, result.output
    drift = stored_forms.drift()
    # round 1's three answers and two shadow ones
    assert drift.clean and drift.expected["answered"] == 3 + 2


# --- check-in required to win a prize ------------------------------------------------------------

@pytest.fixture
def final_played(client, make_participant, api_headers, open_round):
    """A two-round event: Ann, Bob, Cy, Di; the final's order is Ann, Bob (Cy, Di out in
    round 1)."""
    apply_bank(parse_bank(BANK.split("  - number: 3")[0]))
    db.session.commit()
    ids = {name: make_participant(name).id for name in ("Ann", "Bob", "Cy", "Di")}
    open_round()
    for name, picks in (("Ann", RIGHT), ("Bob", RIGHT), ("Cy", WRONG), ("Di", WRONG)):
        play(client, ids[name], 1, picks)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    open_round(2)
    play(client, ids["Ann"], 2, RIGHT)
    play(client, ids["Bob"], 2, HALF)
    play(client, ids["Cy"], 2, RIGHT)  # the shadow league: never a winner
    return ids


def check_in(pid: int) -> None:
    db.session.get(Participant, pid).checked_in_at = utcnow()
    db.session.commit()


def console(client) -> str:
    client.post("/admin/login", data={
        "username": "admin", "password": "test-password",
        "csrf_token": csrf_from(client.get("/admin/login").get_data(as_text=True))})
    return text(client.get("/admin/"))


@pytest.mark.config(PRIZE_REQUIRES_CHECKIN=True)
def test_the_prize_goes_to_the_best_ranked_player_who_checked_in(client, final_played, api_headers,
                                                                  run_jobs):
    ids = final_played
    check_in(ids["Bob"])
    check_in(ids["Cy"])
    warning = re.search(r'id="prize-checkin-warning"[^>]*>(.*?)</p>', console(client), re.S)
    assert warning and "1 player still in hasn't checked in: Ann." in " ".join(warning[1].split())
    summary = client.post("/api/admin/end-challenge/2", headers=api_headers).get_json()
    assert summary["winner_id"] == ids["Bob"] and rounds.winner().id == ids["Bob"]
    podium = text(client.get("/display"))
    assert "Bob wins!" in podium
    # the winner on the top step
    assert re.search(r'step-1">\s*<span class="name">Bob</span>', podium)
    run_jobs()
    kinds = {m.participant_id: m.kind for m in db.session.scalars(
        select(Message).join(Challenge).where(Challenge.number == 2, Message.kind != "round_link",
                                              Message.channel == "sms"))}
    assert kinds == {ids["Bob"]: "winner", ids["Ann"]: "final_result"}
    bob = report_rows(client, db.session.get(Participant, ids["Bob"]).report_code)
    assert bob[2]["verdict"] == ("Winner! Ranked 2 in the final, and the best-ranked player who "
                                 "checked in: the prize needs check-in.")
    assert db.session.get(Participant, ids["Bob"]).eliminated_in is None  # the winner isn't cut
    ann = report_rows(client, db.session.get(Participant, ids["Ann"]).report_code)
    assert ann[2]["verdict"] == ("Ranked 1 of 2 in the final, but the prize needs check-in and "
                                 "you hadn't checked in by its end.")
    assert summary["kept"] == 2 and summary["eliminated_ranked_out"] == 0
    assert 'id="prize-checkin-warning"' not in console(client)  # the last round is over


@pytest.mark.config(PRIZE_REQUIRES_CHECKIN=True)
def test_a_check_in_after_the_final_closed_changes_no_winner(client, final_played, api_headers):
    """The winner is announced at the close (podium, SMS): Ann checking in afterwards doesn't take
    it from Bob."""
    ids = final_played
    check_in(ids["Bob"])
    assert client.post("/api/admin/end-challenge/2",
                       headers=api_headers).get_json()["winner_id"] == ids["Bob"]
    check_in(ids["Ann"])
    assert rounds.winner().id == ids["Bob"] and "Bob wins!" in text(client.get("/display"))
    ann = report_rows(client, db.session.get(Participant, ids["Ann"]).report_code)
    assert ann[2]["verdict"] == ("Ranked 1 of 2 in the final, but the prize needs check-in and "
                                 "you hadn't checked in by its end.")


@pytest.mark.config(PRIZE_REQUIRES_CHECKIN=True)
def test_nobody_checked_in_means_no_winner(client, final_played, api_headers):
    assert client.post("/api/admin/end-challenge/2",
                       headers=api_headers).get_json()["winner_id"] is None
    assert rounds.winner() is None and "wins!" not in text(client.get("/display"))


def test_without_the_setting_first_place_wins_checked_in_or_not(client, final_played, api_headers):
    check_in(final_played["Bob"])
    assert 'id="prize-checkin-warning"' not in console(client)
    assert client.post("/api/admin/end-challenge/2",
                       headers=api_headers).get_json()["winner_id"] == final_played["Ann"]
    assert rounds.winner().id == final_played["Ann"]


@pytest.mark.config(PRIZE_REQUIRES_CHECKIN=True)
def test_the_warning_waits_for_the_last_round(client, knocked_out):
    """Round 2 of 3 is open: no warning yet (round 3 is the last)."""
    assert 'id="prize-checkin-warning"' not in console(client)


@pytest.mark.live
@pytest.mark.nodb
def test_the_projector_socket_gets_the_shadow_panel_live(live_stack):
    """The real stack: a shadow submission reaches a connected display's websocket as a count, and
    as the panel once its round has closed."""
    import requests
    load_demo_bank(live_stack)
    api = Api(live_stack.url)
    links = [api.register(name, n)["form_urls"]
             for n, name in enumerate(("Ada", "Bo <i>Shadow</i>"), start=61)]
    api.start(1)
    answer_over_http(links[0]["1"], 1)
    answer_over_http(links[1]["1"], 1, right=False)
    api.end(1)
    api.start(2)
    ws = connect(live_stack)
    assert 'id="shadow-panel"' not in ws.recv()  # the state on connect: nobody in the league yet
    answer_over_http(links[1]["2"], 2)
    frame = wait_for(ws, "+ 1 in the shadow league")
    # round 2 open: a count, no standings
    assert 'id="shadow-panel"' not in frame and "<strong>0</strong> of 1 answered" in frame
    assert requests.get(f"{live_stack.url}/api/shadow").json() == {"players": 1, "entries": []}
    api.end(2)
    frame = wait_for(ws, 'id="shadow-panel"')
    assert panel(frame) == ["Bo <i>Shadow</i>"] and "<i>" not in frame  # escaped, never markup
    ws.close()
    assert requests.get(f"{live_stack.url}/api/shadow").json()["players"] == 1


@pytest.mark.config(LINKS_IN_REGISTRATION=False)
def test_links_by_sms_only_a_report_links_to_shadow_rounds_alone(client, knocked_out):
    """Round links come by SMS only, but the shadow league sends none: a knocked-out player's page
    links to their shadow rounds (out of the prize, and their results wait for the close too),
    never to a round they play for the prize."""
    ids = knocked_out
    cy = text(client.get(f"/r/{db.session.get(Participant, ids['Cy']).report_code}"))
    assert f"/f/{code_of(ids['Cy'], 2)}" in cy and f"/f/{code_of(ids['Cy'], 3)}" in cy
    assert code_of(ids["Cy"], 1) not in cy
    ann = text(client.get(f"/r/{db.session.get(Participant, ids['Ann']).report_code}"))
    assert "/f/" not in ann and "2. Round 2" in ann
