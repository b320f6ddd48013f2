"""The event's own look: name, colours, logo and sponsors on every page, the console's setting
over the configuration's.

Unset everywhere, every page is exactly Knockout's own (no style, no logo, no strip). Colours
become CSS custom properties (--brand, --brand-ink, --accent, --accent-ink) in the pages' head and
in the projector's stage (so a change reaches projectors over the websocket); the text colour on a
brand colour is black or white, whichever contrasts more. Logos are decoded with Pillow (never
trusted by name), bounded in bytes and pixels, stored re-encoded as PNG under `brand/<hash>.png` in
object storage, and served with long cache headers (a new logo is a new key).
"""
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from .audit import record
from .clock import utcnow
from .colours import (AA_NORMAL, WHITE, ColourError, contrast, ink_on, lighter_until,
                      parse_colour)
from .config_checks import sender_name_problem
from .effects import CHANGED, owe
from .errors import ValidationError
from .extensions import db
from .logos import prepare_logo, store_logo
from .models import EventLook

PHONE_BACKGROUND = "#f3f5fb"  # app.css --bg: links and headings in the brand colour sit on it
# The lightest the projector's text sits on (display.css: the leader's row over the stage's
# gradient): the brand colours as text there are made lighter until they read on it.
STAGE_BACKGROUND = "#3c3281"
URL_PREFIX = "/brand/"  # quiz/web/brand.py serves what is stored under brand/
CONFIGURED_LOGO = "/brand/configured/logo"
MAX_SPONSORS = 12
log = logging.getLogger(__name__)


@dataclass
class Look:
    """What the pages show; empty strings mean Knockout's own."""

    name: str
    primary: str = ""
    accent: str = ""
    logo_url: str = ""
    sponsors: list[tuple[str, str]] = field(default_factory=list)  # (name, logo URL or "")
    sms_sender: str = ""  # the SMS sender name (SNS's SenderID); "" for the provider's own

    @property
    def primary_ink(self) -> str:
        return ink_on(self.primary) if self.primary else ""

    @property
    def accent_ink(self) -> str:
        return ink_on(self.accent) if self.accent else ""

    @property
    def styled(self) -> bool:
        return bool(self.primary or self.accent)

    @property
    def css(self) -> str:
        """The colours as CSS custom properties: a stylesheet of their own (the pages' CSP allows
        no inline style), named by its content so it can be cached for good."""
        rules = []
        if self.primary:
            rules.append(f"--brand: {self.primary}; --brand-ink: {self.primary_ink}; "
                         f"--brand-text: {lighter_until(self.primary, STAGE_BACKGROUND)};")
        if self.accent:
            rules.append(f"--accent: {self.accent}; --accent-ink: {self.accent_ink}; "
                         f"--accent-text: {lighter_until(self.accent, STAGE_BACKGROUND)};")
        return ":root { " + " ".join(rules) + " }\n"

    @property
    def css_version(self) -> str:
        return hashlib.blake2b(self.css.encode(), digest_size=8).hexdigest()


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def configured_sponsors(config) -> list[dict]:
    """SPONSORS: comma-separated names, or a path to a YAML list of {name, logo} (logo a path or a
    URL)."""
    value = config.get("SPONSORS", "").strip()
    if not value:
        return []
    if value.endswith((".yaml", ".yml")):
        entries = yaml.safe_load(Path(value).read_text()) or []
        return [{"name": str(e["name"]), "logo": str(e.get("logo") or "")} for e in entries]
    return [{"name": name.strip(), "logo": ""} for name in value.split(",") if name.strip()]


def _configured_logo_url(logo: str, index: int | None = None) -> str:
    if not logo:
        return ""
    if is_url(logo):
        return logo
    return CONFIGURED_LOGO if index is None else f"/brand/configured/sponsor/{index}"


def stored_sponsors(row: EventLook) -> list[tuple[str, str]]:
    """The row's sponsors as (name, logo key or "")."""
    pairs = []
    for line in row.sponsors.splitlines():
        name, _, key = line.partition("\t")
        if name.strip():
            pairs.append((name.strip(), key.strip()))
    return pairs


LOOK_CACHE_SECONDS = 2.0  # how soon another process's pages show a look saved in the console
COPY = "knockout_look"  # app.extensions: this process's (until when, look), read from the database


def current_look() -> Look:
    """The look pages show: each field from the console if set there, else from the
    configuration. Read by primary key at most every LOOK_CACHE_SECONDS per process (a herd of
    phones costs no query for it); with the database out of reach, the configuration's."""
    until, look = current_app.extensions.get(COPY, (0.0, None))
    if look is not None and time.monotonic() < until:
        return look
    try:
        row = db.session.get(EventLook, 1)
    except SQLAlchemyError as error:
        log.warning("the look could not be read, the configuration's is shown: %s", error)
        return _look(current_app.config, None)
    look = _look(current_app.config, row)
    current_app.extensions[COPY] = (time.monotonic() + LOOK_CACHE_SECONDS, look)
    return look


def forget_look() -> None:
    """A look saved here: this process's pages show it at once."""
    current_app.extensions.pop(COPY, None)


def fresh_look() -> Look:
    """The look as the database has it now (another process may have saved it a moment ago)."""
    forget_look()
    return current_look()


