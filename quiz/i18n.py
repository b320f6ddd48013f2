"""Languages: which one a page, an SMS or an email speaks (Flask-Babel).

A player's pages speak, in order: the language a page stored for this request (`use_language`: the
participant's own, on their round page and report), the `lang` cookie (the switch on the page), the
phone's Accept-Language among the event's LANGUAGES, else DEFAULT_LANGUAGE. What the worker sends a
participant is rendered in `language_of(participant)` with `flask_babel.force_locale`. The console
(/admin) stays English. The switch on a page (quiz/web/language.py) sets the cookie and, on a
participant's own pages, their stored language (`remember`).
"""
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, get_locale, gettext, refresh

from .config import ConfigError
from .errors import QuizError

# Every language Knockout ships a translation for, by code, named in itself (for the switch).
SUPPORTED = {"en": "English", "de": "Deutsch", "es": "Español"}
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
CONSOLE = "/admin"  # the console's pages speak English whatever the phone asks for
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

babel = Babel()


def init_app(app: Flask) -> None:
    """Check LANGUAGES and DEFAULT_LANGUAGE (refused at start with what to write) and bind Babel."""
    app.config["LANGUAGES"] = check_languages(app.config["LANGUAGES"],
                                              app.config["DEFAULT_LANGUAGE"])
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["DEFAULT_LANGUAGE"]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_language)
    app.before_request(_choose_afresh)
    app.jinja_env.globals.update(current_language=current_language, languages=enabled,
                                 language_name=SUPPORTED.get)


def check_languages(languages: str | list[str], default: str) -> list[str]:
    codes = languages if isinstance(languages, list) else \
        [code.strip().lower() for code in languages.split(",") if code.strip()]
    unknown = [code for code in codes if code not in SUPPORTED]
    if unknown or not codes:
        raise ConfigError(f"LANGUAGES={','.join(codes)!r}: Knockout speaks "
                          f"{', '.join(SUPPORTED)}; list some of those, comma-separated.")
    if default not in codes:
        raise ConfigError(f"DEFAULT_LANGUAGE={default!r} is not among LANGUAGES "
                          f"({', '.join(codes)}): add it there or choose one of those.")
    return codes


def _choose_afresh() -> None:
    """Each request chooses its own language: Babel keeps its choice in `g`, which requests share
    when an app context outlives them (the worker, the CLI, tests)."""
    g.pop("_flask_babel", None)
    g.pop("knockout_language", None)


def enabled() -> list[str]:
    return current_app.config["LANGUAGES"]


def default() -> str:
    return current_app.config["DEFAULT_LANGUAGE"]


def use_language(code: str | None) -> None:
    """This request speaks `code` (a participant's stored language), if the event offers it."""
    if code in enabled():
        g.knockout_language = code
        refresh()  # a message worded earlier in this request chose a language already


def language_of(participant) -> str:
    """The language to write to a participant in: theirs while the event offers it, else the
    event's default."""
    code = getattr(participant, "language", None)
    return code if code in enabled() else default()


def select_language() -> str:
    if not has_request_context():
        return default()
    chosen = g.get("knockout_language")
    if chosen:
        return chosen
    if request.path.startswith(CONSOLE):
        return "en"
    return request_language()


def request_language(asked=None) -> str:
    """What this phone asks for: the switch's cookie, else its Accept-Language, else the default
    (`asked`: a request other than Flask's current one)."""
    asked = request if asked is None else asked
    cookie = asked.cookies.get(COOKIE)
    if cookie in enabled():
        return cookie
    return asked.accept_languages.best_match(enabled()) or default()


def page_language(code: str | None, asked) -> str:
    """The language a participant's page speaks, read before Flask (`asked`: the request): theirs
    while the event offers it (`use_language`), else what the phone asks for."""
    return code if code in enabled() else request_language(asked)


def offered(code) -> str:
    """`code` if the event offers it, else a 400 that names the languages it does."""
    if isinstance(code, str) and code in enabled():
        return code
    choices = ", ".join(f"{c} ({SUPPORTED[c]})" for c in enabled())
    message = gettext("%(code)s is not a language this event offers: choose one of %(choices)s.",
                      code=repr(code)[:24] if code is not None else gettext("nothing"),
                      choices=choices)
    raise QuizError(message, code="bad_language", status=400, fields={"language": message})


def remember(participant, code: str) -> None:
    """The participant's pages, SMS and emails speak `code` from now on (the caller commits)."""
    participant.language = code
    use_language(code)


def current_language() -> str:
    """The language this page is rendered in (`<html lang>`)."""
    locale = get_locale()
    return locale.language if locale else default()
