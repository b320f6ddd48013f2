"""The console's Look page: the event's name, colours, logo and sponsors (hosts set them)."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from .. import branding, logos
from ..errors import QuizError
from ..extensions import csrf, db
from ..models import EventLook, Role
from .handling import write
from .roles import requires

bp = Blueprint("look", __name__, url_prefix="/admin/look")


def look_page(status: int = 200, error: QuizError | None = None, values=None):
    row = db.session.get(EventLook, 1)
    look = branding.fresh_look()  # saved a moment ago, maybe by another process
    saved = {"name": row.name if row else "", "primary": row.primary if row else "",
             "accent": row.accent if row else "", "sms_sender": row.sms_sender if row else "",
             "sponsors": "\n".join(n for n, _ in branding.stored_sponsors(row)) if row else ""}
    return render_template("admin/look.html", look=look, notes=branding.contrast_notes(look),
                           values=values or saved, error=error,
                           errors=error.fields if error else {}), status


@bp.get("/")
@requires(Role.HOST)
def index():
    """The look as the pages show it, its contrast checked, and the form to change it."""
    return look_page()


def upload(name: str) -> bytes | None:
    file = request.files.get(name)
    return file.read() if file and file.filename else None


@bp.post("/")
@requires(Role.HOST)
@csrf.exempt  # checked below, once the body may be as large as two logos
def save():
    """Save the look: refused whole (nothing stored) if a colour, name or logo is wrong."""
    config = current_app.config
    request.max_content_length = 2 * config["LOGO_MAX_BYTES"] + config["MAX_CONTENT_LENGTH"]
    try:
        request.form, request.files
    except RequestEntityTooLarge:
        return look_page(413, logos.LogoError(
            f"That upload is larger than {config['LOGO_MAX_BYTES'] / 1_000_000:g} MB a logo, the "
            "limit. Send a smaller file.", status=413))
    csrf.protect()
    try:
        write(lambda: branding.save_look(current_user.username, request.form, upload("logo"),
                                         upload("sponsor_logo")))
    except QuizError as error:
        db.session.rollback()
        return look_page(error.status, error, request.form)
    flash("Look saved: every page and the projector show it now.", "ok")
    return redirect(url_for("look.index"), 303)
