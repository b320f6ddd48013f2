"""The console's messages page: the wording of every SMS, and scheduled reminders."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import notify
from ..audit import record
from ..clock import local_time, parse_local_time
from ..errors import QuizError
from ..extensions import db
from ..models import Reminder, Role
from ..reminders import cancel_reminder, schedule_reminder
from ..sample_sms import send_sample_sms
from .handling import write
from .admin import act
from .roles import requires

bp = Blueprint("messages", __name__, url_prefix="/admin")


@bp.get("/messages")
@requires(Role.VIEWER)
def settings():
    """The wording of every SMS, and scheduled reminders."""
    return _messages_page()


def _messages_page(errors=None, values=None, status=200):
    reminders = db.session.scalars(
        select(Reminder).order_by(Reminder.send_at.desc()).limit(50)).all()
    templates = {kind: notify.template_for(kind) for kind in notify.TEMPLATES}
    return render_template("admin/messages.html", templates=templates,
                           placeholders=notify.PLACEHOLDERS, reminders=reminders,
                           errors=errors or {}, values=values or {}, local=local_time), status


def _refused(error: QuizError, field: str, values):
    """The page again with what the organizer typed, and the error beside the field it is about."""
    return _messages_page(error.fields or {field: error.message}, values, error.status)


@bp.post("/messages/<kind>")
@requires(Role.HOST)
def save_template(kind):
    """Save the organizer's wording of one kind of SMS."""
    if kind not in notify.TEMPLATES:
        return _messages_page({"form": f"There is no message kind '{kind}'."}, status=404)
    body = request.form.get("body", "")

    def operation():
        notify.save_template(kind, body)
        record(current_user.username, "edit SMS wording", None, kind)
    try:
        write(operation)
    except QuizError as error:
        return _refused(error, kind, {kind: body})
    flash("Saved. New messages use this wording.", "ok")
    return redirect(url_for("messages.settings"), 303)


@bp.post("/test-sms")
@requires(Role.HOST)
def send_test_sms():
    """Text one message kind, with sample values, to any number (e.g. one's own) to see it
    arrive."""
    kind, phone = request.form.get("kind", ""), request.form.get("phone", "")

    def operation():
        message = send_sample_sms(kind, phone)
        record(current_user.username, "send test SMS", None, f"{kind} to {message.to}")
        return message
    try:
        message = write(operation)
    except QuizError as error:
        return _refused(error, "test", request.form)
    flash(f"Test SMS ({kind}) on its way to {message.to}.", "ok")
    return redirect(url_for("messages.settings"), 303)


@bp.post("/reminders")
@requires(Role.HOST)
def add_reminder():
    """Schedule a reminder to everyone still in the game."""
    try:
        send_at = parse_local_time(request.form.get("send_at", ""))
        reminder = write(lambda: record(current_user.username, "schedule reminder",
                                        schedule_reminder(request.form.get("text", ""), send_at)))
    except QuizError as error:
        return _refused(error, "reminder", request.form)
    flash(f"Reminder scheduled for {local_time(reminder.send_at)}.", "ok")
    return redirect(url_for("messages.settings"), 303)


@bp.post("/reminders/<int:reminder_id>/cancel")
@requires(Role.HOST)
def cancel_reminder_view(reminder_id):
    """Call off a scheduled reminder."""
    def operation():
        reminder = db.get_or_404(Reminder, reminder_id)
        cancel_reminder(reminder)
        record(current_user.username, "cancel reminder", None, reminder.text)
    return act(operation, "Reminder cancelled.", "messages.settings")
