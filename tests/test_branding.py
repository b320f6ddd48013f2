"""The event's own look: name, colours, logo and sponsors from the configuration or the console's
Look page, on the projector, the phones, the stored forms and the badge; Knockout's own look when
unset."""
import io
import re
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from quiz import branding, create_app
from quiz.colours import contrast, ink_on
from quiz.config import ConfigError
from quiz.extensions import db
from quiz.models import AuditEntry, EventLook

from .helpers import csrf_from, login, make_config, text

BRANDED = "brand-style"


def brand_css(client, page: str) -> str:
    """The stylesheet a page links for the event's colours (the CSP allows no inline style), as
    served; "" when the page links none."""
    found = re.search(r'id="brand-style" href="(?:http://quiz\.test)?([^"]+)"', page)
    if not found:
        return ""
    response = client.get(found.group(1).replace("&amp;", "&"))
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert "immutable" in response.headers["Cache-Control"]
    return response.get_data(as_text=True)


def png(size=(300, 120), colour=(220, 30, 60, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, "PNG")
    return out.getvalue()


def pages(client, player) -> dict[str, str]:
    """Every page the look reaches, as HTML."""
    participant, links = player
    return {"register": client.get("/register").get_data(as_text=True),
            "display": client.get("/display").get_data(as_text=True),
            "stage": client.get("/display", headers={"HX-Request": "true"}).get_data(as_text=True),
            "round": client.get(f"/f/{links[1]}").get_data(as_text=True),
            "report": client.get(f"/r/{participant.report_code}").get_data(as_text=True),
            "badge": client.get(f"/r/{participant.report_code}/badge").get_data(as_text=True)}


def test_contrast_is_wcag_and_the_ink_follows():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54  # the known lightest AA grey on white
    assert ink_on("#ffcc00") == "#000000" and ink_on("#5b3df5") == "#ffffff"


def test_unset_every_page_looks_as_before(client, player):
    for name, page in pages(client, player).items():
        assert BRANDED not in page and "brand-logo" not in page, name
        assert 'aria-label="Sponsors"' not in page and 'class="logo"' not in page, name
        assert "--accent:" not in page, name
    assert '<span class="brand">Knockout</span>' in pages(client, player)["stage"]
    assert "<title>Join · Knockout</title>" in pages(client, player)["register"]


@pytest.mark.config(EVENT_NAME="Acme Summit", BRAND_PRIMARY="#FC0", BRAND_ACCENT="0a5f38",
                    SPONSORS="Acme, Globex", EVENT_LOGO="https://cdn.example/acme.png")
def test_configured_look_shows_on_every_page(client, player):
    shown = pages(client, player)
    for name, page in shown.items():
        css = brand_css(client, page)
        assert "--brand: #ffcc00; --brand-ink: #000000;" in css, name  # black on yellow
        assert "--accent: #0a5f38; --accent-ink: #ffffff;" in css, name
        assert "https://cdn.example/acme.png" in page, name
        assert "Acme Summit" in page, name
    assert re.search(r'<footer class="sponsors".*Acme.*Globex', shown["stage"], re.S)
    assert 'class="brand-logo"' in shown["register"] and 'class="logo"' in shown["badge"]


def test_configured_logo_path_and_sponsor_yaml_are_served(tmp_path, redis_url):
    logo, sponsor = tmp_path / "logo.png", tmp_path / "globex.png"
    logo.write_bytes(png())
    sponsor.write_bytes(png((80, 80)))
    yaml_file = tmp_path / "sponsors.yaml"
    yaml_file.write_text(f"- name: Acme\n- name: Globex\n  logo: {sponsor}\n")
    app = create_app(make_config(tmp_path, redis_url, EVENT_LOGO=str(logo),
                                 SPONSORS=str(yaml_file)))
    with app.app_context():
        db.create_all()
        client = app.test_client()
        stage = client.get("/display", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert 'src="/brand/configured/logo"' in stage
        assert 'src="/brand/configured/sponsor/1" alt="Globex"' in stage
        assert '<span class="sponsor">Acme</span>' in stage
        assert client.get("/brand/configured/logo").data == logo.read_bytes()
        assert client.get("/brand/configured/sponsor/1").data == sponsor.read_bytes()
        assert client.get("/brand/configured/sponsor/0").status_code == 404
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("name, value", [("BRAND_PRIMARY", "purple"), ("BRAND_ACCENT", "#12345")])
def test_a_bad_colour_is_refused_at_start(tmp_path, redis_url, name, value):
    with pytest.raises(ConfigError, match=f"{name} must be a hex colour such as #5b3df5"):
        create_app(make_config(tmp_path, redis_url, **{name: value}))


def look_form(client, **data):
    login(client)
    token = csrf_from(client.get("/admin/look/").get_data(as_text=True))
    return client.post("/admin/look/", data={"csrf_token": token, **data},
                       content_type="multipart/form-data")


def stored(app) -> list[Path]:
    root = Path(app.config["STORAGE_URL"].removeprefix("file://")) / "brand"
    return list(root.glob("*")) if root.exists() else []


def test_the_console_sets_the_look_and_it_wins_over_the_configuration(app, client, player):
    response = look_form(client, name="Acme Summit", primary="#ffcc00", accent="",
                         sponsors="Acme\nGlobex", sponsor_logo_for="Globex",
                         logo=(io.BytesIO(png()), "logo.png"),
                         sponsor_logo=(io.BytesIO(png((90, 90))), "globex.png"))
    assert response.status_code == 303, text(response)
    row = db.session.get(EventLook, 1)
    assert (row.name, row.primary) == ("Acme Summit", "#ffcc00")
    assert len(stored(app)) == 2
    shown = pages(client, player)
    logo = f"/brand/{row.logo_key}"
    for name in ("register", "stage", "round", "badge"):
        assert logo in shown[name] and "--brand: #ffcc00" in brand_css(client, shown[name]), name
    assert re.search(r'<footer class="sponsors".*Acme.*alt="Globex"', shown["stage"], re.S)
    served = client.get(logo)
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert "immutable" in served.headers["Cache-Control"]
    assert Image.open(io.BytesIO(served.data)).size == (300, 120)
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "set the look"))
    assert "Acme Summit" in audit.detail
    page = text(client.get("/admin/look/"))
    assert "#ffcc00 with white text on it: contrast 1.5:1, below WCAG AA's 4.5:1" in page
    assert "black text instead (13.9:1)" in page


