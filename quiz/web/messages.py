"""The console's messages page: the wording of every SMS in each of the event's languages, and
scheduled reminders."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import sms_templates
from ..audit import record
from ..clock import local_time, parse_local_time
from ..errors import QuizError
from ..extensions import db
from ..i18n import SUPPORTED, default, enabled
from ..models import Reminder, Role
from ..reminders import cancel_reminder, schedule_reminder
from ..sample_sms import sample_body, send_sample_sms
from .confirm import confirm_first, to_cancel_reminder, to_reset_sms
from .handling import write
from .wording import reset_to_default
from .admin import act
from .roles import requires

bp = Blueprint("messages", __name__, url_prefix="/admin")


@bp.get("/messages")
@requires(Role.VIEWER)
def settings():
    """The wording of every SMS in one language (?language=, the default's first), and scheduled
    reminders."""
    return _messages_page(request.args.get("language"))


def _messages_page(language=None, errors=None, values=None, status=200):
    try:
        language = sms_templates.check_language(language)
    except QuizError as error:
        language, status = sms_templates.check_language(None), error.status
        errors = {**(errors or {}), "form": error.message}
    reminders = db.session.scalars(
        select(Reminder).order_by(Reminder.send_at.desc()).limit(50)).all()
    templates = {kind: sms_templates.template_for(kind, language)
                 for kind in sms_templates.TEMPLATES}
    parts = {kind: _parts(kind, language, body) for kind, body in templates.items()}
    return render_template("admin/messages.html", templates=templates, language=language,
                           language_names=SUPPORTED, edited=sms_templates.edited(language),
                           parts=parts, placeholders=sms_templates.PLACEHOLDERS,
                           reminders=reminders, errors=errors or {}, values=values or {},
                           local=local_time), status


def _parts(kind: str, language: str, body: str) -> tuple[int, bool] | None:
    """How many SMS the wording costs with the sample values (a player's name or the round's title
    may add a part), and whether it keeps to the GSM alphabet (else 70 characters an SMS)."""
    try:
        sample = sample_body(kind, language, body)
    except (KeyError, ValueError, IndexError):
        return None
    return sms_templates.sms_parts(sample), sms_templates.is_gsm(body)


def _refused(error: QuizError, field: str, values, language=None):
    """The page again with what the organizer typed, and the error beside the field it is about."""
    return _messages_page(language, error.fields or {field: error.message}, values, error.status)


def _kind_and_language(kind):
    """The kind and the form's language, or the page again (404) saying what is wrong."""
    language = request.form.get("language") or None
    if kind not in sms_templates.TEMPLATES:
        return None, _messages_page(language, {"form": f"There is no message kind '{kind}'."},
                                    status=404)
    try:
        return sms_templates.check_language(language), None
    except QuizError as error:
        return None, _messages_page(None, {"form": error.message}, status=error.status)


@bp.post("/messages/<kind>")
@requires(Role.HOST)
def save_template(kind):
    """Save the organizer's wording of one kind of SMS in one language."""
    language, refused = _kind_and_language(kind)
    if refused:
        return refused
    body = request.form.get("body", "")

    def operation():
        sms_templates.save_template(kind, body, language)
        record(current_user.username, "edit SMS wording", None, f"{kind} ({language})")
    try:
        write(operation)
    except QuizError as error:
        return _refused(error, kind, {kind: body}, language)
    flash(f"Saved. New messages to players in {SUPPORTED[language]} use this wording.", "ok")
    return redirect(url_for("messages.settings", language=language, _anchor=f"sms-{kind}"), 303)


@bp.post("/messages/<kind>/reset")
@requires(Role.HOST)
@confirm_first(to_reset_sms)
def reset_template(kind):
    """One language's version of one kind of SMS back to its default wording."""
    language, refused = _kind_and_language(kind)
    if refused:
        return refused
    return reset_to_default(sms_templates.reset_template, "SMS", kind, language,
                            "messages.settings", "sms")


@bp.post("/test-sms")
@requires(Role.HOST)
def send_test_sms():
    """Text one message kind, with sample values, to any number (e.g. one's own) to see it
    arrive."""
    kind, phone = request.form.get("kind", ""), request.form.get("phone", "")
    language = request.form.get("language") or None

    def operation():
        message = send_sample_sms(kind, phone, language)
        record(current_user.username, "send test SMS", None,
               f"{kind} to {message.to}" + (f" in {language}" if language else ""))
        return message
    try:
        message = write(operation)
    except QuizError as error:
        return _refused(error, "test", request.form, language if language in enabled() else None)
    flash(f"Test SMS ({kind}) on its way to {message.to}.", "ok")
    return redirect(url_for("messages.settings", language=language), 303)


@bp.post("/reminders")
@requires(Role.HOST)
def add_reminder():
    """Schedule a reminder to everyone still in the game."""
    try:
        send_at = parse_local_time(request.form.get("send_at", ""))
        texts = {code: request.form.get(f"text_{code}", "") for code in enabled()
                 if code != default()}
        reminder = write(lambda: record(current_user.username, "schedule reminder",
                                        schedule_reminder(request.form.get("text", ""), send_at,
                                                          texts)))
    except QuizError as error:
        return _refused(error, "reminder", request.form)
    flash(f"Reminder scheduled for {local_time(reminder.send_at)}.", "ok")
    return redirect(url_for("messages.settings"), 303)


@bp.post("/reminders/<int:reminder_id>/cancel")
@requires(Role.HOST)
@confirm_first(to_cancel_reminder)
def cancel_reminder_view(reminder_id):
    """Call off a scheduled reminder."""
    def operation():
        reminder = db.get_or_404(Reminder, reminder_id)
        cancel_reminder(reminder)
        record(current_user.username, "cancel reminder", None, reminder.text)
    return act(operation, "Reminder cancelled.", "messages.settings")
