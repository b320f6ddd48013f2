"""The console's staff accounts page: hosts add accounts, change roles, reset passwords, remove."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import staff
from ..errors import QuizError
from ..extensions import db
from ..models import AdminUser, Role
from .confirm import confirm_first, to_remove_account
from .handling import write
from .roles import requires

bp = Blueprint("staff", __name__, url_prefix="/admin/staff")


def staff_page(status: int = 200, error: QuizError | None = None, row: int | None = None,
               values=None):
    """The page; a refused change shows beside the form it came from (`row`: an account's)."""
    return render_template("admin/staff.html", accounts=staff.accounts(), roles=list(Role),
                           error=error, errors=(error.fields if error and row is None else {}),
                           row=row, values=values or {}), status


@bp.get("/")
@requires(Role.VIEWER)
def index():
    """Every account and its role; hosts also get the forms to change them."""
    return staff_page()


def change(operation, done, row: int | None = None, values=None):
    """Run an account change: back to the page with `done` (a function of what the change returned)
    flashed, or the page again with the error beside its form; nothing is half-written."""
    try:
        result = write(operation)
    except QuizError as error:
        return staff_page(error.status, error, row, values)
    flash(done(result), "ok")
    return redirect(url_for("staff.index"), 303)


@bp.post("/")
@requires(Role.HOST)
def add():
    """Add an account with a role and a first password."""
    form = request.form
    username = form.get("username", "").strip()
    return change(lambda: staff.add_account(username, form.get("password", ""),
                                               staff.role_from(form.get("role")),
                                               current_user.username),
                  lambda user: f"Account '{user.username}' added ({user.role}): they can log in "
                               f"at /admin now.",
                  values={"username": username, "role": form.get("role")})


@bp.post("/<int:user_id>/role")
@requires(Role.HOST)
def set_role(user_id):
    """Give an account another role (the last host stays a host)."""
    user = db.get_or_404(AdminUser, user_id)
    return change(lambda: staff.change_role(user, staff.role_from(request.form.get("role")),
                                               current_user.username),
                  lambda user: f"{user.username} is now {user.role}.", row=user_id)


@bp.post("/<int:user_id>/password")
@requires(Role.HOST)
def reset_password(user_id):
    """Set a new password for an account (tell its owner)."""
    user = db.get_or_404(AdminUser, user_id)
    return change(lambda: staff.reset_password(user, request.form.get("password", ""),
                                                  current_user.username),
                  lambda user: f"New password set for {user.username}.", row=user_id)


@bp.post("/<int:user_id>/remove")
@requires(Role.HOST)
@confirm_first(to_remove_account)
def remove(user_id):
    """Remove an account (never one's own, never the last host)."""
    user = db.get_or_404(AdminUser, user_id)
    return change(lambda: staff.remove_account(user, current_user.username),
                  lambda username: f"Account '{username}' removed.", row=user_id)
