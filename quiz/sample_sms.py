"""A test SMS: any message's current wording, filled in with sample values, to any number, through
the configured SMS backend, before the event texts 2,000 people with it."""
import secrets

from flask import current_app
from flask_babel import force_locale, lazy_gettext as _l

from . import notify
from .branding import current_look
from .errors import QuizError, ValidationError
from .extensions import db
from .models import Message, MessageStatus
from .registration import PhoneError, clean_phone
from .sms_templates import check_language, template_for

SAMPLE_CODE = "sample-link-to-nowhere"  # as long as a real link's code: the parts counted are real
SAMPLE_VALUES = {"number": 1, "title": _l("Sample round"), "name": "Ada Lovelace",
                 "text": _l("This is a sample reminder.")}


def sample_body(kind: str, language: str | None = None, body: str | None = None) -> str:
    """The organizer's wording of `kind` in `language` (or `body`, a wording not saved yet) with
    sample values (links to nowhere: it is a test)."""
    base = current_app.config["PUBLIC_BASE_URL"]
    language = check_language(language)
    with force_locale(language):
        values = {"event": current_look().name, **{k: str(v) for k, v in SAMPLE_VALUES.items()},
                  "link": f"{base}/f/{SAMPLE_CODE}", "report": f"{base}/r/{SAMPLE_CODE}"}
    return (body if body is not None else template_for(kind, language)).format(**values)


def send_sample_sms(kind: str, phone: str, language: str | None = None) -> Message:
    """Queue a test SMS of `kind` in `language` to `phone` (kind "test" in the outbox) and owe its
    send job."""
    errors = {}
    if kind not in notify.TEMPLATES:
        errors["kind"] = "Pick one of the message kinds listed."
    try:
        language = check_language(language)
    except QuizError as error:
        errors["language"] = error.message
    try:
        to = clean_phone(str(phone or "").strip(), current_app.config["PHONE_DEFAULT_REGION"])
    except PhoneError as error:
        errors["phone"] = error.message
    if errors:
        raise ValidationError(errors, next(iter(errors.values())))
    message = Message(kind="test", key=f"test:{kind}:{secrets.token_hex(8)}", to=to,
                      body=sample_body(kind, language), status=MessageStatus.QUEUED, attempts=0)
    db.session.add(message)
    db.session.flush()
    notify.hand_over([message.id], f"test SMS ({kind}, {language})")
    return message
