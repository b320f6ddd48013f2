"""`flask --app quiz …` commands for operators."""
import json
import os
import signal
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from . import bank_edit, reconcile, staff, stored_forms
from .audit import record
from .backup import backup_database, restore_database
from .clock import utcnow
from .config import persistent_secret
from .embedded import embedded_redis_args, redis_answers, stop_redis
from .errors import QuizError
from .exports import EXPORTS, filename, write_csv
from .extensions import db, init_migrations
from .models import AdminUser, Challenge, Participant, Role
from .privacy import export_participant, shred_personal_data
from .questions import apply_bank, parse_bank
from .supervisor import Child, Supervisor, record_restart, web_answers

ROOT = Path(__file__).resolve().parent.parent
questions_cli = AppGroup("questions", help="The question bank.")
admin_cli = AppGroup("admin", help="Organizer accounts.")
sms_cli = AppGroup("sms", help="Text messages.")
forms_cli = AppGroup("forms", help="Personalized forms in object storage.")


@forms_cli.command("reconcile")
@click.option("--round", "number", type=int, help="Only this round (default: every round).")
def reconcile_forms(number: int | None):
    """Compare stored forms with the database and repair every difference; safe during the event."""
    result = stored_forms.reconcile([_round_id(number)] if number else None)
    click.echo(f"{result['missing']} missing form(s) written, "
               f"{result['misplaced']} misplaced form(s) moved, "
               f"{result['duplicated']} duplicate(s) and {result['orphaned']} orphan(s) removed.")


@forms_cli.command("regenerate")
@click.option("--round", "number", type=int, help="Only this round (default: every round).")
def regenerate_forms(number: int | None):
    """Render every stored form afresh (after an upgrade changed what forms carry); safe live."""
    done = stored_forms.regenerate(None, [_round_id(number)] if number else None)
    click.echo(f"{done} form(s) rendered afresh.")


@forms_cli.command("status")
def forms_status():
    """Per round: forms expected in each place (database) against forms found there (storage)."""
    for challenge in db.session.scalars(select(Challenge).order_by(Challenge.number)):
        report = stored_forms.drift([challenge.id])
        counts = ", ".join(f"{place} {report.found[place]}/{report.expected[place]}"
                           for place in ("forms", "answered", "unanswered"))
        state = "in sync" if report.clean else (
            f"drift: {len(report.missing)} missing, {len(report.misplaced)} misplaced, "
            f"{len(report.duplicated)} duplicated, {len(report.orphaned)} orphaned")
        click.echo(f"round {challenge.number} ({challenge.status}): "
                   f"{counts} (found/expected); {state}")


def _round_id(number: int) -> int:
    challenge_id = db.session.scalar(select(Challenge.id).where(Challenge.number == number))
    if challenge_id is None:
        raise click.ClickException(f"There is no round {number}.")
    return challenge_id


@sms_cli.command("reconcile")
@click.option("--stale-after", default=60.0, show_default=True,
              help="Seconds after which a message still 'sending' counts as lost with its worker.")
@click.option("--forgotten-after", default=600.0, show_default=True,
              help="Seconds after which a queued message handed to a job that never ran is handed "
                   "over again.")
def reconcile_sms(stale_after: float, forgotten_after: float):
    """Re-queue SMS work that was lost (a dead worker, a Redis outage); safe during an event."""
    result = reconcile.reconcile_messages(stale_after, forgotten_after)
    click.echo(f"{result['reclaimed']} message(s) reclaimed from dead workers, "
               f"{result['requeued']} queued message(s) handed to the workers, "
               f"{result['closed']} round(s) closed at their time limit, "
               f"{result['confirmations']} confirmation(s) owed queued.")


@questions_cli.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_questions(path: Path):
    """Load rounds and questions from a YAML file (idempotent; all or nothing)."""
    try:
        changes = apply_bank(parse_bank(path.read_text(encoding="utf-8"), path.parent))
        db.session.commit()
    except (QuizError, UnicodeDecodeError) as error:
        db.session.rollback()
        raise click.ClickException(f"{path}: {error}. Nothing was changed.")
    click.echo("\n".join(changes) if changes else f"{path}: already loaded, nothing to change.")


