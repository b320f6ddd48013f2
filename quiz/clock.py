"""The server's clock: the only one Knockout trusts. Naive UTC throughout the database."""
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, as naive UTC (how every timestamp is stored)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