def _look(config, row: EventLook | None) -> Look:
    row = row or EventLook(name="", primary="", accent="", logo_key="", sponsors="",
                           sms_sender="")
    sponsors = ([(name, URL_PREFIX + key if key else "") for name, key in stored_sponsors(row)]
                if row.sponsors.strip() else
                [(s["name"], _configured_logo_url(s["logo"], i))
                 for i, s in enumerate(configured_sponsors(config))])
    look = Look(name=row.name or config["EVENT_NAME"],
                primary=row.primary or config.get("BRAND_PRIMARY", ""),
                accent=row.accent or config.get("BRAND_ACCENT", ""),
                logo_url=(URL_PREFIX + row.logo_key if row.logo_key
                          else _configured_logo_url(config.get("EVENT_LOGO", ""))),
                sponsors=sponsors, sms_sender=row.sms_sender or config.get("SMS_SENDER_ID", ""))
    return look


def contrast_notes(look: Look) -> list[str]:
    """What the console says about the colours' contrast (WCAG 2.1 AA: 4.5:1 for text)."""
    notes = []
    for label, colour in (("Primary", look.primary), ("Accent", look.accent)):
        if not colour:
            continue
        on_white = contrast(colour, WHITE)
        ink = ink_on(colour)
        if on_white < AA_NORMAL:
            notes.append(f"{label} {colour} with white text on it: contrast {on_white:.1f}:1, "
                         f"below WCAG AA's {AA_NORMAL}:1. Its buttons use "
                         f"{'black' if ink != WHITE else 'white'} text instead "
                         f"({contrast(colour, ink):.1f}:1).")
        on_page = contrast(colour, PHONE_BACKGROUND)
        if on_page < AA_NORMAL:
            notes.append(f"{label} {colour} as text on the phones' light background: contrast "
                         f"{on_page:.1f}:1, below {AA_NORMAL}:1. Pick a darker shade for "
                         "readable links and headings.")
        on_stage = contrast(colour, STAGE_BACKGROUND)
        if on_stage < AA_NORMAL:
            lighter = lighter_until(colour, STAGE_BACKGROUND)
            notes.append(f"{label} {colour} as text on the projector's dark stage: contrast "
                         f"{on_stage:.1f}:1, below {AA_NORMAL}:1. The projector shows its text "
                         f"in a lighter shade, {lighter} "
                         f"({contrast(lighter, STAGE_BACKGROUND):.1f}:1).")
    return notes


def checked_colours(form: dict) -> dict[str, str]:
    """The form's colours as #rrggbb ("" for unset); ValidationError naming the field."""
    colours, errors = {}, {}
    for field_name, label in (("primary", "Primary colour"), ("accent", "Accent colour")):
        value = (form.get(field_name) or "").strip()
        try:
            colours[field_name] = parse_colour(value, label) if value else ""
        except ColourError as error:
            errors[field_name] = str(error)
    if errors:
        raise ValidationError(errors, " ".join(errors.values()))
    return colours


def save_look(actor: str, form: dict, logo: bytes | None, sponsor_logo: bytes | None) -> EventLook:
    """Check everything the Look form sent, then store the logos and the row (audited; projectors
    told). Nothing is stored unless all of it is good."""
    colours = checked_colours(form)
    name = (form.get("name") or "").strip()
    if len(name) > 120:
        raise ValidationError({"name": "The event's name is at most 120 characters."},
                              "The event's name is at most 120 characters.")
    names = [line.strip() for line in (form.get("sponsors") or "").splitlines() if line.strip()]
    if len(names) > MAX_SPONSORS or any(len(n) > 80 for n in names):
        raise ValidationError({"sponsors": f"At most {MAX_SPONSORS} sponsors, one a line, each "
                                           "at most 80 characters."},
                              f"At most {MAX_SPONSORS} sponsors, one a line, 80 characters each.")
    sender = (form.get("sms_sender") or "").strip()
    problem = sender_name_problem(sender, "The SMS sender name")
    if problem:
        raise ValidationError({"sms_sender": problem}, problem)
    logo_for = (form.get("sponsor_logo_for") or "").strip()
    if sponsor_logo and logo_for not in names:
        raise ValidationError({"sponsor_logo_for": "Name the sponsor the logo belongs to, as "
                                                   "written in the list of sponsors."},
                              "Name the sponsor the logo belongs to, as written in the list.")
    limit = current_app.config["LOGO_MAX_BYTES"]
    logo_png = prepare_logo(logo, limit) if logo else None
    sponsor_png = prepare_logo(sponsor_logo, limit) if sponsor_logo else None
    row = db.session.get(EventLook, 1) or EventLook(id=1, logo_key="", sponsors="")
    db.session.add(row)
    kept = dict(stored_sponsors(row)) if row.sponsors else {}
    if sponsor_png:
        kept[logo_for] = store_logo(sponsor_png)
    if logo_png:
        row.logo_key = store_logo(logo_png)
    elif form.get("remove_logo"):
        row.logo_key = ""
    row.name, row.primary, row.accent = name, colours["primary"], colours["accent"]
    row.sms_sender = sender
    row.sponsors = "\n".join(f"{n}\t{kept.get(n, '')}" for n in names)
    row.updated_at = utcnow()
    forget_look()
    owe(CHANGED)
    return record(actor, "set the look", row,
                  f"name {name or '(configured)'}, colours {colours['primary'] or '-'} "
                  f"{colours['accent'] or '-'}, {len(names)} sponsors"
                  + (f", SMS sender {sender}" if sender else "")
                  + (", new logo" if logo_png else ""))
