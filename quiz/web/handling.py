"""How every route handles a request: one write path (commit once, retry a busy database), and
fragment or page."""
import time

from flask import request
from sqlalchemy.exc import OperationalError

from ..extensions import db

WRITE_ATTEMPTS = 4


def wants_fragment() -> bool:
    """An htmx request for part of a page (not a boosted navigation or a history restore)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def write(operation, *args):
    """Run `operation` and commit, retrying when the database was briefly locked or a connection
    dropped."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            result = operation(*args)
            if db.session.registry.has():  # else nothing went through it (a group commit's submit)
                db.session.commit()
            return result
        except OperationalError:
            db.session.rollback()
            if attempt == WRITE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
        except Exception:
            db.session.rollback()
            raise
