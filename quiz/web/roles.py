"""Who may use each console route: `@requires(Role.X)` on every one of them (tests/test_roles.py
holds the matrix), and `can()` for templates to hide the buttons a role cannot use."""
from functools import wraps

from flask import Blueprint, g, render_template
from flask_login import current_user

from ..extensions import login_manager
from ..models import Role
from .handling import wants_fragment

bp = Blueprint("roles", __name__)


def requires(role: Role):
    """Only for logged-in staff whose role allows `role`: anyone else gets the login page, or a 403
    naming the role needed, before the route runs (so nothing is written)."""
    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(role):
                return forbidden(role)
            return view(*args, **kwargs)
        checked.required_role = role
        return checked
    return decorate


def forbidden(needed: Role):
    """403: what the action needs and what this account is (a fragment for htmx, else a page)."""
    template = "admin/_forbidden.html" if wants_fragment() else "admin/forbidden.html"
    return render_template(template, needed=needed, role=Role(current_user.role)), 403


def can(role: str) -> bool:
    """In a template: may the logged-in account do what `role` may? (False when no one is: a live
    fragment, rendered once for everyone, marks its buttons with data-needs instead.)"""
    return current_user.is_authenticated and current_user.can(Role(role))


@bp.before_app_request
def load_account_afresh() -> None:
    """Each request reads its account (and so its role) from the database: Flask-Login keeps the
    user in `g`, which outlives a request when the caller holds an app context (the tests)."""
    g.pop("_login_user", None)


@bp.app_context_processor
def role_helpers() -> dict:
    return {"can": can}
