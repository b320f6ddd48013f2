"""Staff accounts: who may log in to the console, with which role; hosts manage them.

Every change is audited with who made it. The event never loses its last host: no one can demote
or remove them, so someone can always manage accounts and run the rounds.
"""
import re

from sqlalchemy import func, select, update

from .audit import record
from .errors import QuizError, ValidationError
from .extensions import db
from .models import AdminUser, Role

USERNAME = re.compile(r"[A-Za-z0-9._@-]{2,80}")
PASSWORD_MIN = 10
PASSWORD_MAX = 200


def accounts() -> list[AdminUser]:
    """Every staff account, hosts first, then by name."""
    order = [Role.HOST, Role.DESK, Role.VIEWER]
    rank = db.case({role.value: index for index, role in enumerate(order)}, value=AdminUser.role)
    return db.session.scalars(select(AdminUser).order_by(rank, AdminUser.username)).all()


def role_from(value: str) -> Role:
    """The role a form or the CLI named, or a ValidationError listing the roles."""
    try:
        return Role(str(value or "").strip().lower())
    except ValueError:
        message = f"Pick a role: {', '.join(Role)}."
        raise ValidationError({"role": message}, message) from None


def check_password(password: str, field: str = "password") -> str:
    """The password if it is long enough to be a console's (and not absurdly long)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        message = (f"Use a password of at least {PASSWORD_MIN} characters "
                   f"(this one has {len(password)})." if len(password) < PASSWORD_MIN
                   else f"Keep the password under {PASSWORD_MAX} characters.")
        raise ValidationError({field: message}, message)
    return password


def add_account(username: str, password: str, role: Role, by: str) -> AdminUser:
    """A new account (username checked, unique whatever its case); the caller commits."""
    username = str(username or "").strip()
    errors = {}
    if not USERNAME.fullmatch(username):
        errors["username"] = ("Use 2 to 80 letters, digits, dots, dashes, underscores or @ "
                              "(no spaces).")
    elif db.session.scalar(select(AdminUser.id).where(
            func.lower(AdminUser.username) == username.lower())):
        errors["username"] = f"There is already an account called '{username}'. Pick another name."
    try:
        check_password(password)
    except ValidationError as error:
        errors.update(error.fields)
    if errors:
        raise ValidationError(errors)
    user = AdminUser(username=username, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record(by, "add account", None, f"{username} ({role})")
    return user


def change_role(user: AdminUser, role: Role, by: str) -> AdminUser:
    """Give `user` another role; the last host stays a host. The caller commits."""
    if user.role == role:
        return user
    if user.role == Role.HOST:
        _keep_a_host(user, "make them a desk or viewer account")
    previous, user.role = user.role, role
    record(by, "change role", None, f"{user.username}: {previous} → {role}")
    return user


def reset_password(user: AdminUser, password: str, by: str) -> AdminUser:
    """Set a new password for `user` (they use it at their next login). The caller commits."""
    user.set_password(check_password(password))
    record(by, "reset password", None, user.username)
    return user


def remove_account(user: AdminUser, by: str) -> str:
    """Delete `user`'s account: not one's own, never the last host. The caller commits."""
    if user.username == by:
        raise QuizError("You can't remove the account you are logged in with: ask another host.",
                        code="own_account")
    if user.role == Role.HOST:
        _keep_a_host(user, "remove them")
    db.session.delete(user)
    record(by, "remove account", None, f"{user.username} ({user.role})")
    return user.username


def _keep_a_host(user: AdminUser, what: str) -> None:
    """Refuse when `user` is the only host left (hosts locked first: two hosts demoting each other
    at once leave one)."""
    hosts = select(AdminUser.id).where(AdminUser.role == Role.HOST).order_by(AdminUser.id)
    if db.engine.dialect.name == "sqlite":  # no row locks: take the database's write lock
        db.session.execute(update(AdminUser).where(AdminUser.role == Role.HOST)
                           .values(role=AdminUser.role).execution_options(synchronize_session=False))
    else:
        hosts = hosts.with_for_update()
    if db.session.scalars(hosts).all() == [user.id]:
        raise QuizError(f"{user.username} is the last host: make another account a host before "
                        f"you {what}.", code="last_host")
