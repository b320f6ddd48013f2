"""The bench's helpers around the stack's processes (quiz.stack): open files, memory, players in
bulk."""
import resource
from pathlib import Path


def raise_open_files() -> None:
    """Thousands of sockets: lift the soft limit on open files to the hard one (children inherit
    it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    """Resident memory of one process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def insert_players(count: int, name: str, email: str, phone: str) -> None:
    """Bulk-create `count` players (formats take `{i}`) with a link per round, as registrations
    would have."""
    import secrets

    from sqlalchemy import insert

    from quiz.clock import utcnow
    from quiz.extensions import db
    from quiz.links import ensure_links
    from quiz.models import Participant
    rows = [{"name": name.format(i=i), "email": email.format(i=i), "phone": phone.format(i=i),
             "company": "", "consent": True, "report_code": secrets.token_urlsafe(16),
             "created_at": utcnow()} for i in range(count)]
    for start in range(0, count, 5000):
        db.session.execute(insert(Participant), rows[start:start + 5000])
    ensure_links()


def store_forms(email: str) -> int:
    """The stored forms of the players whose email is LIKE `email`, every round's, as their
    registrations' jobs would have made them (BENCH_FORMS=none leaves them out: their pages are
    then rendered live, and the first GET of each has the worker make it). The bench's app must
    use the stack's storage."""
    import os

    from sqlalchemy import select

    from quiz.extensions import db
    from quiz.models import Participant
    from quiz.stored_forms import form_rows, write_forms
    if os.environ.get("BENCH_FORMS", "stored") == "none":
        return 0
    ids = db.session.scalars(select(Participant.id).where(Participant.email.like(email))
                             .order_by(Participant.id)).all()
    written = 0
    for start in range(0, len(ids), 500):
        written += write_forms(form_rows(ids[start:start + 500]))
        db.session.expunge_all()  # the rows read: let go of them
    return written
