"""The organizer's console: log in, run the rounds, watch the outbox."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select

from .. import console, delivery, live, notify, rounds
from ..accounts import authenticate, load_organizer
from ..audit import record
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db, limiter, login_manager
from ..leaderboard import leaderboard
from ..models import AdminUser, Message, MessageStatus, Participant, Role
from ..delivery import sms_progress
from ..delivery import email_progress
from ..observability import health
from ..questions import apply_bank, parse_bank
from .confirm import (bank_text, confirm_first, to_disqualify, to_end_round, to_load_bank,
                      to_start_round)
from .handling import write
from .security import login_key
from .roles import requires

bp = Blueprint("admin", __name__, url_prefix="/admin")
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to run the event."


login_manager.user_loader(load_organizer)


def bootstrap_admin() -> None:
    """With no organizer yet, ADMIN_PASSWORD creates 'admin' (or use `flask --app quiz admin
    create`)."""
    password = current_app.config["ADMIN_PASSWORD"]
    if password and not db.session.scalar(select(func.count()).select_from(AdminUser)):
        user = AdminUser(username="admin")
        user.set_password(password)
        db.session.add(user)


@bp.route("/login", methods=["GET", "POST"])
# Per account and address, failures only: guessing one account is slowed, while the venue's other
# organizers behind the same NAT address (other accounts) still get in.
@limiter.limit("10 per minute", methods=["POST"], key_func=login_key,
               deduct_when=lambda response: response.status_code == 401)
def login():
    """Password login for organizers."""
    error = None
    if request.method == "POST":
        write(bootstrap_admin)
        user = authenticate(request.form.get("username", "admin"),
                            request.form.get("password", ""))
        if user is not None:
            login_user(user, remember=True)
            return redirect(url_for("admin.dashboard"), 303)
        error = "That username and password don't match. Check them and try again."
    return render_template("admin/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@requires(Role.VIEWER)
def logout():
    """Log out on every device: the session token changes, so no earlier cookie works again."""
    write(current_user.rotate_session_token)
    logout_user()
    return redirect(url_for("admin.login"), 303)


@live.renderer(bp, "admin")
def live_overview() -> str:
    """The console's live fragments (numbers, rounds, audit log), as the websocket pushes them."""
    context = {"o": console.overview(), **console.rounds_and_audit()}
    return "".join(render_template(name, live=True, **context)
                   for name in ("admin/_overview.html", "admin/_rounds.html", "admin/_audit.html"))


@bp.get("/")
@requires(Role.VIEWER)
def dashboard():
    """Rounds with their counts and actions, the latest SMS and the audit log."""
    outbox = db.session.scalars(select(Message).order_by(Message.id.desc()).limit(20)).all()
    return render_template("admin/dashboard.html", outbox=outbox, o=console.overview(),
                           report=health()[0], **console.rounds_and_audit())


@bp.post("/rounds/<int:number>/start")
@requires(Role.HOST)
@confirm_first(to_start_round)
def start_round(number):
    """Open a round from the console."""
    return act(lambda: record(current_user.username, "start round",
                              rounds.start_round(number, utcnow()).challenge),
                f"Round {number} is open. Links are going out.")


@bp.post("/rounds/<int:number>/end")
@requires(Role.HOST)
@confirm_first(to_end_round)
def end_round(number):
    """Close a round and eliminate, from the console."""
    return act(lambda: record(current_user.username, "end round",
                              rounds.close_round(number, utcnow())),
                f"Round {number} is closed and eliminations are done.")


@bp.get("/health")
@requires(Role.VIEWER)
def health_panel():
    """The console's system strip: database, Redis, live workers and queue depths (polls itself)."""
    report, _ = health()
    return render_template("admin/_health.html", report=report)


def act(operation, success, then: str = "admin.dashboard", failure: str = "{}", **then_args):
    """Run a console action, flash what happened, and go back to the page it came from.

    `success` is the flash, or a function of what the operation returned; a QuizError's message is
    flashed inside `failure`. Nothing is half-written either way: write() commits or rolls back.
    """
    try:
        result = write(operation)
    except QuizError as error:
        flash(failure.format(error.message), "error")
    else:
        flash(success(result) if callable(success) else success, "ok")
    return redirect(url_for(then, **then_args), 303)


PAGE_SIZE = 50


