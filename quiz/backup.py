"""Consistent backups during the event, and restore: SQLite's online backup API, or pg_dump /
pg_restore."""
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


def _libpq_url(url) -> str:
    """The SQLAlchemy URL as pg_dump understands it (no driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL's client tools.")
    return str(found)


def backup_database(database_url: str, destination: Path) -> Path:
    """Write a consistent copy of the live database to `destination` (safe while players submit)."""
    url = make_url(database_url)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        source = sqlite3.connect(url.database, timeout=30)
        target = sqlite3.connect(destination)
        try:
            source.backup(target)  # a snapshot, page by page, while writers go on
        finally:
            target.close()
            source.close()
    elif url.get_backend_name() == "postgresql":
        subprocess.run([_tool("pg_dump"), "--format=custom", "--file", str(destination),
                        _libpq_url(url)], check=True, capture_output=True)
    else:
        raise RuntimeError(f"No backup method for {url.get_backend_name()}.")
    return destination


def restore_database(database_url: str, source: Path) -> None:
    """Replace the database's contents with a backup (stop web and workers first)."""
    if not source.is_file():
        raise FileNotFoundError(f"No backup at {source}.")
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        backup = sqlite3.connect(source)
        target = sqlite3.connect(url.database, timeout=30)
        try:
            backup.backup(target)
        finally:
            target.close()
            backup.close()
    elif url.get_backend_name() == "postgresql":
        subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--dbname",
                        _libpq_url(url), str(source)], check=True, capture_output=True)
    else:
        raise RuntimeError(f"No restore method for {url.get_backend_name()}.")
