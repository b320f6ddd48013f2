"""The server's clock: the only one Knockout trusts. Naive UTC throughout the database."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app

from .errors import QuizError


def utcnow() -> datetime:
    """Now, as naive UTC (how every timestamp is stored)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_local_time(text: str):
    """'HH:MM' (today, or tomorrow if past) or 'YYYY-MM-DDTHH:MM' in the event's time zone →
    naive UTC."""
    zone = ZoneInfo(current_app.config["EVENT_TIMEZONE"])
    now = datetime.now(zone)
    try:
        if len(text.strip()) <= 5:
            hours, minutes = (int(part) for part in text.strip().split(":"))
            moment = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
            if moment <= now:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.strip()).replace(tzinfo=zone)
    except ValueError:
        raise QuizError("Give the time as HH:MM, e.g. 14:00.", code="invalid", status=422,
                        fields={"send_at": "Give the time as HH:MM, e.g. 14:00."})
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def local_time(moment) -> str:
    """A stored (naive UTC) time as the venue reads it."""
    zone = ZoneInfo(current_app.config["EVENT_TIMEZONE"])
    return moment.replace(tzinfo=timezone.utc).astimezone(zone).strftime("%a %H:%M")
