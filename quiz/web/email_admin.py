"""The console's email page: the wording of every email (subject, plain text, HTML) in each of the
event's languages, with a preview filled in with sample values."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import email_templates, emails
from ..audit import record
from ..errors import QuizError
from ..i18n import SUPPORTED, enabled
from ..models import Role
from .confirm import confirm_first, to_reset_email
from .handling import write
from .wording import reset_to_default
from .roles import requires

bp = Blueprint("email_admin", __name__, url_prefix="/admin")


@bp.get("/emails")
@requires(Role.VIEWER)
def settings():
    """Every email's wording in one language (?language=, the default's first), and how it reads
    with sample values."""
    return _page(request.args.get("language"))


def _page(language=None, errors=None, values=None, status=200):
    errors = dict(errors or {})
    try:
        language = email_templates.check_language(language)
    except QuizError as error:
        language, status = email_templates.check_language(None), error.status
        errors["form"] = error.message
    wordings = {kind: email_templates.wording(kind, language) for kind in email_templates.DEFAULTS}
    sample = email_templates.sample(language)
    previews = {kind: email_templates.render(kind, sample, words)
                for kind, words in wordings.items()}
    return render_template("admin/emails.html", wordings=wordings, previews=previews,
                           language=language, language_names=SUPPORTED,
                           edited=email_templates.edited(language),
                           titles=email_templates.TITLES,
                           placeholders=email_templates.PLACEHOLDERS, errors=errors,
                           values=values or {}), status


def _kind_and_language(kind):
    """The kind and the form's language, or the page again (404) saying what is wrong."""
    language = request.form.get("language") or None
    if kind not in email_templates.DEFAULTS:
        return None, _page(language, {"form": f"There is no email kind '{kind}'."}, status=404)
    try:
        return email_templates.check_language(language), None
    except QuizError as error:
        return None, _page(None, {"form": error.message}, status=error.status)


@bp.post("/emails/<kind>")
@requires(Role.HOST)
def save(kind):
    """Save the organizer's wording of one kind of email in one language (all three parts at
    once)."""
    language, refused = _kind_and_language(kind)
    if refused:
        return refused
    parts = {part: request.form.get(part, "") for part in email_templates.PARTS}

    def operation():
        email_templates.save(kind, **parts, language=language)
        record(current_user.username, "edit email wording", None, f"{kind} ({language})")
    try:
        write(operation)
    except QuizError as error:
        return _page(language, {kind: error.fields}, {kind: parts}, error.status)
    flash(f"Saved. New emails to players in {SUPPORTED[language]} use this wording.", "ok")
    return redirect(url_for("email_admin.settings", language=language, _anchor=f"email-{kind}"),
                    303)


@bp.post("/emails/<kind>/reset")
@requires(Role.HOST)
@confirm_first(to_reset_email)
def reset(kind):
    """One language's version back to the default wording."""
    language, refused = _kind_and_language(kind)
    if refused:
        return refused
    return reset_to_default(email_templates.reset, "email", kind, language,
                            "email_admin.settings", "email")


@bp.post("/emails/test")
@requires(Role.HOST)
def send_test():
    """Send one email in one language, as it reads now with sample values, to any address to see it
    arrive."""
    kind, to = request.form.get("kind", ""), request.form.get("to", "")
    language = request.form.get("language") or None

    def operation():
        message = emails.send_sample(kind, to, language)
        record(current_user.username, "send test email", None,
               f"{kind} to {message.to}" + (f" in {language}" if language else ""))
        return message
    try:
        message = write(operation)
    except QuizError as error:
        return _page(language if language in enabled() else None,
                     {"test": error.fields or {"to": error.message}}, {"test": request.form},
                     error.status)
    flash(f"Test email ({kind}) on its way to {message.to}.", "ok")
    return redirect(url_for("email_admin.settings", language=language), 303)
