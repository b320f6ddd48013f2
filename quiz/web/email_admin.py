"""The console's email page: the wording of every email (subject, plain text, HTML), with a preview
filled in with sample values."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import email_templates, emails
from ..audit import record
from ..errors import QuizError
from ..models import Role
from .admin import act
from .handling import write
from .roles import requires

bp = Blueprint("email_admin", __name__, url_prefix="/admin")


@bp.get("/emails")
@requires(Role.VIEWER)
def settings():
    """Every email's wording, and how it reads with sample values."""
    return _page()


def _page(errors=None, values=None, status=200):
    wordings = {kind: email_templates.wording(kind) for kind in email_templates.DEFAULTS}
    previews = {}
    for kind, words in wordings.items():
        sample = dict(email_templates.SAMPLE, event=current_app.config["EVENT_NAME"])
        previews[kind] = email_templates.render(kind, sample, words)
    return render_template("admin/emails.html", wordings=wordings, previews=previews,
                           titles=email_templates.TITLES,
                           placeholders=email_templates.PLACEHOLDERS, errors=errors or {},
                           values=values or {}), status


@bp.post("/emails/<kind>")
@requires(Role.HOST)
def save(kind):
    """Save the organizer's wording of one kind of email (all three parts at once)."""
    if kind not in email_templates.DEFAULTS:
        return _page({"form": f"There is no email kind '{kind}'."}, status=404)
    parts = {part: request.form.get(part, "") for part in email_templates.PARTS}

    def operation():
        email_templates.save(kind, **parts)
        record(current_user.username, "edit email wording", None, kind)
    try:
        write(operation)
    except QuizError as error:
        return _page({kind: error.fields}, {kind: parts}, error.status)
    flash("Saved. New emails use this wording.", "ok")
    return redirect(url_for("email_admin.settings", _anchor=f"email-{kind}"), 303)


@bp.post("/emails/<kind>/reset")
@requires(Role.HOST)
def reset(kind):
    """Back to the default wording."""
    if kind not in email_templates.DEFAULTS:
        return _page({"form": f"There is no email kind '{kind}'."}, status=404)

    def operation():
        email_templates.reset(kind)
        record(current_user.username, "reset email wording", None, kind)
    return act(operation, "Back to the default wording.", "email_admin.settings")


@bp.post("/emails/test")
@requires(Role.HOST)
def send_test():
    """Send one email, as it reads now with sample values, to any address to see it arrive."""
    kind, to = request.form.get("kind", ""), request.form.get("to", "")

    def operation():
        message = emails.send_sample(kind, to)
        record(current_user.username, "send test email", None, f"{kind} to {message.to}")
        return message
    try:
        message = write(operation)
    except QuizError as error:
        return _page({"test": error.fields or {"to": error.message}}, {"test": request.form},
                     error.status)
    flash(f"Test email ({kind}) on its way to {message.to}.", "ok")
    return redirect(url_for("email_admin.settings"), 303)
