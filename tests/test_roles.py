"""Staff roles: every console route against every role (the matrix), and the accounts page."""
import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from quiz.clock import utcnow
from quiz.extensions import QUEUE_NAMES, db, get_queue
from quiz.helpdesk import ask_for_help
from quiz.models import AdminUser, AuditEntry, FormLink, Participant, PhotoAnswer, Role
from quiz.reminders import schedule_reminder

from .helpers import PHOTO_BANK, csrf_from, post_form, text, token_field


# Every console route (from app.url_map: each path under /admin) → the least role that may use it;
# None: anyone, logged in or not. A route added without a line here fails
# test_every_console_route_is_in_the_matrix.
MATRIX = {
    "undo.extend_round": Role.HOST,
    "undo.reopen_round": Role.HOST,
    "undo.reinstate": Role.HOST,
    "reveal.reveal_next": Role.HOST,
    "reveal.reveal_previous": Role.HOST,
    "undo.edit_participant": Role.DESK,
    "messages.send_test_sms": Role.HOST,
    "admin.login": None,
    "admin.logout": Role.VIEWER,
    "admin.dashboard": Role.VIEWER,
    "admin.health_panel": Role.VIEWER,
    "alerts.panel": Role.VIEWER,
    "admin.participants": Role.VIEWER,
    "admin.results": Role.VIEWER,
    "admin.sms_panel": Role.VIEWER,
    "admin.failed_messages": Role.VIEWER,
    "admin.start_round": Role.HOST,
    "admin.end_round": Role.HOST,
    "admin.disqualify": Role.HOST,
    "admin.load_questions": Role.HOST,
    "admin.retry_failed": Role.HOST,
    "admin.resend_link": Role.DESK,
    "desk.kiosk": Role.VIEWER,
    "desk.checkin": Role.DESK,
    "desk.help_desk": Role.VIEWER,
    "desk.resolve": Role.DESK,
    "messages.settings": Role.VIEWER,
    "messages.save_template": Role.HOST,
    "messages.reset_template": Role.HOST,
    "messages.add_reminder": Role.HOST,
    "messages.cancel_reminder_view": Role.HOST,
    "email_admin.settings": Role.VIEWER,
    "email_admin.save": Role.HOST,
    "email_admin.reset": Role.HOST,
    "email_admin.send_test": Role.HOST,
    "photos.index": Role.VIEWER,
    "photos.review_page": Role.VIEWER,
    "photos.image": Role.VIEWER,
    "photos.review": Role.HOST,
    "stored_forms.state": Role.VIEWER,
    "stored_forms.repair": Role.HOST,
    "stored_forms.regenerate": Role.HOST,
    "exports.index": Role.VIEWER,
    "exports.download": Role.VIEWER,
    "staff.index": Role.VIEWER,
    "staff.add": Role.HOST,
    "staff.set_role": Role.HOST,
    "staff.reset_password": Role.HOST,
    "staff.remove": Role.HOST,
    "look.index": Role.HOST,
    "look.save": Role.HOST,
    "questions.editor": Role.VIEWER,
    "questions.export": Role.VIEWER,
    "questions.add_round": Role.HOST,
    "questions.save_round": Role.HOST,
    "questions.add_question": Role.HOST,
    "questions.save_question": Role.HOST,
    "questions.delete_question": Role.HOST,
    "questions.move_question": Role.HOST,
}

