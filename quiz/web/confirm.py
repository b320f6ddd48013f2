"""The console's "Are you sure?" that no click skips: htmx's dialog asks (hx-confirm), and a
click that came before htmx ran gets a page asking the same (quiz/web/asks.py) instead of the
action (`@confirm_first`). "Reset to default" (an SMS's or an email's wording: what the organizer
wrote goes) sits in a plain form, so it always asks with the page."""
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, render_template, request, url_for

from .. import console, email_templates, photos, rounds, sms_templates
from ..errors import QuizError
from ..extensions import db
from ..i18n import SUPPORTED
from ..models import AdminUser, Participant, Reminder
from . import asks

bp = Blueprint("confirm", __name__)

# The field the confirmation page's Yes sends along: the organizer answered the question there.
CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Question:
    """What the confirmation page asks, its Yes button, where Cancel goes; `fields`: what Yes posts
    again when not the request's own form (an uploaded file's text), with `note` saying so."""
    text: str
    yes: str
    back: str
    fields: list[tuple[str, str]] | None = None
    note: str = ""


# --- each action's question with its numbers as they are at the moment of the post ---------------

def to_start_round(number: int) -> Question:
    """Start round: how many players its links go to now."""
    rounds.get_challenge(number)  # no such round: its 404, not a question about it
    return Question(asks.start_round(number, console.in_game_count()), f"Yes, start round {number}",
                    url_for("admin.dashboard"))


def to_end_round(number: int) -> Question:
    """End round: who hasn't pressed Start or had their link yet, photos not reviewed: now."""
    challenge = rounds.get_challenge(number)
    unstarted, unsent = console.not_started(challenge)
    return Question(asks.end_round(number, unstarted, unsent,
                                  photos.unreviewed().get(challenge.id, 0)),
                    f"Yes, end round {number}", url_for("admin.dashboard"))


def to_reopen_round(number: int) -> Question:
    """Reopen round (a round that isn't there: its 404)."""
    rounds.get_challenge(number)
    return Question(asks.reopen_round(number), f"Yes, reopen round {number}",
                    url_for("admin.dashboard"))


def _participants_page() -> str:
    return url_for("admin.participants", q=request.form.get("q") or None)


def to_disqualify(participant_id: int) -> Question:
    """Disqualify a player; Cancel goes back to the search they came from."""
    participant = db.get_or_404(Participant, participant_id)
    return Question(asks.disqualify(participant.name), f"Yes, disqualify {participant.name}",
                    _participants_page())


def to_reinstate(participant_id: int) -> Question:
    """Bring a player back; Cancel goes back to the search they came from."""
    participant = db.get_or_404(Participant, participant_id)
    return Question(asks.reinstate(participant.name), f"Yes, bring {participant.name} back",
                    _participants_page())


def to_remove_account(user_id: int) -> Question:
    """Remove a staff account."""
    user = db.get_or_404(AdminUser, user_id)
    return Question(asks.remove_account(user.username), f"Yes, remove {user.username}",
                    url_for("staff.index"))


def bank_text() -> str:
    """The question bank a load posts: the uploaded file's text, else the pasted text."""
    upload = request.files.get("file")
    return (upload.read().decode("utf-8", "replace") if upload and upload.filename
            else request.form.get("yaml", ""))


def to_load_bank() -> Question:
    """Load a question bank: an uploaded file comes along as its text, a pasted one as it is."""
    upload = request.files.get("file")
    note = (f"The text of {upload.filename} comes along when you say yes."
            if upload and upload.filename else "")
    return Question(asks.load_bank(), "Yes, load it", url_for("admin.dashboard"),
                    fields=[("yaml", bank_text())], note=note)


def to_cancel_reminder(reminder_id: int) -> Question:
    """Cancel a scheduled reminder."""
    db.get_or_404(Reminder, reminder_id)
    return Question(asks.cancel_reminder(), "Yes, cancel it", url_for("messages.settings"))


def to_delete_question(number: int, index: int) -> Question:
    """Delete a draft round's question; Cancel goes back to its round in the editor."""
    return Question(asks.delete_question(number, index), f"Yes, delete question {index}",
                    url_for("questions.editor", _anchor=f"round-{number}"))


def _to_reset(what: str, kinds, check_language, kind: str, endpoint: str, anchor: str) -> Question:
    """Put one language's wording of one kind of message back to its default: the organizer's
    edits go. Cancel goes back to that message on its page."""
    if kind not in kinds:
        raise QuizError(f"There is no {what} kind '{kind}'.", code="unknown_kind", status=404)
    language = check_language(request.form.get("language") or None)
    return Question(asks.reset_wording(what, kind, SUPPORTED[language]), "Yes, reset it",
                    url_for(endpoint, language=language, _anchor=f"{anchor}-{kind}"))


def to_reset_sms(kind: str) -> Question:
    return _to_reset("SMS", sms_templates.TEMPLATES, sms_templates.check_language, kind,
                     "messages.settings", "sms")


def to_reset_email(kind: str) -> Question:
    return _to_reset("email", email_templates.DEFAULTS, email_templates.check_language, kind,
                     "email_admin.settings", "email")


# --- the guard --------------------------------------------------------------------------------

def confirm_first(question):
    """A POST that neither came through htmx (whose hx-confirm asked already) nor carries the
    confirmation page's `confirmed=yes` does nothing: it gets that page, asking `question(**the
    route's arguments)`. Goes under `@requires`, so a role that may not act gets its 403 first."""
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if request.headers.get("HX-Request") == "true" or request.form.get(CONFIRMED) == "yes":
                return view(*args, **kwargs)
            return confirmation_page(question, kwargs)
        guarded.confirmed_by = question
        return guarded
    return decorate


def confirmation_page(question, arguments: dict):
    """The question as a page (works without JavaScript): Yes posts the same form again with
    `confirmed=yes`, Cancel goes back; an action that can't be asked about says why."""
    try:
        asked = question(**arguments)
    except QuizError as error:
        return render_template("admin/confirm.html", asked=None, error=error.message), error.status
    own = [(name, value) for name, value in request.form.items(multi=True)
           if name not in ("csrf_token", CONFIRMED)]
    # A file Yes can't carry is asked for again, never dropped without a word.
    files = ([] if asked.fields is not None else
             [(name, upload.filename) for name, upload in request.files.items(multi=True)
              if upload.filename])
    return render_template("admin/confirm.html", asked=asked, error=None,
                           fields=asked.fields if asked.fields is not None else own, files=files,
                           action=url_for(request.endpoint, **arguments), confirmed=CONFIRMED)


@bp.app_context_processor
def confirm_questions() -> dict:
    """`ask` in every template: `hx-confirm="{{ ask.end_round(...) }}"`."""
    return {"ask": asks}
