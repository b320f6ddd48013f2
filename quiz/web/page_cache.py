"""The round pages the herd meets, from a per-process copy: the Start page ("Ready?", every phone
after "Start round": its link from the SMS, or its waiting page's fragment), and the two waiting
pages ("Not started yet" before a round opens; "Answers in ✔" after the submit's 303 while the round
is open, and what a waiting phone fetches when the shared status changes). Each is the same for
every player of a round but for a few values.

The first page of a kind is rendered as always, then kept with the player's own values marked:
their link's code, its token (the Start form's, the language switch's and the help form's on a link
page: quiz/web/start_path.py), report code and (the whole page) their name; a page that asked for
the session's CSRF token (a repeated submit's, quiz/web/repeat_page.py, when rendered with one)
keeps it marked too. The next player's page is that copy with their values put in: the same bytes
as a render (tests/test_page_copy.py, tests/test_page_fast.py compare them), and the same session
(the CSRF token and Flask-Login's look are asked for only when the render asked for them). A copy is
kept per template, language, look, page state, round (its state, title, clock, question count,
photos), shadow-league note and, on a waiting page, the shared status it embeds (its versions and
cadence): `page_key`, made from the view's context or, before Flask, from the same values read by
`copy_before_flask` (GET /f/<code>, quiz/web/page_path.py: a page whose session holds nothing of
its own is answered without Flask). A page with anything more (a flash message, a staff login, a
help request, an error) is rendered as always. `copied_page` keeps the "already in" page of a
repeated submit the same way (quiz/web/repeat_page.py).
"""
import random

from flask import current_app, g, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import escape

from werkzeug.wrappers import Request

from .. import answers, i18n, shadow, waiting
from ..branding import current_look
from ..clock import utcnow
from ..extensions import login_manager
from ..links import RoundPage, round_facts
from ..models import FormLink
from ..stored_forms import form_token

EXTENSION = "knockout.ready_pages"
LIMIT = 64  # copies a process keeps (a few a round and language); past that it starts afresh
PAGE, FRAGMENT = "play/round.html", "play/_state.html"
CODE, REPORT, TOKEN, NAME = "\x00code\x00", "\x00report\x00", "\x00token\x00", "\x00name\x00"
START = "\x00start\x00"  # the Start form's link token (quiz/web/start_path.py)


def waiting_context(link: FormLink, state: str) -> dict:
    """What a waiting page polls with: the shared status it was rendered at (quiz/waiting.py), and
    for "check in first" (this player's own wait) its delay, jittered."""
    status = waiting.current_status()
    return {"status": status, "waits": waiting.waits(state, link.challenge.is_closed),
            "poll_delay": round(status.poll_seconds * random.uniform(1, 1.5), 1)}


def closing_in(context: dict) -> int | None:
    """The seconds the Start page shows until the round closes, when it shows them."""
    challenge, now = context["challenge"], context["now"]
    if not (challenge.time_limit_seconds and challenge.closes_at):
        return None
    left = (challenge.closes_at - now).total_seconds()
    return max(int(left), 0) if left < challenge.time_limit_seconds + challenge.extra_seconds \
        else None


def plain_session() -> bool:
    """Nothing of this session's own on a page but its CSRF token: no message, no staff login."""
    return not ("_flashes" in session or "_user_id" in session
                or current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
                in request.cookies)


def shared(context: dict) -> bool:
    """A page the same for every player of its round but for their own values: the Start page and
    the waiting ones. Not "check in first" (its poll delay is jittered per render), nor a closed
    round's result (the player's own)."""
    return context["state"] == answers.READY or context["waits"]


def shared_page(template: str, link: FormLink, context: dict) -> str:
    """A `shared` page (`template`: whole or fragment) for `link`, from the copy if there is one."""
    if not plain_session():
        return render_template(template, **context)  # a message, or staff: a page of its own
    participant = link.participant
    return copied_page(page_key(template, link, context, request.script_root),
                       (link.code, participant.report_code,
                        participant.name if template == PAGE else None),
                       lambda: (render_template(template, **context), True))


def page_key(template: str, link: FormLink, context: dict, script_root: str) -> tuple:
    """Everything a `shared` page shows that is not the player's own (but the language and look,
    which `copied_page` adds): the view's context, or the fast path's (quiz/web/page_path.py: the
    same values, read before Flask). A waiting page embeds the status it was rendered with (its
    versions and cadence)."""
    challenge, state, status = link.challenge, context["state"], context["status"]
    return (template, state, challenge.id, challenge.status, challenge.number, challenge.title,
            challenge.time_limit_seconds, challenge.extra_seconds,
            closing_in(context) if state == answers.READY else None, context["facts"],
            context["shadow"], context["shadow_next"], context["waits"],
            (status.version, status.rounds_version, status.poll_seconds) if context["waits"]
            else None, script_root)


def full_key(key: tuple, language: str) -> tuple:
    """A copy's key: the page's (`page_key`, or a repeated submit's), its language and the look."""
    return (language, repr(current_look()), *key)


def player_values(code: str, report: str, name: str | None, token: bool) -> list | None:
    """The marks of a page and this player's values for them, in the order they are put in (the
    session's CSRF token when the page asked for it); None when one can't be a mark's value (an
    empty name, say: that page is rendered)."""
    # the link's token before its code (the page holds each once per form); absent from a page
    # without a link-token form, where putting it in changes nothing
    values = [(TOKEN, generate_csrf())] if token else []
    values += [(START, form_token(code)), (CODE, code), (REPORT, report)]
    if name is not None:
        values.append((NAME, str(escape(name))))
    return values if all(value and "\x00" not in value for _, value in values) else None


