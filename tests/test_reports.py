"""/r/<code>: per round score, rank, percentile and time, why a player is out, and caching by
ETag."""
import html
import re

import pytest
from sqlalchemy import event, select

from quiz.extensions import db
from quiz.models import Challenge, FormLink, Participant, Submission

from .helpers import SMALL_BANK, csrf_from, report_rows, rows_of, start, submit

RIGHT = {1: [["S3"], ["RDS", "DynamoDB"]], 2: [["4"]]}
HALF = {1: [["S3"], ["RDS"]], 2: [["3"]]}
WRONG = {1: [["EC2"], ["Lambda"]], 2: [["5"]]}


def code_of(pid: int, number: int) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == pid, Challenge.number == number))


def play(client, pid, number, picks):
    start(client, code_of(pid, number))
    assert submit(client, code_of(pid, number), picks[number]).status_code == 303


@pytest.fixture
def event_played(client, load_bank, make_participant, api_headers, open_round):
    """Round 1: Ann 3 points, Bob 1, Cy 0, Di no answer → Ann and Bob through
    (keep 50% of 3 = 2)."""
    load_bank()
    ids = {name: make_participant(name).id for name in ("Ann", "Bob", "Cy", "Di")}
    reports = {name: db.session.get(Participant, pid).report_code for name, pid in ids.items()}
    open_round()
    for name, picks in (("Ann", RIGHT), ("Bob", HALF), ("Cy", WRONG)):
        play(client, ids[name], 1, picks)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    return ids, reports


def expected_cells(pid: int, number: int) -> dict:
    """What the row must say, straight from the database."""
    submission = db.session.scalar(select(Submission).join(Challenge).where(
        Submission.participant_id == pid, Challenge.number == number))
    ranked = db.session.scalar(select(db.func.count()).select_from(Submission).join(Challenge)
                               .where(Challenge.number == number, Submission.rank.is_not(None)))
    if submission is None:
        return {"score": "–", "rank": "–", "time": "–"}
    top = 100 * submission.rank / ranked
    ahead = 100 * (ranked - submission.rank) / ranked
    return {"score": str(submission.score), "time": f"{submission.response_time:.1f} s",
            "rank": f"{submission.rank} / {ranked} top {round(top, 1):g}% "
                    f"ahead of {round(ahead, 1):g}%"}


def why_out(page: str) -> str:
    """The 'Why you're out' box, as read."""
    return " ".join(html.unescape(re.sub(
        r"<[^>]+>", " ", re.search(r'<p class="why">(.*?)</p>', page, re.S)[1])).split())


def test_survivor_and_knocked_out_players_read_their_numbers_and_why(client, event_played):
    ids, reports = event_played
    for name in ("Ann", "Bob", "Cy", "Di"):
        row = report_rows(client, reports[name])[1]
        assert {k: row[k] for k in ("score", "rank", "time")} == expected_cells(ids[name], 1), name
    bob = report_rows(client, reports["Bob"])
    assert bob[1]["verdict"] == "Through: ranked 2 of 3; the top 2 stayed."
    assert bob[2]["verdict"] == "Not started yet."
    cy_page = html.unescape(client.get(f"/r/{reports['Cy']}").get_data(as_text=True))
    assert rows_of(cy_page)[1]["verdict"] == "Out: see “Why you're out” above."
    cy = why_out(cy_page)
    bob_time = db.session.scalar(select(Submission.response_time).where(
        Submission.participant_id == ids["Bob"]))
    assert cy == ("Round 1: Out: ranked 3 of 3; this round kept the top 50% (keep_fraction 0.5): "
                  "⌈3 × 0.5⌉ = 2 of 3 stayed (score first, then response time). The cut line was "
                  f"place 2: 1 points in {bob_time:.1f} s.")
    di_page = client.get(f"/r/{reports['Di']}").get_data(as_text=True)
    assert why_out(di_page).startswith("Round 1: Out: no answers arrived")
    # SHADOW_LEAGUE is on by default: a later round is theirs to play, not for the prize
    # (tests/test_shadow.py).
    assert rows_of(di_page)[2]["verdict"] == "Shadow league, when it opens."


