"""The round pages the herd meets, from a per-process copy: the Start page ("Ready?", every phone
after "Start round": its link from the SMS, or its waiting page's fragment), and the two waiting
pages ("Not started yet" before a round opens; "Answers in ✔" after the submit's 303 while the round
is open, and what a waiting phone fetches when the shared status changes). Each is the same for
every player of a round but for a few values.

They hold a session CSRF token (the help form, the language switch), so they stay in Flask; what
this saves is the render. The first page of a kind is rendered as always, then kept with the
player's own values marked: their link's code, its token (the Start form's,
quiz/web/start_path.py), report code, CSRF token and (the whole page) their name. The next player's
page is that copy with their values put in: the same bytes as a render (tests/test_page_path.py
compares them), and the same session (the CSRF token and Flask-Login's look are asked for only when
the render asked for them). A copy is kept per template, language, look, page state, round (its
state, title, clock, question count, photos), shadow-league note and, on a waiting page, the shared
status it embeds (its versions and cadence); a page with anything more (a flash message, a staff
login, a help request, an error) is rendered as always. `copied_page` keeps the "already in" page of
a repeated submit the same way (quiz/web/repeat_page.py).
"""
import random

from flask import current_app, g, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import escape

from .. import answers, i18n, waiting
from ..branding import current_look
from ..models import FormLink
from ..stored_forms import form_token

EXTENSION = "knockout.ready_pages"
LIMIT = 64  # copies a process keeps (a few a round and language); past that it starts afresh
PAGE = "play/round.html"
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
    challenge, state, status = link.challenge, context["state"], context["status"]
    # Everything the page shows that is not the player's own: the status it was rendered with (a
    # waiting page embeds its versions and cadence; the key is made from the context rendered).
    key = (template, state, challenge.id, challenge.status, challenge.number, challenge.title,
           challenge.time_limit_seconds, challenge.extra_seconds,
           closing_in(context) if state == answers.READY else None, context["facts"],
           context["shadow"], context["shadow_next"], context["waits"],
           (status.version, status.rounds_version, status.poll_seconds) if context["waits"]
           else None, request.script_root)
    participant = link.participant
    return copied_page(key, (link.code, participant.report_code,
                             participant.name if template == PAGE else None),
                       lambda: (render_template(template, **context), True))


def copied_page(key: tuple, player: tuple[str, str, str | None], render) -> str:
    """The page `key` names (with the language and look) for a player (their link's code, report
    code, and name when the page shows it, once): the copy with their values put in, else
    `render()`'s (page, whether it may be kept), kept marked."""
    # the language as chosen for this request (what the render's locale is made from: making the
    # locale itself costs more than the rest of a copied page)
    key = (i18n.select_language(), repr(current_look()), *key)
    copies = current_app.extensions.setdefault(EXTENSION, {})
    copy = copies.get(key)
    if copy is None:
        page, keep = render()
        asks = _asked()
    else:
        page, asks = copy
    # What the render asked for, in its order: Flask-Login's look at the session (it marks a
    # session it doesn't know as not fresh), then the session's CSRF token (made if it has none):
    # the same session, and cookie, as a render leaves. A fragment without a form asks for neither.
    user, token = asks
    if user:
        current_user.is_authenticated  # noqa: B018
    code, report, name = player
    # the link's token before its code (the page holds each once per form); absent from a page
    # without a Start form, where putting it in changes nothing
    values = [(TOKEN, generate_csrf())] if token else []
    values += [(START, form_token(code)), (CODE, code), (REPORT, report)]
    if name is not None:
        values.append((NAME, str(escape(name))))
    plain = all(value and "\x00" not in value for _, value in values)  # not an empty name, say
    if copy is None:
        if keep and plain and (marked := _marked(page, values)):
            if len(copies) >= LIMIT:
                copies.clear()
            copies[key] = (marked, asks)
        return page
    if not plain:
        return render()[0]
    for mark, value in values:  # the name last: nothing put in before it holds a mark
        page = page.replace(mark, value)
    return page


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