@questions_cli.command("export")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def export_questions(path: Path | None):
    """Write the bank as YAML to PATH (its pictures into pictures/ beside it), or to the screen."""
    with click.open_file(str(path or "-"), "w", encoding="utf-8") as out:
        out.write(bank_edit.bank_yaml(bank_edit.current_bank(), path and path.parent))


@admin_cli.command("create")
@click.option("--username", default="admin", show_default=True)
@click.password_option(help="The organizer's password (asked for if not given).")
@click.option("--role", type=click.Choice([role.value for role in Role]), default=None,
              help="host (everything; the default for a new account), desk (check-in, help desk, "
                   "resend a link, correct a participant) or viewer (read-only). An existing "
                   "account keeps its role unless given one.")
def create_admin(username: str, password: str, role: str | None):
    """Create a staff account, or set a new password (and role) for an existing one."""
    try:
        ensure_admin(username, password, reset=True, role=Role(role) if role else None)
    except QuizError as error:
        db.session.rollback()
        raise click.ClickException(f"{error.message} Nothing was changed.")
    user = db.session.scalar(select(AdminUser).where(AdminUser.username == username))
    click.echo(f"{user.role.capitalize()} '{username}' can log in at /admin.")


def ensure_admin(username: str, password: str, reset: bool = False,
                 role: Role | None = None) -> bool:
    """Create `username` with `password` (a host unless `role` says) if missing, or reset its
    password (and role); True if the password is now `password`. Audited as "cli"."""
    user = db.session.scalar(select(AdminUser).where(AdminUser.username == username))
    if user is None:
        user = AdminUser(username=username, role=role or Role.HOST)
        db.session.add(user)
        record("cli", "add account", None, f"{username} ({user.role})")
    elif not reset:
        return user.check_password(password)
    else:
        if role is not None:
            staff.change_role(user, role, "cli")
        record("cli", "reset password", None, username)
    user.set_password(password)
    db.session.commit()
    return True


@click.command("demo")
@click.option("--port", default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="0.0.0.0 to let phones on the LAN join.")
def demo(port: int, host: str):
    """Set up the database and the demo bank, then run web, worker and Redis until Ctrl-C; a part
    that dies is started again (quiz/supervisor.py)."""
    init_migrations(current_app)
    from flask_migrate import upgrade  # Alembic: for the commands that migrate only
    upgrade(directory=str(ROOT / "migrations"))
    if not db.session.scalar(select(func.count()).select_from(Challenge)):
        apply_bank(parse_bank((ROOT / "questions" / "demo.yaml").read_text(), ROOT / "questions"))
        db.session.commit()
    instance = Path(current_app.instance_path)
    password = current_app.config["ADMIN_PASSWORD"] or persistent_secret(instance, "admin_password")
    known = ensure_admin("admin", password)
    db.session.remove()
    supervisor = demo_supervisor(instance, host, port)
    supervisor.start()
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo("\n" + "\n".join([
        "Knockout is running (Ctrl-C stops web, worker and Redis; a part that dies is restarted).",
        f"  Participants join: {base}/register",
        f"  Projector:         {base}/display",
        f"  Admin console:     {base}/admin   user: admin   password: "
        + (password if known else "(the one you set with `flask --app quiz admin create`)"),
        f"  API token:         {current_app.config['ADMIN_API_TOKEN']}",
        f"  Redis:             {current_app.config['REDIS_URL']}",
    ]) + "\n")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    supervisor.run()
    supervisor.stop()
    click.echo("Knockout stopped.")


def demo_supervisor(instance: Path, host: str, port: int) -> Supervisor:
    """Web, worker and (unless REDIS_URL names another) the embedded Redis, as supervised
    children."""
    redis_url = current_app.config["REDIS_URL"]
    env = dict(os.environ, REDIS_URL=redis_url, BIND=f"{host}:{port}")
    env.setdefault("PUBLIC_BASE_URL", current_app.config["PUBLIC_BASE_URL"])
    children = []
    if not os.environ.get("REDIS_URL"):  # the embedded one: from now on the supervisor's child
        stop_redis(instance)
        children.append(Child("redis", embedded_redis_args(instance), ROOT, env,
                              ready=lambda: redis_answers(redis_url)))
    children += [
        Child("worker", [sys.executable, "worker.py"], ROOT, env),
        Child("web", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
              ROOT, env, ready=lambda: web_answers(f"http://{host}:{port}/ping")),
    ]
    return Supervisor(children, on_restart=lambda child: record_restart(redis_url, child))