def test_winner_and_finalist_after_the_last_round(client, event_played, api_headers, open_round):
    ids, reports = event_played
    open_round(2)
    play(client, ids["Ann"], 2, RIGHT)
    play(client, ids["Bob"], 2, WRONG)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    ann = report_rows(client, reports["Ann"])
    assert ann[2]["verdict"] == "Winner! First place in the final."
    assert {k: ann[2][k] for k in ("score", "rank", "time")} == expected_cells(ids["Ann"], 2)
    assert ann[2]["rank"].startswith("1 / 2 top 50% ahead of 50%")
    bob_page = client.get(f"/r/{reports['Bob']}").get_data(as_text=True)
    bob = rows_of(bob_page)
    assert why_out(bob_page).startswith("Round 2: Out: ranked 2 of 2; this round kept the top 50% "
                                        "(keep_fraction 0.5): ⌈2 × 0.5⌉ = 1 of 2 stayed")
    assert {k: bob[2][k] for k in ("score", "rank", "time")} == expected_cells(ids["Bob"], 2)


def test_keep_count_rule_is_named(client, load_bank, make_participant, api_headers, open_round):
    from quiz.questions import apply_bank, parse_bank
    apply_bank(parse_bank(SMALL_BANK.replace("keep_fraction: 0.5", "keep_count: 1")))
    db.session.commit()
    ids = [make_participant().id for _ in range(3)]
    report = db.session.get(Participant, ids[1]).report_code
    open_round()
    for pid, picks in zip(ids, (RIGHT, HALF, WRONG)):
        play(client, pid, 1, picks)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    verdict = why_out(client.get(f"/r/{report}").get_data(as_text=True))
    assert "this round kept a fixed 1 (keep_count), so the top 1 of 3 stayed" in verdict


def test_report_is_cached_by_etag_and_changes_with_the_game(client, event_played, open_round):
    ids, reports = event_played
    url = f"/r/{reports['Bob']}"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("private, max-age=") and etag
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    # Another player's page, or the welcome version, is another resource.
    assert client.get(f"/r/{reports['Ann']}").headers["ETag"] != etag
    assert client.get(url + "?welcome=1", headers={"If-None-Match": etag}).status_code == 200
    # The game moves on: the old tag no longer matches.
    open_round(2)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    etag = changed.headers["ETag"]
    token = csrf_from(changed.get_data(as_text=True))
    client.post(f"{url}/help", data={"csrf_token": token, "kind": "no_sms"})
    after_help = client.get(url, headers={"If-None-Match": etag})
    assert (after_help.status_code == 200
            and "with the help desk" in after_help.get_data(as_text=True))
    # That copy carries a one-off message: not to be reused. The next one is cacheable again,
    # without it.
    assert after_help.headers["Cache-Control"] == "no-store" and "ETag" not in after_help.headers
    later = client.get(url)
    assert later.headers["ETag"] and "with the help desk" not in later.get_data(as_text=True)


