"""A player's unsubscribe link (/u/<token>, in every email): GET asks, POST records.

Mail scanners and link previews open every link in an email: a GET that unsubscribed would
unsubscribe players who never clicked. So the page only asks, and its button's POST records it.
"""
from flask import Blueprint, current_app, render_template

from .. import emails
from ..clock import utcnow
from ..extensions import limiter
from ..i18n import language_of, use_language
from .handling import write

bp = Blueprint("unsubscribe", __name__)


@bp.get("/u/<token>")
@limiter.limit("60 per minute")
def confirm(token):
    """'Stop emails from this event?' with one button (nothing changes yet)."""
    participant = emails.participant_for(token)
    use_language(language_of(participant))  # the email's language: the one it was written in
    return render_template("play/unsubscribe.html", token=token, done=False,
                           already=participant.email_opted_out_at is not None,
                           event=current_app.config["EVENT_NAME"])


@bp.post("/u/<token>")
@limiter.limit("60 per minute")
def unsubscribe(token):
    """Record the opt-out: no more emails (SMS with round links still come)."""
    def operation():
        participant = emails.participant_for(token)
        use_language(language_of(participant))
        emails.opt_out(participant, utcnow())
    write(operation)
    return render_template("play/unsubscribe.html", token=token, done=True, already=False,
                           event=current_app.config["EVENT_NAME"])