@bp.get("/participants")
@requires(Role.VIEWER)
def participants():
    """Find a player by name, email, phone or company; see where they stand; act on them."""
    query = " ".join(request.args.get("q", "").split())[:100]
    rows = select(Participant).order_by(Participant.id)
    if query:
        like = f"%{query.lower()}%"
        rows = rows.where(db.or_(func.lower(Participant.name).like(like),
                                 Participant.email.like(like), Participant.phone.like(f"%{query}%"),
                                 func.lower(Participant.company).like(like)))
    found = db.session.scalars(rows.limit(PAGE_SIZE)).all()
    return render_template("admin/participants.html", query=query, found=found, page_size=PAGE_SIZE,
                           current=rounds.current_challenge())


@bp.post("/participants/<int:participant_id>/disqualify")
@requires(Role.HOST)
@confirm_first(to_disqualify)
def disqualify(participant_id):
    """Take a player out, with a reason for the audit log."""
    def operation():
        participant = db.get_or_404(Participant, participant_id)
        number = rounds.disqualify(participant, request.form.get("reason", ""))
        record(current_user.username, "disqualify", None,
               f"{participant.name} (round {number}): "
               f"{' '.join(request.form.get('reason', '').split())}", about=participant)
    return act(operation, "Disqualified.", "admin.participants", q=request.form.get("q", ""))


@bp.post("/questions")
@requires(Role.HOST)
@confirm_first(to_load_bank)
def load_questions():
    """Load a question bank (YAML, pasted or uploaded) from the console; all or nothing."""
    text = bank_text()

    def operation():
        changes = apply_bank(parse_bank(text))
        return record(current_user.username, "load questions", changes,
                      "; ".join(changes) or "no change")

    def loaded(changes):
        return f"Question bank loaded: {'; '.join(changes) or 'nothing to change'}."
    return act(operation, loaded,
               failure="The question bank was not loaded: {}. Nothing was changed.")


@bp.get("/rounds/<int:number>/results")
@requires(Role.VIEWER)
def results(number):
    """A round's full standing: who stayed, who is out and why."""
    challenge = rounds.get_challenge(number)
    reasons = dict(db.session.execute(select(Participant.id, Participant.elimination_reason)
                                      .where(Participant.eliminated_in == number)).all())
    return render_template("admin/results.html", c=challenge, entries=leaderboard(challenge),
                           reasons=reasons)


# --- SMS: progress, failures, resend, wording, reminders -----------------------------------------

@bp.get("/rounds/<int:number>/sms")
@requires(Role.VIEWER)
def sms_panel(number):
    """The round's SMS progress widget; it polls itself while sending runs."""
    challenge = rounds.get_challenge(number)
    return render_template("admin/_sms_progress.html", c=challenge, p=sms_progress(challenge),
                           e=email_progress(challenge))


@bp.get("/rounds/<int:number>/failed")
@requires(Role.VIEWER)
def failed_messages(number):
    """Messages of a round that could not be delivered, with the provider's reason."""
    challenge = rounds.get_challenge(number)
    failed = db.session.execute(select(Message, Participant)
                                .join(Participant, Participant.id == Message.participant_id)
                                .where(Message.challenge_id == challenge.id,
                                       Message.status == MessageStatus.FAILED)
                                .order_by(Message.id)).all()
    return render_template("admin/failed.html", c=challenge, failed=failed)


@bp.post("/rounds/<int:number>/retry-failed")
@requires(Role.HOST)
def retry_failed(number):
    """Send every failed message of the round again."""
    def operation():
        ids = delivery.requeue_failed(rounds.get_challenge(number))
        record(current_user.username, "retry failed SMS", None,
               f"round {number}: {len(ids)} message(s)")
        notify.hand_over(ids, f"round {number} retry")
        return ids
    return act(operation, f"Failed messages of round {number} are queued again.",
               "admin.failed_messages", number=number)


@bp.post("/participants/<int:participant_id>/resend/<int:number>")
@requires(Role.DESK)
def resend_link(participant_id, number):
    """Send one player's round link again."""
    def operation():
        participant = db.get_or_404(Participant, participant_id)
        message_id = delivery.requeue_link(participant, rounds.get_challenge(number))
        record(current_user.username, "resend link", None, f"{participant.name}, round {number}",
               about=participant)
        notify.hand_over([message_id], "resend")
    if request.form.get("back") == "help":
        return act(operation, f"Round {number} link is being sent again.", "desk.help_desk")
    if request.form.get("back") == "participants":
        return act(operation, f"Round {number} link is being sent again.", "admin.participants",
                    q=request.form.get("q", ""))
    return act(operation, f"Round {number} link is being sent again.", "admin.failed_messages",
               number=number)
