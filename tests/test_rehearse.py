"""`flask --app quiz rehearse`: synthetic players play a whole event against the live stack."""
import math
import subprocess
import sys
from collections import Counter

import phonenumbers
import pytest
import redis
import requests
import sqlalchemy
import yaml

from quiz.rehearsal_report import Tally, format_table, nearest_rank, verdict
from quiz.rehearsal_pages import synthetic_phone
from quiz.rehearse import summary_from
from quiz.stack import free_port

from .helpers import ROOT
from .live_fixtures import LiveStack

# the rehearsal's client: the whole event on PostgreSQL is test_event's
pytestmark = [pytest.mark.nodb, pytest.mark.sqlite_pass]
from .players import DEMO_BANK, load_demo_bank


def rehearse(stack, *args: str) -> subprocess.CompletedProcess:
    """The real command, configured like the instance (PUBLIC_BASE_URL, ADMIN_API_TOKEN)."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "quiz", "rehearse", *args],
                          cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=600)


def expected_eliminations(players: int, no_show: float) -> dict[tuple[int, str], int]:
    """(round, reason) → how many the demo bank's rules knock out when `no_show` of each round never
    answer."""
    expected, alive = {}, players
    for challenge in yaml.safe_load(DEMO_BANK.read_text())["challenges"]:
        absent = int(alive * no_show)
        submitted = alive - absent
        kept = (challenge.get("keep_count")
                or max(1, math.ceil(submitted * challenge.get("keep_fraction", 0.5))))
        kept = min(kept, submitted)
        expected[(challenge["number"], "unanswered")] = absent
        expected[(challenge["number"], "ranked_out")] = submitted - kept
        alive = kept
    return {key: n for key, n in expected.items() if n}


def eliminations(stack) -> Counter:
    engine = sqlalchemy.create_engine(stack.env["DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text(
            "SELECT eliminated_in, elimination_reason, name FROM participant")).all()
    engine.dispose()
    assert all(name.startswith("Rehearsal ") for *_, name in rows)
    return Counter((round_, reason) for round_, reason, _ in rows)


@pytest.mark.live
def test_rehearsal_plays_a_whole_event_and_says_go(live_stack):
    load_demo_bank(live_stack)
    done = rehearse(live_stack, "--players", "30", "--concurrency", "8", "--seed", "7",
                    "--slack", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "GO", done.stdout
    assert any(line.split()[:2] == ["lost", "0"] for line in lines), done.stdout
    assert any(line.split()[:2] == ["duplicates", "0"] for line in lines), done.stdout
    assert any(line.split()[:2] == ["errors", "0"] for line in lines), done.stdout
    found = eliminations(live_stack)
    assert found.pop((None, None)) == 1  # the winner
    assert dict(found) == expected_eliminations(30, 0.1)
    for round_, out in ((1, "3 / 13"), (2, "1 / 6"), (3, "0 / 6")):
        assert any(line.split()[0] == str(round_) and line.endswith(out)
                   for line in lines), done.stdout


@pytest.mark.live
def test_rehearsal_plays_with_links_by_sms_only(tmp_path, redis_url):
    """LINKS_IN_REGISTRATION=false: the public register answer has no links, the rehearsal (admin
    token) gets them and plays on."""
    redis.Redis.from_url(redis_url).flushall()
    stack = LiveStack(tmp_path, redis_url, LINKS_IN_REGISTRATION="false")
    try:
        stack.start()
        load_demo_bank(stack)
        public = requests.post(f"{stack.url}/api/register", timeout=10, json={
            "name": "Ada", "email": "ada@example.com", "phone": "+14155550100", "consent": True})
        assert public.status_code == 201 and "form_urls" not in public.json()
        done = rehearse(stack, "--players", "8", "--concurrency", "4", "--seed", "3",
                        "--slack", "100", "--yes")
        assert done.returncode == 0 and done.stdout.splitlines()[-1] == "GO", (
            done.stdout + done.stderr)
    finally:
        stack.stop()


@pytest.mark.live
def test_rehearsal_refuses_an_instance_without_rounds_with_participants_or_with_a_wrong_token(
        live_stack):
    no_bank = rehearse(live_stack, "--players", "5")
    assert no_bank.returncode != 0 and "no round 1. Load the question bank first" in no_bank.stderr
    load_demo_bank(live_stack)
    requests.post(f"{live_stack.url}/api/register", timeout=10, json={
        "name": "Ada", "email": "ada@example.com", "phone": "+14155550100",
        "consent": True}).raise_for_status()
    refused = rehearse(live_stack, "--players", "5")
    assert (refused.returncode != 0 and "already has 1 participant(s)" in refused.stderr
            and "--yes" in refused.stderr)
    wrong = rehearse(live_stack, "--players", "5", "--yes", "--token", "not-the-token")
    assert wrong.returncode != 0 and "API token was refused" in wrong.stderr
    board = requests.get(f"{live_stack.url}/display", timeout=10).text
    assert 'id="player-count">1<' in board  # nothing registered, round 1 not started
    progress = requests.get(f"{live_stack.url}/api/admin/sms-progress/1", timeout=10,
                            headers={"Authorization": "Bearer live-token"}).json()
    assert progress["total"] == 0


def test_rehearsal_says_when_nothing_answers(runner):
    result = runner.invoke(args=["rehearse", "--url", f"http://127.0.0.1:{free_port()}",
                                 "--players", "1"])
    assert result.exit_code == 1 and "does not answer" in result.output and "--url" in result.output


@pytest.mark.parametrize("args, message", [
    (["--players", "0"], "--players"), (["--players", "100001"], "--players"),
    (["--concurrency", "0"], "--concurrency"), (["--no-show", "1"], "--no-show"),
    (["--timeout", "0"], "--timeout"), (["--url", "quiz.example.org"], "http://"),
])
def test_rehearsal_options_out_of_range_say_what_to_fix(runner, args, message):
    result = runner.invoke(args=["rehearse", *args])
    assert result.exit_code == 2 and message in result.output


def tally(**fields) -> Tally:
    result = Tally(registrations=10, register_seconds=1.0, submits=10, play_seconds=2.0,
                   winner_id=7)
    for step in result.latencies:
        result.latencies[step] = [0.010] * 99 + [0.020]
    for key, value in fields.items():
        setattr(result, key, value)
    return result


def test_verdict_is_go_only_when_every_goal_is_met():
    assert verdict(tally())[1] and format_table(tally()).endswith("\nGO")
    assert not verdict(tally(lost=1))[1]
    assert not verdict(tally(duplicates=1))[1]
    assert not verdict(tally(winner_id=None))[1]
    failing = tally()
    failing.errors["submit: HTTP 500"] += 1
    assert not verdict(failing)[1] and "submit: HTTP 500 ×1" in format_table(failing)


def test_latency_goals_use_p99_and_slack_loosens_them():
    slow = tally()
    slow.latencies["submit"] = [0.010] * 98 + [0.300] * 2  # p99 300 ms > 250 ms
    table = format_table(slow)
    assert table.endswith("NO-GO") and "MISSED" in table
    assert verdict(slow, slack=2)[1]
    assert nearest_rank([5, 1, 4, 2, 3], 50) == 3 and nearest_rank([], 99) is None


def test_synthetic_phones_are_valid_and_distinct():
    numbers = [synthetic_phone(n) for n in (0, 1, 9_999, 10_000, 123_456, 199_999)]
    assert len(set(numbers)) == len(numbers)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)


def test_a_round_closed_by_its_time_limit_is_summed_up_from_its_leaderboard():
    entries = [{"user_id": 4, "score": 3, "eliminated": False},
               {"user_id": 2, "score": 1, "eliminated": True},
               {"user_id": 9, "score": None, "eliminated": True}]
    assert summary_from(3, entries, last=True) == {
        "challenge": 3, "submitted": 2, "kept": 1, "eliminated_unanswered": 1,
        "eliminated_ranked_out": 1, "winner_id": 4}
    assert summary_from(1, entries, last=False)["winner_id"] is None