# What a route's form sends, so that an allowed request does the real thing (optional: without a
# line here a route gets an empty form).
FORMS = {
    "admin.disqualify": {"reason": "phone swapped with a friend"},
    "admin.load_questions": {"yaml": PHOTO_BANK},
    "admin.resend_link": {"back": "participants"},
    "desk.resolve": {"reply": "Resent: check your SMS."},
    "messages.save_template": {"body": "Round {number} is open: {link}"},
    "messages.reset_template": {"language": "de"},
    "messages.add_reminder": {"text": "Final at 16:00 in Hall B", "send_at": "23:59"},
    "photos.review": {"decision": "accept"},
    "email_admin.send_test": {"kind": "confirmation", "to": "host@example.com"},
    "staff.add": {"username": "newcomer", "password": "a-long-password", "role": "desk"},
    "staff.set_role": {"role": "desk"},
    "staff.reset_password": {"password": "another-long-one"},
    "look.save": {"name": "Acme Summit", "primary": "#0a5f38"},
    "questions.add_round": {"number": "3", "title": "Extra", "scoring": "accuracy",
                            "text": "Pick a", "choices": "a\nb", "answer": "a"},
}

# Routes shown to write for their least role in the world below: so that "a forbidden request
# wrote nothing" is a check that could fail. (Optional for a new route.)
WRITES = {"admin.start_round", "admin.end_round", "admin.disqualify", "admin.load_questions",
          "admin.retry_failed", "admin.resend_link", "desk.checkin", "desk.resolve",
          "messages.save_template", "messages.add_reminder", "messages.cancel_reminder_view",
          "email_admin.send_test",
          "photos.review", "stored_forms.repair", "stored_forms.regenerate", "staff.add",
          "staff.set_role", "staff.reset_password", "staff.remove", "look.save",
          "questions.add_round"}

# Routes a host tries on round 2, round 1 ended (a round starts once the one before it is over);
# every other route sees round 1 open.
ON_ROUND_2 = {"admin.start_round"}

PASSWORD = "role-test-password"
# A cheap hash for the test accounts (the default scrypt costs a tenth of a second per account).
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def console_routes(app) -> dict[str, set[str]]:
    """Every console endpoint and the methods it answers (HEAD and OPTIONS aside)."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule == "/admin" or rule.rule.startswith("/admin/"):
            routes.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return routes


@pytest.fixture
def world(app, client, load_bank, make_participant, run_jobs, api_headers):
    """Round 1 (with a photo question) open, its links sent; Ada answered it with a photo, asked
    the help desk; a reminder waits; one account per role, and one more to manage."""
    load_bank(PHOTO_BANK)
    ada_id = make_participant("Ada").id
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    code = db.session.scalar(select(FormLink.code).where(FormLink.participant_id == ada_id,
                                                         FormLink.challenge_id == 1))
    answer_with_a_photo(client, code)  # before its stored form exists (then it has no CSRF)
    run_jobs()
    ada = db.session.get(Participant, ada_id)
    help_request = ask_for_help(ada, "no_sms", "", utcnow())
    reminder = schedule_reminder("Final at 16:00", utcnow() + timedelta(hours=2))
    for role in Role:
        add_account(role.value, role)
    other = add_account("other", Role.HOST)
    db.session.commit()
    return {"number": 1, "participant_id": ada.id, "request_id": help_request.id,
            "photo_id": db.session.scalar(select(PhotoAnswer.id)), "reminder_id": reminder.id,
            "kind": "round_link", "name": "participants", "user_id": other.id,
            "code": ada.checkin_code, "index": 1}


def answer_with_a_photo(client, code: str) -> None:
    """Press Start and send the round's form: S3, and a photo."""
    page = client.get(f"/f/{code}").get_data(as_text=True)
    client.post(f"/f/{code}/start", data=dict([token_field(page)]))
    page = client.get(f"/f/{code}").get_data(as_text=True)
    choice, value = re.search(r'name="(q\d+)" value="([^"]+)"[^>]*>\s*<span>S3<', page).groups()
    photo = re.search(r'<input type="file" name="(q\d+)"', page).group(1)
    image = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(image, "JPEG")
    image.seek(0)
    response = client.post(f"/f/{code}/submit", content_type="multipart/form-data",
                           data={"csrf_token": csrf_from(page), choice: value,
                                 photo: (image, "selfie.jpg", "image/jpeg")})
    assert response.status_code in (200, 303), text(response)