def fill(copy: str, values: list) -> str:
    """A copy with a player's values put in."""
    for mark, value in values:  # the name last: nothing put in before it holds a mark
        copy = copy.replace(mark, value)
    return copy


def copied_page(key: tuple, player: tuple[str, str, str | None], render) -> str:
    """The page `key` names (with the language and look) for a player (their link's code, report
    code, and name when the page shows it, once): the copy with their values put in, else
    `render()`'s (page, whether it may be kept), kept marked."""
    # the language as chosen for this request (what the render's locale is made from: making the
    # locale itself costs more than the rest of a copied page)
    key = full_key(key, i18n.select_language())
    copies = current_app.extensions.setdefault(EXTENSION, {})
    copy = copies.get(key)
    if copy is None:
        page, keep = render()
        asks = _asked()
    else:
        page, asks = copy
    # What the render asked for, in its order: Flask-Login's look at the session (it marks a
    # session it doesn't know as not fresh), then the session's CSRF token (made if it has none):
    # the same session, and cookie, as a render leaves. (Every render looks at the login:
    # Flask-Login's context processor; a link's page asks for no CSRF token.)
    user, token = asks
    if user:
        current_user.is_authenticated  # noqa: B018
    values = player_values(*player, token)
    if copy is None:
        if keep and values and (marked := _marked(page, values)):
            if len(copies) >= LIMIT:
                copies.clear()
            copies[key] = (marked, asks)
        return page
    if values is None:
        return render()[0]
    return fill(page, values)


def round_values(link: FormLink, state: str, last: bool | None) -> dict:
    """What a round page says of its round besides its state: the round's facts and the shadow
    league's notes (the view's context, and the same values before Flask)."""
    participant, challenge = link.participant, link.challenge
    return {"facts": round_facts(challenge) if state in (answers.READY, answers.SUBMITTED)
            else None,
            "shadow": shadow.in_shadow_league(participant, challenge),
            "shadow_next": (state in (answers.SUBMITTED, answers.CLOSED)
                            and shadow.invited_after(participant, challenge, last))}


def copy_before_flask(page: RoundPage, asked: Request, fragment: bool) -> str | None:
    """`page` (whole, or its htmx `fragment`) from this process's copy, before Flask
    (quiz/web/page_path.py): the key made as the view makes it (`page_key`), and only when Flask's
    answer would be the same: no copy yet, a page with more on it (a help request, a shadow-league
    note), a page that asks for the session's CSRF token, or a session with anything of its own
    (`session_plain`) → None, and Flask answers (and keeps the copy)."""
    link = page.link
    participant, challenge, now = link.participant, link.challenge, utcnow()
    state = answers.page_state(link, now, page.submitted)
    waits = waiting.waits(state, challenge.is_closed)
    if (page.asked_for_help or not (state == answers.READY or waits)
            or shadow.in_shadow_league(participant, challenge)):
        return None
    context = {"state": state, "challenge": challenge, "now": now, "waits": waits,
               "status": waiting.current_status() if waits else None,
               **round_values(link, state, page.last)}
    template = FRAGMENT if fragment else PAGE
    key = full_key(page_key(template, link, context, asked.script_root),
                   i18n.page_language(participant.language, asked))
    copy = current_app.extensions.get(EXTENSION, {}).get(key)
    if copy is None or copy[1][1] or not session_plain(asked, copy[1][0]):
        return None  # (a page asking for the CSRF token: not one of a link's pages)
    values = player_values(link.code, participant.report_code,
                           participant.name if template == PAGE else None, False)
    return None if values is None else fill(copy[0], values)


def session_plain(asked: Request, user: bool) -> bool:
    """Flask's session for this request holds nothing a page shows (`plain_session`), and neither
    Flask-Login's look at it (`user`: the page asked whether staff is logged in) nor saving it
    changes it: then Flask sets no cookie, and its page is the copy. The cookie is read with the
    app's own serializer; a cookie it can't read is handed on."""
    app = current_app
    config, cookies = app.config, asked.cookies
    if (config.get("REMEMBER_COOKIE_NAME", "remember_token") in cookies
            or "Authorization" in asked.headers):
        return False
    cookie = cookies.get(app.session_interface.get_cookie_name(app))
    if not cookie:
        return True
    try:
        data = app.session_interface.get_signing_serializer(app).loads(
            cookie, max_age=int(app.permanent_session_lifetime.total_seconds()))
    except Exception:  # garbled, expired, another key's: Flask's own answer
        return False
    if not isinstance(data, dict) or data.keys() & {"_flashes", "_user_id", "_permanent",
                                                    "_remember"}:
        return False
    # Flask-Login marks a session it doesn't know (made on another address or browser) as not
    # fresh, once (SESSION_PROTECTION "basic"; "strong" clears it)
    mode = config.get("SESSION_PROTECTION", login_manager.session_protection)
    return not (user and data and mode in ("basic", "strong")
                and (mode == "strong" or data.get("_fresh") is not False))


def _asked() -> tuple[bool, bool]:
    """Whether this request's render looked at the logged-in user, and asked for the CSRF token."""
    return ("_login_user" in g,
            current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g)


def _marked(page: str, values: list[tuple[str, str]]) -> str | None:
    """`page` with each value replaced by its mark; None when the name isn't found exactly once (a
    name that is also a word of the page: not kept, the next page is rendered and kept if it can
    be)."""
    for mark, value in values:
        if mark == NAME and page.count(value) != 1:
            return None
        page = page.replace(value, mark)
    return page