def test_a_stored_form_carries_the_look(app, client, player, open_round, run_jobs):
    look_form(client, name="Acme Summit", primary="#0a5f38", logo=(io.BytesIO(png()), "l.png"))
    open_round()
    run_jobs()
    form = next(iter(stored_forms(app)), None)
    assert form is not None
    html = form.read_text()
    assert "--brand: #0a5f38" in brand_css(client, html) and "http://quiz.test/brand/" in html
    assert "Acme Summit" in html


def stored_forms(app):
    root = Path(app.config["STORAGE_URL"].removeprefix("file://")) / "forms"
    return root.rglob("*.html")


@pytest.mark.parametrize("data, status, message", [
    ({"primary": "purple"}, 422, "Primary colour must be a hex colour such as #5b3df5"),
    ({"accent": "#12"}, 422, "Accent colour must be a hex colour"),
    ({"logo": (io.BytesIO(b"GIF89a not really"), "x.png")}, 422,
     "that file isn't an image we can read. Send a PNG, JPEG or WebP logo."),
    ({"logo": (io.BytesIO(png()[:60]), "cut.png")}, 422, "that logo arrived damaged or incomplete"),
    ({"logo": (io.BytesIO(b"\x89PNG" + b"0" * 3000), "big.png")}, 413,
     "that logo is larger than 0.002 MB, the limit"),
    ({"sponsors": "Acme", "sponsor_logo_for": "Initech",
      "sponsor_logo": (io.BytesIO(png()), "i.png")}, 422, "Name the sponsor the logo belongs to"),
])
@pytest.mark.config(LOGO_MAX_BYTES=2000)
def test_a_bad_look_is_refused_whole(app, client, data, status, message):
    form = {"name": "Acme", "primary": "#0a5f38", "logo": (io.BytesIO(b""), ""), **data}
    response = look_form(client, **form)
    assert response.status_code == status
    assert message in text(response)
    assert db.session.get(EventLook, 1) is None and stored(app) == []