def add_account(username: str, role: Role) -> AdminUser:
    user = AdminUser(username=username, role=role, password_hash=PASSWORD_HASH)
    db.session.add(user)
    db.session.flush()
    return user


def log_in(client, role: Role | None) -> str:
    """Log in with the account of `role` (or stay out); a CSRF token for the forms."""
    if role is None:
        return csrf_from(client.get("/admin/login").get_data(as_text=True))
    response = post_form(client, "/admin/login", "/admin/login",
                         {"username": role.value, "password": PASSWORD})
    assert response.status_code == 303
    return csrf_from(client.get("/admin/").get_data(as_text=True))


def snapshot() -> tuple:
    """Every row of every table, and the queues' lengths: what a refused request must not touch."""
    with db.engine.connect() as connection:
        rows = tuple(sorted(map(repr, connection.execute(table.select()).all()))
                     for table in db.metadata.sorted_tables)
    return rows, tuple(get_queue(name).count for name in QUEUE_NAMES)


def request_route(client, app, endpoint: str, method: str, world: dict, token: str,
                  confirmed: bool = False):
    """`confirmed`: as the confirmation page's Yes posts it (an action that asks first does nothing
    without it: tests/test_console_confirm.py)."""
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint)
    with app.test_request_context():
        url = app.url_for(endpoint, **{arg: world[arg] for arg in rule.arguments})
    if method == "GET":
        return client.get(url)
    data = {"csrf_token": token, **FORMS.get(endpoint, {})}
    if confirmed:
        data["confirmed"] = "yes"
    if endpoint == "desk.checkin":
        data["code"] = world["code"]
    return client.open(url, method=method, data=data)


def test_every_console_route_is_in_the_matrix(app):
    assert set(console_routes(app)) == set(MATRIX)


def test_every_console_route_checks_its_role_with_requires(app):
    """The decorator's role is the matrix's (login is the one route without a role)."""
    declared = {endpoint: getattr(app.view_functions[endpoint], "required_role", None)
                for endpoint in console_routes(app)}
    assert declared == MATRIX


def check(app, client, world: dict, endpoint: str, role: Role | None, token: str) -> list[str]:
    """What is wrong with how `endpoint` answers `role` (nothing, if it answers as the matrix says):
    allowed → not refused; forbidden → 403 naming the role needed, nothing written; not logged in →
    the login page, nothing written."""
    needed, problems = MATRIX[endpoint], []
    allowed = needed is None or (role is not None and role.allows(needed))
    for method in sorted(console_routes(app)[endpoint]):
        before = snapshot()
        # a refused role's post is not confirmed: its 403 comes before any question
        response = request_route(client, app, endpoint, method, world, token, confirmed=allowed)
        response.get_data()  # to its end: a streamed export closes its database cursor
        response.close()
        status, where = response.status_code, response.headers.get("Location", "")
        to_login = status == 302 and "/admin/login?next=" in where
        if allowed:
            if status == 403 or status >= 500 or to_login:
                problems.append(f"{method} {endpoint}: {status} {where}, expected allowed")
            elif endpoint in WRITES and role == needed and snapshot() == before:
                problems.append(f"{method} {endpoint} wrote nothing for {role}")
            if endpoint == "admin.logout" and role is not None:
                token = log_in(client, role)
        elif role is None:
            if not to_login or snapshot() != before:
                problems.append(f"{method} {endpoint}: {status} {where}, expected the login page")
        else:
            page = re.sub(r"<[^>]+>", "", text(response))
            if status != 403 or f"This needs the {needed} role" not in page:
                problems.append(f"{method} {endpoint}: {status}, expected 403 naming {needed}")
            elif snapshot() != before:
                problems.append(f"{method} {endpoint}: refused {role}, but wrote")
    return problems


@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_a_host_may_use_every_console_route(app, client, world, endpoint):
    """On a fresh world each: a host's action changes it (ending round 1, say)."""
    if endpoint in ON_ROUND_2:
        assert client.post("/api/admin/end-challenge/1", headers={
            "Authorization": f"Bearer {app.config['ADMIN_API_TOKEN']}"}).status_code == 200
        world = {**world, "number": 2}
    assert check(app, client, world, endpoint, Role.HOST, log_in(client, Role.HOST)) == []


