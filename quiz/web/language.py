"""The language switch on a page: a POST that sets the `lang` cookie and, on a participant's own
pages (round page, report, stored form), stores the choice with the participant, so their pages,
SMS and emails speak it from then on. Works without JavaScript (a form of buttons)."""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, request, url_for

from .. import i18n
from ..extensions import csrf, limiter
from ..links import find_link, find_participant
from ..stored_forms import form_token_ok
from .handling import write
from .security import link_key

bp = Blueprint("language", __name__)


@bp.post("/lang")
@limiter.limit("600 per minute")  # per address: a whole venue behind one NAT
def switch():
    """Any page that is not a participant's own: the cookie only, then back to the page."""
    code = i18n.offered(request.form.get("lang"))
    return switched(code, back_to(request.form.get("next")))


@bp.post("/f/<code>/lang")
@csrf.exempt  # checked below: the live page's session token, or the stored form's own token
@limiter.limit("30 per minute", key_func=link_key)
def switch_round(code):
    """From a round page or its stored form: the cookie, and the participant's language."""
    if not form_token_ok(code, request.form.get("form_token", "")):
        csrf.protect()
    link = find_link(code)
    language = i18n.offered(request.form.get("lang"))
    write(i18n.remember, link.participant, language)
    return switched(language, url_for("play.round_page", code=code))


@bp.post("/r/<code>/lang")
@limiter.limit("30 per minute", key_func=link_key)
def switch_report(code):
    """From a participant's page: the cookie, and the participant's language."""
    participant = find_participant(code)
    language = i18n.offered(request.form.get("lang"))
    write(i18n.remember, participant, language)
    return switched(language, url_for("play.report", code=code))


def switched(code: str, to: str):
    """303 back to the page, which now speaks `code`; the cookie keeps it for this phone."""
    response = redirect(to, 303)
    response.set_cookie(i18n.COOKIE, code, max_age=i18n.COOKIE_MAX_AGE, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True)
    return response


def back_to(target: str | None) -> str:
    """A path on this site to go back to (never another site's address), else the join page."""
    parts = urlsplit(target or "")
    if (not target or not target.startswith("/") or target.startswith("//") or parts.scheme
            or parts.netloc or "\\" in target):
        return url_for("join.register_form")
    return target