@pytest.mark.config(LOGO_MAX_BYTES=2000)
def test_a_body_past_the_limit_is_refused_with_a_message(app, client):
    response = look_form(client, logo=(io.BytesIO(b"x" * 80_000), "huge.png"))
    assert response.status_code == 413
    assert "That upload is larger than 0.002 MB a logo, the limit" in text(response)
    assert db.session.get(EventLook, 1) is None and stored(app) == []


def test_the_sms_sender_name_set_in_the_console_goes_out_with_each_sms(app, client, sns_config):
    """SNS's SenderID is read at each send: the console's name over SMS_SENDER_ID."""
    from urllib.parse import parse_qs

    from quiz import sms
    sent = []

    def publishing(backend):
        backend.client.meta.events.register(
            "before-send.sns.Publish",
            lambda request, **_: sent.append(parse_qs(request.body if isinstance(request.body, str)
                                                  else request.body.decode())))
        return backend

    backend = publishing(sms.SnsBackend())
    backend.send("+14155550100", "configured")
    assert look_form(client, sms_sender="DevConf26").status_code == 303
    assert db.session.get(EventLook, 1).sms_sender == "DevConf26"
    backend.send("+14155550100", "from the console")
    senders = [next((b[k.replace(".Name", ".Value.StringValue")][0] for k in b
                     if k.endswith(".Name") and b[k] == ["AWS.SNS.SMS.SenderID"]), None)
               for b in sent]
    assert senders == ["Conf", "DevConf26"]
    assert "DevConf26" in text(client.get("/admin/look/"))


@pytest.fixture
def sns_config(app, moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app.config.update(SMS_BACKEND="sns", SNS_ENDPOINT_URL=moto_server, AWS_REGION="us-east-1",
                      SMS_SENDER_ID="Conf")


@pytest.mark.parametrize("sender", ["Dev Conf", "DevConf2026XY", "12345", "Café"])
def test_a_sender_name_no_carrier_shows_is_refused_whole(app, client, sender):
    response = look_form(client, name="Acme", sms_sender=sender)
    assert response.status_code == 422
    assert "can't be an SMS sender name: 1 to 11 letters and digits" in text(response)
    assert db.session.get(EventLook, 1) is None


def test_a_bad_sms_sender_id_is_refused_at_start(tmp_path):
    from quiz import create_app
    from quiz.config import ConfigError, TestConfig
    config = type("Config", (TestConfig,), {"SMS_SENDER_ID": "Dev Conf!",
                                            "INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match="SMS_SENDER_ID 'Dev Conf!' can't be an SMS sender"):
        create_app(config)


def test_a_look_saved_in_another_process_is_not_hidden_by_this_ones_copy(app, client):
    """Each web process keeps the look for LOOK_CACHE_SECONDS. Where that copy would show the old
    look for good (a stylesheet cached for a year under the new look's address, a projector that
    is never reloaded, the Look page just after saving) it is read afresh."""
    from quiz.extensions import state
    look_form(client, name="Acme Summit", primary="#ffcc00")
    new = branding.fresh_look()

    def stale():  # this process read the look just before another one saved it
        app.extensions[branding.COPY] = (time.monotonic() + 60, branding.Look(
            name="Knockout", primary="", accent="", logo_url="", sponsors=[], sms_sender=""))

    stale()
    served = client.get(f"/brand/look.css?v={new.css_version}")
    assert "--brand: #ffcc00" in served.get_data(as_text=True)
    assert "immutable" in served.headers["Cache-Control"]
    stale()
    old_page = client.get("/brand/look.css?v=0123456789abcdef")  # a page from before the change
    assert "--brand: #ffcc00" in old_page.get_data(as_text=True)
    assert old_page.headers["Cache-Control"] == "no-cache"
    stale()
    page = text(client.get("/admin/look/"))
    assert "Acme Summit" in page and "below WCAG AA" in page

    hub = state(app).hub
    hub.started = True  # driven by hand: no Redis listener
    projector = hub.connect("display")
    projector.take(0)
    stale()
    hub.broadcast()
    assert b"Acme Summit" in projector.take(1).html
    hub.disconnect(projector)
    hub.release()
