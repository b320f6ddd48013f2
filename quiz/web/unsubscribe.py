"""A player's unsubscribe link (/u/<token>, in every email): GET asks, POST records.

Mail scanners and link previews open every link in an email: a GET that unsubscribed would
unsubscribe players who never clicked. So the page only asks, and its button's POST records it.
"""
from flask import Blueprint, current_app, render_template

from .. import emails, i18n
from ..clock import utcnow
from ..extensions import limiter
from .handling import write

bp = Blueprint("unsubscribe", __name__)


@bp.get("/u/<token>")
@limiter.limit("60 per minute")
def confirm(token):
    """'Stop emails from this event?' with one button (nothing changes yet)."""
    participant = emails.participant_for(token)
    i18n.use_language(participant.language)  # the page speaks the language of their emails
    return render_template("play/unsubscribe.html", token=token, done=False,
                           already=participant.email_opted_out_at is not None,
                           event=current_app.config["EVENT_NAME"])


@bp.post("/u/<token>")
@limiter.limit("60 per minute")
def unsubscribe(token):
    """Record the opt-out: no more emails (SMS with round links still come)."""
    participant = emails.participant_for(token)
    i18n.use_language(participant.language)
    write(lambda: emails.opt_out(participant, utcnow()))
    return render_template("play/unsubscribe.html", token=token, done=True, already=False,
                           event=current_app.config["EVENT_NAME"])
