"""Organizer accounts: checking a login, and finding the organizer a session cookie names."""
import hmac
from functools import cache

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import AdminUser


@cache
def dummy_hash(method: str) -> str:
    """A hash made the way real ones are (PASSWORD_HASH_METHOD), checked when no such user exists:
    a failed login takes as long whether or not the username is known."""
    return generate_password_hash("no such organizer", method=method)


def authenticate(username: str, password: str) -> AdminUser | None:
    """The organizer with this username and password, or None; always runs one password check."""
    user = db.session.scalar(select(AdminUser).where(AdminUser.username == username))
    if user is None:
        check_password_hash(dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    return user if user.check_password(password) else None


def load_organizer(session_id: str) -> AdminUser | None:
    """The organizer a session or remember cookie names ("id:token", AdminUser.get_id), if that
    token is still theirs (logout and a new password replace it)."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(AdminUser, int(user_id))
    if user is None or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user