privacy_cli = AppGroup("privacy",
                       help="Personal data: export one person's, shred everyone's after the event.")


@privacy_cli.command("export")
@click.argument("email")
def export_person(email: str):
    """Print everything held about the participant with this email, as JSON."""

    participant = db.session.scalar(select(Participant)
                                    .where(Participant.email == email.strip().lower()))
    if participant is None:
        raise click.ClickException(f"No participant registered with {email}.")
    click.echo(json.dumps(export_participant(participant), indent=2, ensure_ascii=False))


@privacy_cli.command("shred")
@click.option("--force", is_flag=True,
              help="Shred even before RETENTION_DAYS have passed or while the event runs.")
@click.confirmation_option(prompt="Replace every name, email, phone and company with placeholders?")
def shred(force: bool):
    """Remove personal data, keeping anonymous results (scores, ranks, times)."""
    try:
        people = shred_personal_data(current_app.config["RETENTION_DAYS"], force=force)
        db.session.commit()
        # stored forms show names: render them again with the placeholders
        stored_forms.regenerate()
    except QuizError as error:
        db.session.rollback()
        raise click.ClickException(error.message)
    click.echo(f"Personal data of {people} participant(s) shredded; results kept.")


@click.command("backup")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path | None):
    """Take a consistent backup of the database, safe during the event."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    suffix = "db" if url.startswith("sqlite") else "dump"
    path = path or (Path(current_app.instance_path) / "backups"
                    / f"knockout-{utcnow():%Y%m%d-%H%M%S}.{suffix}")
    click.echo(f"Backup written to {backup_database(url, path)}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.confirmation_option(prompt="Replace the database's contents with this backup? "
                                  "Stop web and workers first.")
def restore(path: Path):
    """Restore the database from a backup made by `backup`."""
    db.session.remove()
    db.engine.dispose()
    restore_database(current_app.config["SQLALCHEMY_DATABASE_URI"], path)
    click.echo(f"Database restored from {path}.")


@click.command("export")
@click.argument("kind", type=click.Choice([*EXPORTS, "all"]))
@click.option("--output", type=click.Path(path_type=Path),
              help="File to write (default: stdout); a folder for 'all'.")
def export(kind: str, output: Path | None):
    """Write results as CSV (formula-safe): one KIND, or 'all' into the --output folder."""
    if kind != "all" and output is None:
        return write_csv(kind, sys.stdout)
    if kind != "all":
        with open(output, "w", encoding="utf-8", newline="") as out:
            return write_csv(kind, out)
    if output is None:
        raise click.UsageError("'export all' writes one file per export: "
                               "give a folder with --output DIR.")
    output.mkdir(parents=True, exist_ok=True)
    for name in EXPORTS:
        path = output / filename(name, current_app.config["EVENT_NAME"])
        with open(path, "w", encoding="utf-8", newline="") as out:
            write_csv(name, out)
        click.echo(f"Wrote {path}")


class RehearseCommand(click.Command):
    """`flask rehearse`: its module (and requests) imported when it runs, not by every process."""

    def make_context(self, info_name, args, parent=None, **extra):
        from .rehearse import rehearse_command
        return rehearse_command.make_context(info_name, args, parent=parent, **extra)


def register(app) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(questions_cli)
    app.cli.add_command(admin_cli)
    app.cli.add_command(sms_cli)
    app.cli.add_command(forms_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(backup)
    app.cli.add_command(restore)
    app.cli.add_command(demo)
    app.cli.add_command(RehearseCommand("rehearse", help="Play a whole event against a running "
                                        "rehearsal instance and print a go/no-go table."))
    app.cli.add_command(export)
