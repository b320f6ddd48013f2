"""Players without consent (rows from before the API required it) get no SMS and are not named on
the projector or the public leaderboard; the ranking itself is untouched."""
from sqlalchemy import select

from quiz.extensions import db
from quiz.models import Challenge, FormLink, Message

from .helpers import start, submit, text


def code_of(participant_id: int, number: int) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == participant_id, Challenge.number == number))


def test_a_player_without_consent_gets_no_sms_and_no_name_in_public(
        client, load_bank, make_participant, api_headers, run_jobs):
    load_bank()
    named = make_participant("Named Nora").id
    quiet = make_participant("Quiet Quentin", consent=False).id
    anonymous = f"Player {quiet}"

    client.post("/api/admin/start-challenge/1", headers=api_headers)
    start(client, code_of(quiet, 1))
    submit(client, code_of(quiet, 1), [["S3"], ["RDS", "DynamoDB"]])
    start(client, code_of(named, 1))
    submit(client, code_of(named, 1), [["EC2"], ["RDS"]])
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    board = client.get("/api/leaderboard/1").get_json()["entries"]
    assert [(e["user_id"], e["name"], e["rank"]) for e in board] == [
        (quiet, anonymous, 1), (named, "Named Nora", None)]  # the ranking is the same
    display = text(client.get("/display"))
    assert "Quiet Quentin" not in display and anonymous in display and "Named Nora" in display

    client.post("/api/admin/start-challenge/2", headers=api_headers)
    start(client, code_of(quiet, 2))
    submit(client, code_of(quiet, 2), [["4"]])
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    run_jobs()
    podium = text(client.get("/display"))
    assert f"{anonymous} wins!" in podium and "Quiet Quentin" not in podium
    texted = {(m.participant_id, m.kind)
              for m in db.session.scalars(select(Message).where(Message.channel == "sms"))}
    assert texted and all(pid == named for pid, _ in texted)


def test_the_shadow_league_shows_no_name_without_consent(client, load_bank, make_participant,
                                                         api_headers):
    load_bank()
    quiet = make_participant("Quiet Quentin", consent=False).id
    keeper = make_participant("Keeper").id
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    start(client, code_of(keeper, 1))
    submit(client, code_of(keeper, 1), [["S3"], ["RDS", "DynamoDB"]])
    client.post("/api/admin/end-challenge/1", headers=api_headers)  # Quentin: out, unanswered
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    start(client, code_of(quiet, 2))
    submit(client, code_of(quiet, 2), [["4"]])
    client.post("/api/admin/end-challenge/2", headers=api_headers)  # standings show closed rounds
    entries = client.get("/api/shadow").get_json()["entries"]
    assert [(e["user_id"], e["name"]) for e in entries] == [(quiet, f"Player {quiet}")]
