"""A test SMS: any message's current wording, filled in with sample values, to any number, through
the configured SMS backend, before the event texts 2,000 people with it."""
import secrets

from flask import current_app

from . import notify
from .branding import current_look
from .errors import ValidationError
from .extensions import db
from .models import Message, MessageStatus
from .registration import PhoneError, clean_phone

SAMPLE_VALUES = {"number": 1, "title": "Sample round", "name": "Ada Lovelace",
                 "text": "This is a sample reminder."}


def sample_body(kind: str) -> str:
    """The organizer's wording of `kind` with sample values (links to nowhere: it is a test)."""
    base = current_app.config["PUBLIC_BASE_URL"]
    values = {"event": current_look().name, **SAMPLE_VALUES,
              "link": f"{base}/f/sample", "report": f"{base}/r/sample"}
    return notify.template_for(kind).format(**values)


def send_sample_sms(kind: str, phone: str) -> Message:
    """Queue a test SMS of `kind` to `phone` (kind "test" in the outbox) and owe its send job."""
    errors = {}
    if kind not in notify.TEMPLATES:
        errors["kind"] = "Pick one of the message kinds listed."
    try:
        to = clean_phone(str(phone or "").strip(), current_app.config["PHONE_DEFAULT_REGION"])
    except PhoneError as error:
        errors["phone"] = error.message
    if errors:
        raise ValidationError(errors, next(iter(errors.values())))
    message = Message(kind="test", key=f"test:{kind}:{secrets.token_hex(8)}", to=to,
                      body=sample_body(kind), status=MessageStatus.QUEUED, attempts=0)
    db.session.add(message)
    db.session.flush()
    notify.hand_over([message.id], f"test SMS ({kind})")
    return message
