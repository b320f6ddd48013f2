"""Results exports: every file re-read with csv and compared with the database, formula-safe,
consent-only leads."""
import csv
import io
from collections import defaultdict

import pytest
from sqlalchemy import select

from quiz import rounds
from quiz.exports import EXPORTS, filename
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Participant, Submission
from quiz.ranking import keep_size

from .helpers import login, start, submit

HYPERLINK = '=HYPERLINK("http://x","y")'
RIGHT_1, RIGHT_2 = [["S3"], ["RDS", "DynamoDB"]], [["4"]]


def spreadsheet_text(value: str) -> str:
    """What OWASP asks for: a cell a spreadsheet would read as a formula starts with an
    apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def iso(moment) -> str:
    return moment.isoformat(timespec="seconds") + "Z" if moment else ""


def blank(value) -> str:
    return "" if value is None else str(value)


@pytest.fixture
def played(client, load_bank, make_participant, api_headers, open_round):
    """Two rounds played through the web: right, partly right, wrong, no-show, disqualified, a
    non-consenting player."""
    load_bank()
    people = {
        "formula": make_participant(HYPERLINK, company="+1+1", sponsor_consent="yes"),
        "ada": make_participant("Ada", company="Acme", sponsor_consent=True),
        "bo": make_participant("Bo", company="Acme"),  # links by SMS, yes; sponsors, no
        "cy": make_participant("@Cy", company="-Dash", sponsor_consent="yes"),
        "dee": make_participant("Dee", company=""),
        "eve": make_participant("Eve", company="Acme", consent=False),
    }
    codes = {(link.participant_id, link.challenge.number): link.code
             for link in db.session.scalars(select(FormLink))}
    answers_1 = {"formula": RIGHT_1, "ada": RIGHT_1, "eve": RIGHT_1, "bo": [["S3"], ["RDS"]],
                 "cy": [["EC2"], ["Lambda"]]}
    open_round(1)
    play_round(client, api_headers, 1, {people[k].id: v for k, v in answers_1.items()}, codes)
    open_round(2)
    rounds.disqualify(db.session.get(Participant, people["eve"].id), "two phones")
    db.session.commit()
    play_round(client, api_headers, 2, {people["formula"].id: RIGHT_2, people["ada"].id: RIGHT_2},
               codes)
    db.session.expire_all()
    assert db.session.get(Participant, people["dee"].id).elimination_reason == "unanswered"
    return people


def play_round(client, api_headers, number, answers: dict, codes: dict):
    """Everyone in `answers` starts and submits the open round; then the organizer ends it."""
    for pid, picks in answers.items():
        assert start(client, codes[pid, number]).status_code == 303
        assert submit(client, codes[pid, number], picks).status_code == 303
    assert client.post(f"/api/admin/end-challenge/{number}", headers=api_headers).status_code == 200


def expected_rows(kind: str) -> list[list[str]]:
    """What each export must hold, built from the ORM independently of quiz.exports."""
    people = db.session.scalars(select(Participant).order_by(Participant.id)).all()
    challenges = db.session.scalars(select(Challenge).order_by(Challenge.number)).all()
    subs = db.session.scalars(select(Submission)).all()
    number_of = {c.id: c.number for c in challenges}
    person = {p.id: p for p in people}
    if kind == "participants":
        return [[str(p.id), p.name, p.email, p.phone, p.company, "yes" if p.consent else "no",
                 "yes" if p.sponsor_consent else "no", iso(p.created_at),
                 "in" if p.eliminated_in is None else "out", blank(p.eliminated_in),
                 blank(p.elimination_reason), iso(p.checked_in_at)]
                for p in people]
    if kind == "submissions":
        return [[str(number_of[s.challenge_id]), str(s.participant_id),
                 person[s.participant_id].name, person[s.participant_id].company, str(s.score),
                 str(s.correct), str(s.response_time), blank(s.rank), iso(s.submitted_at)]
                for s in subs]
    if kind == "rounds":
        return [round_row(c, people, subs) for c in challenges]
    if kind == "questions":
        return [row for c in challenges if c.is_closed for row in question_table(c, subs)]
    if kind == "eliminations":
        ranked = defaultdict(int)
        for s in subs:
            ranked[s.challenge_id] += s.rank is not None
        by_number = {c.number: c for c in challenges}
        rows = []
        for p in (p for p in people if p.eliminated_in is not None):
            c = by_number[p.eliminated_in]
            rank = next((s.rank for s in subs
                         if s.participant_id == p.id and s.challenge_id == c.id), None)
            rows.append([str(c.number), str(p.id), p.name, p.company, p.elimination_reason,
                         blank(rank), str(ranked[c.id]),
                         str(keep_size(ranked[c.id], c.keep_fraction, c.keep_count))])
        return rows
    if kind == "companies":
        return company_table(people, subs, number_of)
    assert kind == "sponsor-leads"
    return [[p.name, p.email, p.phone, p.company, iso(p.created_at)]
            for p in people if p.sponsor_consent]


def round_row(c, people, subs) -> list[str]:
    submitters = {s.participant_id for s in subs if s.challenge_id == c.id}
    out = [p for p in people if p.eliminated_in == c.number]
    kept = [p for p in people
            if p.id in submitters and (p.eliminated_in is None or p.eliminated_in > c.number)]
    reasons = [str(sum(p.elimination_reason == r for p in out))
               for r in ("unanswered", "ranked_out", "disqualified")]
    return [str(c.number), c.title, c.scoring, c.status, iso(c.opened_at), iso(c.closed_at),
            str(len(submitters)), str(len(kept)), str(len(out)), *reasons]


def question_table(c, subs) -> list[list[str]]:
    """A row per choice of each choice question: answered, right, right %, picked, picked %."""
    rows = []
    for q in (q for q in c.questions if q.kind == "choice"):
        answers = [s.answers[str(q.id)] for s in subs
                   if s.challenge_id == c.id and str(q.id) in s.answers]
        right = sum(set(a) == set(q.answer) for a in answers)
        for choice in q.choices:
            picked = sum(choice in a for a in answers)
            rows.append([str(c.number), str(q.position), q.text, str(len(answers)), str(right),
                         str(round(100 * right / len(answers)) if answers else 0), choice,
                         "yes" if choice in q.answer else "no", str(picked),
                         str(round(100 * picked / len(answers)) if answers else 0)])
    return rows


def company_table(people, subs, number_of) -> list[list[str]]:
    rows = []
    for company in sorted({p.company for p in people}):
        members = {p.id for p in people if p.company == company}
        scores = [s for s in subs if s.participant_id in members]
        furthest = max((number_of[s.challenge_id] for s in scores), default=None)
        ranks = [s.rank for s in scores
                 if number_of[s.challenge_id] == furthest and s.rank is not None]
        average = round(sum(s.score for s in scores) / len(scores), 2) if scores else None
        rows.append([company, len(members),
                     sum(p.eliminated_in is None for p in people if p.id in members),
                     furthest, min(ranks) if ranks else None, average, len(scores)])
    rows.sort(key=lambda r: (-r[2], -(r[3] or 0), r[4] is None, r[4] or 0, -(r[5] or 0), r[0]))
    return [[str(place), *(blank(v) for v in row)] for place, row in enumerate(rows, start=1)]


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def console_csv(client, kind: str):
    response = client.get(f"/admin/exports/{kind}.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert (response.headers["Content-Disposition"]
            == f'attachment; filename="{filename(kind, "Knockout")}"')
    return parse(response.get_data(as_text=True))


@pytest.mark.parametrize("kind", list(EXPORTS))
def test_console_and_cli_exports_match_the_database_row_by_row(client, runner, played, kind):
    login(client)
    from_console = console_csv(client, kind)
    result = runner.invoke(args=["export", kind])
    assert result.exit_code == 0, result.output
    assert parse(result.stdout) == from_console
    assert from_console[0] == list(EXPORTS[kind].header)
    expected = [[spreadsheet_text(cell) for cell in row] for row in expected_rows(kind)]
    # their order (by round, rank): see below
    key = sorted if kind in ("submissions", "eliminations") else list
    assert key(from_console[1:]) == key(expected)
    assert len(from_console) > 1
    for row in from_console:
        assert all(cell[:1] not in ("=", "+", "-", "@", "\t", "\r") for cell in row), row


def test_formula_names_and_companies_come_out_as_text(client, played):
    login(client)
    participants = {row[0]: row for row in console_csv(client, "participants")[1:]}
    row = participants[str(played["formula"].id)]
    assert row[1] == "'" + HYPERLINK and row[4] == "'+1+1" and row[3].startswith("'+1415555")
    assert participants[str(played["cy"].id)][1] == "'@Cy"
    companies = [row[1] for row in console_csv(client, "companies")[1:]]
    assert "'+1+1" in companies and "'-Dash" in companies and "+1+1" not in companies


def test_submissions_go_round_by_round_best_rank_first(client, played):
    login(client)
    rows = console_csv(client, "submissions")[1:]
    assert [(r[0], r[7]) for r in rows] == [("1", "1"), ("1", "2"), ("1", "3"), ("1", "4"),
                                            ("1", "5"), ("2", "1"), ("2", "2")]


def test_company_leaderboard_ranks_companies_still_in_first(client, played):
    login(client)
    rows = console_csv(client, "companies")[1:]
    # +1+1 and Acme each have one player still in, in round 2; the winner's company comes first.
    winner = rounds.winner()
    assert rows[0][1] == spreadsheet_text(winner.company) and rows[0][3:6] == ["1", "2", "1"]
    # Ada, Bo, Eve: 4 submissions, Ada reached round 2
    acme = next(r for r in rows if r[1] == "Acme")
    assert (acme[2], acme[3], acme[4], acme[7]) == ("3", "1" if winner.company == "Acme" else "0",
                                                    "2", "4")
    # Dee, no company, never answered
    assert rows[-1][1] == "" and rows[-1][2:] == ["1", "0", "", "", "", "0"]


def test_sponsor_leads_hold_only_participants_who_said_sponsors_may_contact_them(client, played):
    login(client)
    leads = console_csv(client, "sponsor-leads")
    emails = {row[1] for row in leads[1:]}
    # not Bo, Dee (SMS consent only), Eve
    assert emails == {played[k].email for k in ("formula", "ada", "cy")}
    assert emails == {p.email for p in db.session.scalars(select(Participant).where(
        Participant.sponsor_consent.is_(True)))}


def test_cli_export_all_writes_every_file(runner, played, tmp_path):
    result = runner.invoke(args=["export", "all", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for kind in EXPORTS:
        text = (tmp_path / "out" / filename(kind, "Knockout")).read_bytes().decode("utf-8")
        assert parse(text)[0] == list(EXPORTS[kind].header) and text.endswith('"\r\n')
        assert parse(text) == parse(runner.invoke(args=["export", kind]).stdout)


def test_cli_export_to_a_file_and_bad_kinds(runner, played, tmp_path):
    target = tmp_path / "leads.csv"
    assert runner.invoke(args=["export", "sponsor-leads", "--output", str(target)]).exit_code == 0
    assert len(parse(target.read_bytes().decode("utf-8"))) == 4  # header + the three sponsor leads
    unknown = runner.invoke(args=["export", "votes"])
    assert unknown.exit_code == 2 and "participants" in unknown.output
    no_folder = runner.invoke(args=["export", "all"])
    assert no_folder.exit_code == 2 and "--output DIR" in no_folder.output


def test_exports_need_login(client, played):
    for url in ("/admin/exports", "/admin/exports/participants.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_exports_page_lists_every_export_and_unknown_is_404(client, played):
    login(client)
    page = client.get("/admin/exports").get_data(as_text=True)
    assert all(f"/admin/exports/{kind}.csv" in page for kind in EXPORTS)
    assert "/admin/exports" in client.get("/admin/").get_data(as_text=True)
    response = client.get("/admin/exports/votes.csv")
    assert response.status_code == 404
    assert ("no export called" in response.get_data(as_text=True)
            and "sponsor-leads" in response.get_data(as_text=True))


def test_safe_cell_defuses_every_formula_start():
    from quiz.exports import safe_cell
    for start_char in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(start_char + "1+1") == "'" + start_char + "1+1"
    assert (safe_cell("Ada = 1") == "Ada = 1" and safe_cell(3) == 3 and safe_cell(None) == ""
            and safe_cell(True) == "yes")


@pytest.mark.parametrize("kind", list(EXPORTS))
def test_each_export_takes_a_fixed_number_of_queries(played, kind):
    """No query per row: the statement count does not depend on how many players there are."""
    from sqlalchemy import event

    from quiz.exports import csv_lines
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        lines = list(csv_lines(EXPORTS[kind]))
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(lines) > 2 and len(statements) <= 4, statements


def test_the_participants_export_says_when_each_player_checked_in(client, played):
    from quiz.checkin import check_in
    from quiz.clock import utcnow
    ada = db.session.get(Participant, played["ada"].id)
    check_in(ada.checkin_code, utcnow())
    db.session.commit()
    login(client)
    rows = {row[0]: row for row in console_csv(client, "participants")[1:]}
    assert rows[str(ada.id)][-1] == iso(db.session.get(Participant, ada.id).checked_in_at) != ""
    assert rows[str(played["bo"].id)][-1] == ""


def test_the_questions_export_holds_only_rounds_whose_answers_are_out(app, client, played):
    login(client)
    assert {row[0] for row in console_csv(client, "questions")[1:]} == {"1", "2"}
    app.config["RESULTS_DELAY_SECONDS"] = 3600  # round 2 (the last) is back inside its window
    assert {row[0] for row in console_csv(client, "questions")[1:]} == {"1"}
    s3 = next(row for row in console_csv(client, "questions")[1:] if row[6] == "S3")
    assert s3[3:] == ["5", "4", "80", "S3", "yes", "4", "80"]
