"""What the console's Messages (SMS) and Emails pages share: one language's version of one kind of
message back to its default wording."""
from flask import flash, redirect, url_for
from flask_login import current_user

from ..audit import record
from ..i18n import SUPPORTED
from .handling import write


def reset_to_default(reset, what: str, kind: str, language: str, endpoint: str, anchor: str):
    """`reset(kind, language)`, audited as "reset <what> wording"; back to the page at the kind."""
    write(lambda: (reset(kind, language),
                   record(current_user.username, f"reset {what} wording", None,
                          f"{kind} ({language})")))
    flash(f"Back to the default wording in {SUPPORTED[language]}.", "ok")
    return redirect(url_for(endpoint, language=language, _anchor=f"{anchor}-{kind}"), 303)