@pytest.mark.parametrize("role", [Role.DESK, Role.VIEWER, None],
                         ids=lambda role: role or "anonymous")
def test_desk_viewer_and_anonymous_get_only_what_the_matrix_allows(app, client, world, role):
    """Every route in turn on one world: what these roles may do leaves the others' checks be."""
    token = log_in(client, role)
    assert [problem for endpoint in sorted(MATRIX)
            for problem in check(app, client, world, endpoint, role, token)] == []


def test_a_refused_htmx_request_gets_a_small_fragment(client, world):
    token = log_in(client, Role.DESK)
    before = snapshot()
    response = client.post(f"/admin/photos/review/{world['photo_id']}",
                           data={"csrf_token": token, "decision": "accept"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 403 and "<html" not in text(response)
    assert "needs the host role" in re.sub(r"<[^>]+>", "", text(response))
    assert snapshot() == before


def buttons(page) -> set[str]:
    """The labels of a page's submit buttons."""
    return {" ".join(label.split()) for label in re.findall(
        r'<button[^>]*type="submit"[^>]*>([^<]*)</button>', text(page))}


@pytest.mark.parametrize("role, shown", [
    (Role.HOST, {"End round 1", "Load", "Resend round 1 link", "Regenerate forms", "Disqualify",
                 "Reply & resolve", "Check in", "Accept"}),
    (Role.DESK, {"Resend round 1 link", "Reply & resolve", "Check in"}),
    (Role.VIEWER, set()),
])
def test_the_console_shows_only_the_buttons_a_role_can_use(client, world, role, shown):
    log_in(client, role)
    pages = ["/admin/", "/admin/participants", "/admin/help", "/admin/checkin", "/admin/photos/1"]
    seen = set().union(*(buttons(client.get(page)) for page in pages)) - {"Log out", "Search"}
    every = {"End round 1", "Load", "Resend round 1 link", "Regenerate forms", "Disqualify",
             "Reply & resolve", "Check in", "Accept", "Reject"}
    assert seen & every == shown | ({"Reject"} if role == Role.HOST else set())


def test_live_fragments_mark_their_actions_and_the_page_says_the_role(app, client, world):
    """One render serves every organizer: its buttons carry the role they need, and the page's
    stylesheet hides them from the roles without it."""
    from quiz.web.admin import live_overview
    from quiz.web.desk import live_help
    with app.test_request_context():
        overview, help_list = live_overview(), live_help()
    assert re.search(r'<form method="post" data-needs="host" action="/admin/rounds/1/end"',
                     overview)
    assert re.search(r'<form method="post" data-needs="desk" action="/admin/help/\d+/resolve"',
                     help_list)
    log_in(client, Role.VIEWER)
    assert re.search(r'<body class="admin"[^>]* data-role="viewer"', text(client.get("/admin/")))
    with open(f"{app.static_folder}/css/app.css") as stylesheet:
        rules = stylesheet.read()
    assert 'body:not([data-role="host"]) [data-needs="host"]' in rules
    assert 'body:not([data-role="host"]):not([data-role="desk"]) [data-needs="desk"]' in rules


def test_console_actions_are_audited_with_who_did_them(client, world):
    token = log_in(client, Role.DESK)
    client.post(f"/admin/help/{world['request_id']}/resolve",
                data={"csrf_token": token, "reply": "On its way"})
    client.post(f"/admin/participants/{world['participant_id']}/resend/1",
                data={"csrf_token": token})
    assert db.session.scalars(select(AuditEntry.actor).order_by(AuditEntry.id)).all()[-2:] == [
        "desk", "desk"]
    page = text(client.get("/admin/"))
    assert re.search(r"<strong>desk</strong> resend link", page)