def test_report_queries_do_not_grow_with_players_or_rounds(client, load_bank, make_participant,
                                                           api_headers, app, open_round):
    bank = "challenges:\n" + "".join(
        f"  - number: {n}\n    title: R{n}\n    questions:\n      - text: Q?\n"
        "        choices: [a, b]\n        answer: a\n"
        for n in range(1, 6))
    from quiz.questions import apply_bank, parse_bank
    apply_bank(parse_bank(bank))
    db.session.commit()
    ids = [make_participant().id for _ in range(16)]
    for number in range(1, 6):
        open_round(number)
        alive = db.session.scalars(select(Participant.id)
                                   .where(Participant.eliminated_in.is_(None))).all()
        for pid in alive:
            start(client, code_of(pid, number))
            token = csrf_from(client.get(f"/f/{code_of(pid, number)}").get_data(as_text=True))
            question = db.session.scalar(select(Challenge)
                                         .where(Challenge.number == number)).questions[0]
            page = client.get(f"/f/{code_of(pid, number)}").get_data(as_text=True)
            value = re.search(rf'name="q{question.id}" value="([^"]+)"[^>]*>\s*<span>a</span>',
                              page)[1]
            client.post(f"/f/{code_of(pid, number)}/submit",
                        data={"csrf_token": token, f"q{question.id}": value})
        client.post(f"/api/admin/end-challenge/{number}", headers=api_headers)
    statements, counts = [], []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        for pid in ids:
            code = db.session.get(Participant, pid).report_code
            statements.clear()
            assert client.get(f"/r/{code}").status_code == 200
            counts.append(len(statements))
            # (+2 for the answers beside the right ones: the final rounds, then the sheets; +1 when
            # this process's copy of the event's look, read at most every 2 s, expires mid-loop)
            assert len(statements) <= 17, statements
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    print("report statements per page:", sorted(set(counts)))


def test_out_winner_and_final_messages_link_to_the_report(client, load_bank, make_participant,
                                                          api_headers, run_jobs, open_round):
    from quiz.models import Message
    load_bank(SMALL_BANK.replace("    scoring: speed\n", "    scoring: speed\n    keep_count: 2\n"))
    players = {name: make_participant(name) for name in ("Ann", "Bob", "Cy")}
    ids = {name: p.id for name, p in players.items()}
    reports = {name: p.report_code for name, p in players.items()}
    open_round()
    for name, picks in (("Ann", RIGHT), ("Bob", RIGHT), ("Cy", WRONG)):
        play(client, ids[name], 1, picks)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    open_round(2)
    play(client, ids["Ann"], 2, RIGHT)
    play(client, ids["Bob"], 2, WRONG)
    # the last round: keep_count 2, both stay
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    run_jobs()
    sent = {(m.participant_id, m.kind): m.body for m in db.session.scalars(
        select(Message).join(Challenge, Challenge.id == Message.challenge_id)
        .where(Challenge.number == 2, Message.channel == "sms"))}
    assert set(sent) - {(pid, "round_link") for pid in ids.values()} == {
        (ids["Ann"], "winner"), (ids["Bob"], "final_result")}
    assert sent[ids["Ann"], "winner"].endswith(f"http://quiz.test/r/{reports['Ann']}")
    assert "final is over" in sent[ids["Bob"], "final_result"]
    assert sent[ids["Bob"], "final_result"].endswith(f"http://quiz.test/r/{reports['Bob']}")
    out = db.session.scalar(select(Message.body).where(Message.participant_id == ids["Cy"],
                                                       Message.kind == "result_out_shadow"))
    assert out.endswith(f"http://quiz.test/r/{reports['Cy']}")


def test_an_open_rounds_score_and_time_wait_for_its_close(client, event_played, api_headers,
                                                          open_round):
    """A score seen while the round is open would tell a player with throwaway registrations which
    answer is right: the row says "answers in" until the close, then shows everything."""
    ids, reports = event_played
    open_round(2)
    play(client, ids["Ann"], 2, RIGHT)
    play(client, ids["Bob"], 2, WRONG)
    for name in ("Ann", "Bob"):
        assert report_rows(client, reports[name])[2] == {
            "score": "–", "rank": "–", "time": "–",
            "verdict": "Answers in; results when the round ends."}
    assert client.post("/api/admin/end-challenge/2", headers=api_headers).status_code == 200
    for name in ("Ann", "Bob"):
        row = report_rows(client, reports[name])[2]
        assert {k: row[k] for k in ("score", "rank", "time")} == expected_cells(ids[name], 2)
    assert report_rows(client, reports["Ann"])[2]["score"] != "–"
