"""The wording of every SMS, per language: the defaults (English, translated with Flask-Babel like
the pages: quiz/translations), the organizer's edited version of a kind in a language
(MessageTemplate rows), and the checks an edited version passes before it is saved.

A kind has one version per enabled language; a language nobody edited speaks its default. What a
participant gets is the version in `language_of(participant)` (quiz/notify.py queues each
language's players with their language's wording).
"""
import math
import string

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import select

from .errors import QuizError
from .extensions import db
from .i18n import default, enabled
from .models import MessageTemplate

# The default wording of every message. Translations keep every {placeholder} as it is, stay
# within what the English one costs in SMS parts where they can (tests/test_i18n_messages.py).
TEMPLATES = {
    "round_link": _l("{event}: round {number} \"{title}\" is open. Your personal link: {link}"),
    "result_through": _l("{event}: you're through round {number}, {name}! "
                         "Your next link comes by SMS. Results: {report}"),
    "result_out": _l("{event}: you're out after round {number}. Thanks for playing, {name}! "
                     "Your results: {report}"),
    # Instead of result_out when the shadow league is on and rounds remain: one SMS, no new link per
    # round.
    "result_out_shadow": _l("{event}: you're out of the prize after round {number}, {name}, "
                            "but you can still play the next rounds in the shadow league. "
                            "Your links and results: {report}"),
    "winner": _l("{event}: {name}, you won! Congratulations. Your results: {report}"),
    "final_result": _l("{event}: the final is over. Well played, {name}! "
                       "Your final results: {report}"),
    "reminder": _l("{event}: {text}"),
    "confirmation": _l("{event}: you're in, {name}! Your round links come by SMS. "
                       "Your results and QR code: {report}"),
}
PLACEHOLDERS = {
    "round_link": {"event", "number", "title", "name", "link", "report"},
    "result_through": {"event", "number", "title", "name", "report"},
    "result_out": {"event", "number", "title", "name", "report"},
    "result_out_shadow": {"event", "number", "title", "name", "report"},
    "winner": {"event", "number", "title", "name", "report"},
    "final_result": {"event", "number", "title", "name", "report"},
    "reminder": {"event", "text", "name"},
    "confirmation": {"event", "name", "report"},
}
SMS_MAX = 640  # four concatenated SMS; longer texts are refused when the template is saved

# GSM 03.38: the characters an SMS carries at 160 a part (153 when split); any other character
# makes the whole text UCS-2, at 70 a part (67 when split). The extension table's cost two.
GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNO"
                "PQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = set("^{}\\[~]|€\f")


class TemplateError(QuizError):
    """Wording the organizer typed that cannot be sent; the message says what to fix."""

    status = 422

    def __init__(self, message: str):
        super().__init__(message, code="bad_template")


class LanguageError(QuizError):
    """A language the event does not offer."""

    status = 404

    def __init__(self, language: str):
        super().__init__(f"The event doesn't offer the language '{language}': pick one of "
                         f"{', '.join(enabled())} (LANGUAGES).", code="unknown_language")


def check_language(language: str | None) -> str:
    """An enabled language (None: the event's default), or LanguageError."""
    if language is None or language == "":
        return default()
    if language not in enabled():
        raise LanguageError(str(language))
    return language


def default_template(kind: str, language: str) -> str:
    """Knockout's own wording of `kind` in `language`."""
    with force_locale(language):
        return str(TEMPLATES[kind])


def template_for(kind: str, language: str | None = None) -> str:
    """The wording of `kind` in `language` (the default language if None): the organizer's version
    if they edited that language's, else that language's default."""
    language = language or default()
    stored = db.session.get(MessageTemplate, (kind, language))
    return stored.body if stored else default_template(kind, language)


def edited(language: str) -> set[str]:
    """The kinds whose `language` version the organizer edited."""
    return set(db.session.scalars(select(MessageTemplate.kind)
                                  .where(MessageTemplate.language == language)))


def check_template(kind: str, body: str) -> str:
    """A template the organizer typed, or TemplateError saying what to fix."""
    body = body.strip()
    if not body:
        raise TemplateError("The message can't be empty.")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}
    except ValueError:
        raise TemplateError("Curly braces must pair up, like {link}. "
                            "Write {{ or }} for a literal brace.")
    unknown = fields - PLACEHOLDERS[kind]
    if unknown:
        raise TemplateError(f"Unknown placeholder {{{sorted(unknown)[0]}}}; this message can use: "
                            + ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS[kind])) + ".")
    if kind == "round_link" and "link" not in fields:
        raise TemplateError("The round message must contain {link}: it's how players get in.")
    if len(body) > SMS_MAX:
        raise TemplateError(f"Keep it under {SMS_MAX} characters (it has {len(body)}).")
    return body


def save_template(kind: str, body: str, language: str | None = None) -> None:
    """Store the organizer's wording of `kind` in `language` (checked first); the caller commits."""
    language = check_language(language)
    body = check_template(kind, body)
    stored = (db.session.get(MessageTemplate, (kind, language))
              or MessageTemplate(kind=kind, language=language))
    stored.body = body
    db.session.add(stored)


def reset_template(kind: str, language: str | None = None) -> None:
    """`language`'s version of `kind` back to its default wording; the caller commits."""
    stored = db.session.get(MessageTemplate, (kind, check_language(language)))
    if stored is not None:
        db.session.delete(stored)


def is_gsm(text: str) -> bool:
    """Only characters of the GSM alphabet (160 to an SMS)."""
    return set(text) <= GSM_BASIC | GSM_EXTENSION


def sms_parts(text: str) -> int:
    """How many SMS a text costs: 160 GSM characters in one, 153 a part when split; 70 and 67 once
    a character is not GSM (UCS-2, counted in UTF-16 units)."""
    if is_gsm(text):
        units, single, part = len(text) + sum(ch in GSM_EXTENSION for ch in text), 160, 153
    else:
        units, single, part = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)
