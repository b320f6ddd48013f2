"""Joining the game: validating what people type, and creating the participant."""
import unicodedata

from flask import current_app
from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import exists, select

from . import emails
from .errors import QuizError, ValidationError
from .extensions import db
from .i18n import current_language
from .join_store import Registered, store
from .models import Challenge

NAME_MAX = 80
COMPANY_MAX = 100
EMAIL_MAX = 254
PHONE_MAX = 32


YES = (True, "true", "on", "yes", "1", 1)  # a ticked box (form) or true (JSON)
TEXT_FIELDS = ("name", "email", "phone", "company")

# Bidi overrides would let a name reverse or garble the text beside it on the projector.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Bidi marks (left-to-right, right-to-left, Arabic letter mark) come from keyboards, not mischief:
# dropped, so they can't reorder the text beside a name either.
BIDI_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")
# Letters that show as nothing though they aren't format characters (Unicode's
# Default_Ignorable_Code_Point beside category Cf): Hangul fillers, the combining grapheme joiner,
# variation selectors; and the blank Braille pattern.
BLANK = set("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800"
            + "".join(map(chr, range(0xFE00, 0xFE10))) + "".join(map(chr, range(0xE0100, 0xE01F0))))


def _unprintable(ch: str) -> bool:
    # U+FFFD is what undecodable (non-UTF-8) bytes turn into: garbled input, not a name.
    return (unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch in BIDI_CONTROLS
            or ch == "\ufffd")


def _invisible(ch: str) -> bool:
    """Shows as nothing: a format character (zero-width space, word joiner, BOM, …) or a blank."""
    return ch.isspace() or unicodedata.category(ch) == "Cf" or ch in BLANK


def _clean_text(value, field: str, maximum: int, required: bool, errors: dict) -> str:
    """Trimmed single-line text without control characters, and not made of invisible ones."""
    text = " ".join(str(value or "").translate(BIDI_MARKS).split())
    if any(_unprintable(ch) for ch in text):
        errors[field] = gettext("Please use letters, digits and punctuation only.")
    elif required and all(_invisible(ch) for ch in text):
        errors[field] = gettext("Please fill this in.")
    elif len(text) > maximum:
        errors[field] = gettext("Please keep this under %(maximum)s characters (it has "
                                "%(length)s).", maximum=maximum, length=len(text))
    return text


class PhoneError(QuizError):
    """A phone number that cannot take our SMS; the message says what to fix."""

    status = 422

    def __init__(self, message: str):
        super().__init__(message, code="bad_phone")


def clean_phone(raw: str, region: str) -> str:
    """The phone number in E.164, or PhoneError with what to fix."""
    # phonenumbers (~0.07 s to import, its metadata) and email-validator on the first join a process
    # serves, not at its start: a restarted process answers sooner.
    import phonenumbers
    if not raw:
        raise PhoneError(gettext("Please enter your mobile number: your round links come by "
                                 "SMS."))
    if len(raw) > PHONE_MAX:
        raise PhoneError(gettext("That is too long for a phone number."))
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise PhoneError(gettext("That doesn't look like a phone number. Include the country "
                                 "code, e.g. +1 415 555 0100."))
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(gettext("That phone number isn't valid. Include the country code, e.g. "
                                 "+44 7700 900123."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _clean_email(value, errors: dict) -> str:
    """The email address, normalized (lower case), checked for its format only: no DNS lookup."""
    from email_validator import EmailNotValidError, validate_email
    email = str(value or "").strip()
    try:
        if len(email) > EMAIL_MAX:
            raise EmailNotValidError(gettext("That email address is too long."))
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        errors["email"] = (gettext("Please enter your email address.") if not email
                           else email_problem(exc))
        return email


# email-validator's commonest reasons, which it words in English: translated by their own words.
EMAIL_REASONS = (_l("An email address must have an @-sign."),
                 _l("There must be something after the @-sign."),
                 _l("There must be something before the @-sign."),
                 _l("The part after the @-sign is not valid. It should have a period."),
                 _l("An email address cannot have two periods in a row."))


def email_problem(exc: Exception) -> str:
    """What is wrong with an email address, in the page's language: one of EMAIL_REASONS, else a
    general hint (in English, the library's own words)."""
    reason = str(exc)
    translated = gettext(reason)
    if translated != reason or current_language() == "en":
        return translated
    return gettext("That email address isn't valid. Check it for typos.")


def _clean_phone(value, errors: dict) -> str:
    """The phone number in E.164 (read in PHONE_DEFAULT_REGION without a +country)."""
    raw = str(value or "").strip()
    try:
        return clean_phone(raw, current_app.config["PHONE_DEFAULT_REGION"])
    except PhoneError as exc:
        errors["phone"] = exc.message
        return raw


def phone_readback(e164: str) -> str:
    """A valid number as a person reads it, with its country: "+1 415-555-0199 (US)"."""
    import phonenumbers
    number = phonenumbers.parse(e164)
    return (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            + f" ({phonenumbers.region_code_for_country_code(number.country_code)})")


# Each text field's check, as the submit makes it and as the form checks a field when it is left.
FIELD_CHECKS = {
    "name": lambda value, errors: _clean_text(value, "name", NAME_MAX, True, errors),
    "email": _clean_email,
    "phone": _clean_phone,
    "company": lambda value, errors: _clean_text(value, "company", COMPANY_MAX, False, errors),
}


def check_field(field: str, value) -> tuple[str, str | None]:
    """One join-form field's clean value and what to fix (None: fine), by the submit's own check.

    Its format only: never whether an email or phone is already registered (no database read).
    """
    errors: dict[str, str] = {}
    clean = FIELD_CHECKS[field](value, errors)
    return clean, errors.get(field)


def validate_registration(data) -> dict:
    """Check a join form (HTML or JSON); returns clean values or raises ValidationError."""
    # JSON may send an object, a list, a number or true where text belongs: never stored as its
    # Python spelling.
    wrong = {field: f"Please send {field} as text (a JSON string)." for field in TEXT_FIELDS
             if data.get(field) is not None and not isinstance(data.get(field), str)}
    if wrong:
        raise ValidationError(wrong, "Please send " + ", ".join(wrong) + " as text.")
    errors: dict[str, str] = {}
    clean = {field: check(data.get(field), errors) for field, check in FIELD_CHECKS.items()}
    clean["consent"] = data.get("consent") in YES
    clean["sponsor_consent"] = data.get("sponsor_consent") in YES
    if not clean["consent"]:
        # The same on the page and through the API: no links by SMS, no name on the leaderboard,
        # without it.
        errors["consent"] = gettext("Needed: your round links come by SMS.")
    if errors:
        raise ValidationError(errors)
    return clean


def registration_open() -> bool:
    """Joining is possible until the first round has closed."""
    return not db.session.scalar(select(exists().where(Challenge.is_closed)))


def register_participant(clean: dict) -> Registered:
    """Create a participant and a link for every round; the caller commits. Under gevent it goes
    through the process's group commit (quiz/join_store.py): committed once this returns."""
    return store(clean)
