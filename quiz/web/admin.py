"""The organizer's console: log in, run the rounds, watch the outbox."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from .. import rounds
from ..audit import record
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db, limiter, login_manager
from ..models import AdminUser, AuditEntry, Challenge, Message, Participant, Submission
from ..notify import sms_progress
from . import write

bp = Blueprint("admin", __name__, url_prefix="/admin")
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to run the event."


@login_manager.user_loader
def load_user(user_id: str):
    return db.session.get(AdminUser, int(user_id)) if user_id.isdigit() else None


def bootstrap_admin() -> None:
    """With no organizer yet, ADMIN_PASSWORD creates 'admin' (or use `flask --app quiz admin create`)."""
    password = current_app.config["ADMIN_PASSWORD"]
    if password and not db.session.scalar(select(func.count()).select_from(AdminUser)):
        user = AdminUser(username="admin")
        user.set_password(password)
        db.session.add(user)
        db.session.commit()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    """Password login for organizers."""
    error = None
    if request.method == "POST":
        bootstrap_admin()
        user = db.session.scalar(select(AdminUser).where(AdminUser.username == request.form.get("username", "admin")))
        if user and user.check_password(request.form.get("password", "")):
            login_user(user, remember=True)
            return redirect(url_for("admin.dashboard"), 303)
        error = "That username and password don't match. Check them and try again."
    return render_template("admin/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("admin.login"), 303)


@bp.get("/")
@login_required
def dashboard():
    """Rounds with their counts and actions, the latest SMS and the audit log."""
    challenges = db.session.scalars(select(Challenge).order_by(Challenge.number)).all()
    submitted = dict(db.session.execute(select(Submission.challenge_id, func.count()).group_by(Submission.challenge_id)).all())
    outbox = db.session.scalars(select(Message).order_by(Message.id.desc()).limit(20)).all()
    audit = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(20)).all()
    counts = {"players": db.session.scalar(select(func.count()).select_from(Participant)),
              "in_game": db.session.scalar(select(func.count()).where(Participant.eliminated_in.is_(None)))}
    return render_template("admin/dashboard.html", challenges=challenges, submitted=submitted, outbox=outbox,
                           audit=audit, counts=counts, progress={c.id: sms_progress(c) for c in challenges},
                           winner=rounds.winner(), now=utcnow())


@bp.post("/rounds/<int:number>/start")
@login_required
def start_round(number):
    """Open a round from the console."""
    return _act(lambda: record(current_user.username, "start round", rounds.start_round(number, utcnow())),
                f"Round {number} is open. Links are going out.")


@bp.post("/rounds/<int:number>/end")
@login_required
def end_round(number):
    """Close a round and eliminate, from the console."""
    return _act(lambda: record(current_user.username, "end round", rounds.close_round(number, utcnow())),
                f"Round {number} is closed and eliminations are done.")


def _act(operation, success: str):
    try:
        write(operation)
        flash(success, "ok")
    except QuizError as error:
        flash(error.message, "error")
    return redirect(url_for("admin.dashboard"), 303)
