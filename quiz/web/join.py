"""The join form (`/`, `/register`): a full page post without JavaScript; with htmx, each field
checked as the person leaves it and the submit answered in place."""
from flask import Blueprint, current_app, redirect, render_template, request, url_for

from .. import i18n
from ..branding import current_look
from ..checkin import display_code
from ..errors import QuizError
from ..extensions import db, limiter
from ..models import Participant
from ..qr import qr_svg
from ..registration import (FIELD_CHECKS, check_field, phone_readback, register_participant,
                            registration_open, validate_registration)
from .handling import wants_fragment, write
from .security import form_session_key, registration_key

bp = Blueprint("join", __name__)


def join_page(values=None, errors=None, status: int = 200):
    """The join page, or (to htmx) its #join block alone: the form with what to fix, or "closed"."""
    values, errors = values or {}, errors or {}
    body = render_template("play/register.html", values=values, errors=errors,
                           is_open=registration_open(), fragment=wants_fragment(),
                           checked="" if "phone" in errors else readback(values.get("phone")))
    return current_app.make_response((body, status, {"Vary": "HX-Request, Accept-Language"}))


@bp.get("/")
@bp.get("/register")
def register_form():
    """The join form."""
    return join_page()


@bp.post("/register")
@limiter.limit("10 per minute", key_func=registration_key)
@limiter.limit("1200 per minute")  # per address: a whole venue behind one NAT still gets in
def register():
    """Join the game; errors come back inline with what was typed kept. To htmx, the confirmation
    takes the form's place and the address becomes the player's page."""
    if not registration_open():
        return join_page(status=409)
    try:
        clean = validate_registration(request.form)
        # the page's language (the switch, else the phone's): their pages, SMS and emails speak it
        clean["language"] = i18n.current_language()
        joined = write(register_participant, clean)
    except QuizError as error:
        return join_page(request.form, error.fields or {"form": error.message}, error.status)
    welcome = url_for("play.report", code=joined.report_code, welcome=1)
    if not wants_fragment():
        return redirect(welcome, 303)
    participant = db.session.get(Participant, joined.id)
    response = current_app.make_response(render_template(
        "play/_joined.html", participant=participant, qr=qr_svg,
        checkin=display_code(participant.checkin_code), event=current_look().name))
    response.headers["HX-Push-Url"] = welcome
    return response


@bp.post(f"/register/check/<any({', '.join(FIELD_CHECKS)}):field>")
@limiter.limit("60 per minute", key_func=form_session_key)
@limiter.limit("6000 per minute")  # per address: the venue's NAT, a few fields per person
def check(field):
    """One field as the person left it: its partial again, with what to fix or nothing.

    200 whether the value is fine or not: the check itself succeeded (nothing was submitted or
    refused), and htmx swaps 2xx answers as they are. Its format only, never whether an email or
    phone is already registered: that is answered on submit.
    """
    value = request.form.get(field, "")
    error = check_field(field, value)[1]
    return render_template(f"play/_field_{field}.html", values={field: value},
                           errors={field: error} if error else {},
                           checked=readback(value) if field == "phone" else "")


def readback(phone) -> str:
    """A valid phone number as it will be texted, with its country; "" for none or a bad one."""
    clean, error = check_field("phone", phone or "")
    return "" if error else phone_readback(clean)
