"""deploy/: the real nginx config in front of the real stack, and the compose file's shape."""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import websocket
import yaml

from quiz.config import Config

from .helpers import ROOT, csrf_from
from .live_fixtures import LiveStack
from .nginx import DEPLOY, Nginx

pytestmark = [pytest.mark.nodb, pytest.mark.sqlite_pass]  # nginx and compose: any database

# Compose v1 (Debian's docker-compose) validates and interpolates the file without a Docker engine.
DOCKER_COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
APP_SERVICES = ("migrate", "web", "worker")
# Read by boto3 itself, not by quiz/config.py.
BOTO3_NAMES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
DESIGN_NAMES = {"DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SMS_BACKEND", "PUBLIC_BASE_URL",
                "SECRET_KEY", "ADMIN_API_TOKEN", "ADMIN_PASSWORD", "RATELIMIT_ENABLED"}


@pytest.fixture
def proxied(tmp_path, redis_url):
    """The real stack (2 gevent workers, trusting one proxy) behind the real nginx; yields (stack,
    nginx)."""
    import redis
    redis.Redis.from_url(redis_url).flushall()
    stack = LiveStack(tmp_path, redis_url, workers=2, TRUSTED_PROXIES="1")
    stack.start()
    nginx = None
    try:
        nginx = Nginx(f"127.0.0.1:{stack.port}").start()
        yield stack, nginx
    finally:
        if nginx is not None and hasattr(nginx, "process"):
            nginx.stop()
        stack.stop()


def player_count(url: str) -> int:
    return int(re.search(r'id="player-count">(\d+)<',
                         requests.get(url + "/display", timeout=10).text).group(1))


@pytest.mark.live
def test_pages_posts_and_static_files_through_nginx(proxied):
    stack, nginx = proxied
    page = requests.get(nginx.url + "/register", timeout=10)
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers  # the app answered
    # nginx's $request_id reached the app
    assert re.fullmatch(r"[0-9a-f]{32}", page.headers["X-Request-ID"])

    static = requests.get(nginx.url + "/static/css/app.css", timeout=10)
    assert (static.status_code == 200
            and static.content == (ROOT / "static" / "css" / "app.css").read_bytes())
    assert ("max-age=3600" in static.headers["Cache-Control"]
            and "public" in static.headers["Cache-Control"])
    assert "X-Request-ID" not in static.headers  # nginx served it; the app never saw the request

    api = requests.post(nginx.url + "/api/register", timeout=10, json={
        "name": "Ada", "email": "ada@example.com", "phone": "+14155550100", "company": "Acme",
        "consent": True})
    assert api.status_code == 201, api.text
    assert api.json()["report_url"].startswith(stack.url + "/r/")  # links use PUBLIC_BASE_URL
    browser = requests.Session()
    form = browser.get(nginx.url + "/register", timeout=10).text
    joined = browser.post(nginx.url + "/register", timeout=10, data={
        "csrf_token": csrf_from(form), "name": "Grace", "email": "grace@example.com",
        "phone": "+14155550101", "company": "Navy", "consent": "yes"})
    assert joined.status_code == 200 and joined.url.startswith(nginx.url + "/r/"), joined.text[:500]
    assert player_count(nginx.url) == 2


@pytest.mark.live
def test_nginx_answers_the_waiting_phones_status_from_its_cache(proxied):
    """GET /api/status is cached for a second: nginx answers the room, 304 on a current ETag, and a
    round that opens shows within about a second."""
    stack, nginx = proxied
    stack.flask("questions", "load", str(ROOT / "questions" / "demo.yaml"))
    # A player (a round nobody is invited to closes itself at once: every window is used up).
    assert requests.post(stack.url + "/api/register", timeout=10, json={
        "name": "Ada", "email": "ada@example.com", "phone": "+14155550101",
        "consent": True}).status_code == 201
    first = requests.get(nginx.url + "/api/status", timeout=10)
    assert first.status_code == 200 and first.json()["open_round"] is None
    answers = [requests.get(nginx.url + "/api/status", timeout=10) for _ in range(20)]
    assert "HIT" in [a.headers.get("X-Cache-Status") for a in answers]
    assert {a.headers["ETag"] for a in answers} == {first.headers["ETag"]}
    again = requests.get(nginx.url + "/api/status", timeout=10,
                         headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert "Set-Cookie" not in again.headers
    started = requests.post(f"{stack.url}/api/admin/start-challenge/1",
                            headers={"Authorization": "Bearer live-token"}, timeout=10)
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 5
    while requests.get(nginx.url + "/api/status", timeout=10).json()["open_round"] != 1:
        assert time.monotonic() < deadline, "the cached status never showed the round open"
        time.sleep(0.2)


@pytest.mark.live
def test_nginx_refuses_bodies_over_max_content_length(proxied):
    _, nginx = proxied
    too_big = requests.post(nginx.url + "/api/register", timeout=10,
                            headers={"Content-Type": "application/json"},
                            data=b'{"name": "' + b"x" * Config.MAX_CONTENT_LENGTH + b'"}')
    assert too_big.status_code == 413
    assert player_count(nginx.url) == 0


@pytest.mark.live
def test_websocket_upgrade_through_nginx(proxied):
    _, nginx = proxied
    ws = websocket.create_connection(nginx.url.replace("http", "ws") + "/ws?topic=display",
                                     timeout=10,
                                     # as a browser on the public address sends it
                                     origin=nginx.url)
    try:
        first = ws.recv()
        assert 'id="stage"' in first and 'id="player-count">0<' in first
        requests.post(nginx.url + "/api/register", timeout=10, json={
            "name": "Ada", "email": "ada@example.com", "phone": "+14155550100",
            "consent": True}).raise_for_status()
        deadline = time.monotonic() + 10
        # the update travels Redis → web → nginx → here
        while 'id="player-count">1<' not in ws.recv():
            assert time.monotonic() < deadline, "no live update through nginx"
    finally:
        ws.close()


def register_from(client, address: str | None, n: int) -> int:
    """Status of joining with the same phone (the limit's key is address + phone) from `address`."""
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post("/api/register", headers=headers, json={
        "name": "X", "phone": "+14155550100", "email": f"x{n}@example.com",
        "consent": True}).status_code


@pytest.mark.config(RATELIMIT_ENABLED=True, TRUSTED_PROXIES=1)
def test_behind_a_trusted_proxy_limits_key_on_the_forwarded_address(client):
    statuses = [register_from(client, "203.0.113.5", n) for n in range(11)]
    # (409s between: that phone is already registered)
    assert statuses[0] == 201 and statuses[10] == 429
    assert register_from(client, "203.0.113.6", 11) == 409  # another player's address: not limited


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_without_trusted_proxies_a_forged_forwarded_address_changes_nothing(client):
    statuses = [register_from(client, None, n) for n in range(11)]
    assert statuses[0] == 201 and statuses[10] == 429
    assert register_from(client, "203.0.113.6", 11) == 429


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_names_the_app_reads() -> set[str]:
    """Every environment variable quiz/config.py and gunicorn.conf.py read."""
    text = (ROOT / "quiz" / "config.py").read_text() + (ROOT / "gunicorn.conf.py").read_text()
    return set(re.findall(r'(?:environ\.get|_flag)\("([A-Z0-9_]+)"', text))


def example_env(**changes) -> dict[str, str]:
    """deploy/env.example as an operator fills it in: blanks get a value, `changes` on top."""
    pairs = (line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
             if line and not line.startswith("#"))
    return {key: value or f"filled-{key.lower()}" for key, value in pairs} | changes


def compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`docker-compose config` on deploy/compose.yaml with `env` as its .env file (and nothing
    else)."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    return subprocess.run([DOCKER_COMPOSE, "--env-file", str(env_file),
                           "-f", str(DEPLOY / "compose.yaml"), "config"],
                          capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def test_compose_file_is_valid_and_takes_its_settings_from_env_file(tmp_path):
    done = compose_config(tmp_path, example_env(POSTGRES_PASSWORD="pw", WEB_REPLICAS="3"))
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert services["web"]["deploy"]["replicas"] == 3
    assert (services["worker"]["environment"]["DATABASE_URL"]
            == "postgresql+psycopg://knockout:pw@db:5432/knockout")
    assert services["web"]["environment"]["PUBLIC_BASE_URL"] == "https://quiz.example.org"
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (DEPLOY / "compose.yaml").read_text()))
    assert set(example_env()) - used == {"COMPOSE_PROJECT_NAME"}, (
        "env.example names a setting compose ignores")


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ADMIN_API_TOKEN", "ADMIN_PASSWORD",
                                     "POSTGRES_PASSWORD", "PUBLIC_BASE_URL"])
def test_compose_refuses_to_start_without_a_secret_or_the_public_address(tmp_path, missing):
    env = example_env()
    del env[missing]
    done = compose_config(tmp_path, env)
    assert done.returncode != 0 and f"set {missing}" in done.stderr


def test_compose_runs_every_part_with_the_app_config_names():
    services = compose()["services"]
    assert set(services) == {"db", "redis", "migrate", "web", "worker", "nginx"}
    known = env_names_the_app_reads() | BOTO3_NAMES
    readme = (ROOT / "README.md").read_text()
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert set(env) <= known, f"{name}: not config names: {set(env) - known}"
        assert DESIGN_NAMES <= set(env), f"{name} lacks {DESIGN_NAMES - set(env)}"
        assert all(f"`{key}`" in readme for key in set(env) - BOTO3_NAMES), (
            "a compose setting the README omits")
    assert services["db"]["image"] == "postgres:15"
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")


def test_compose_web_scales_and_starts_after_migrations():
    services = compose()["services"]
    assert services["migrate"]["command"] == ["flask", "--app", "quiz", "db", "upgrade"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}
        # --scale works
        assert "ports" not in services[name] and "container_name" not in services[name]
    assert services["web"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    assert services["worker"]["command"] == ["python", "worker.py"]
    port = services["web"]["environment"]["BIND"].rsplit(":", 1)[1]
    assert f"server web:{port} " in (DEPLOY / "nginx.conf").read_text()


def test_redis_and_nginx_settings_match_the_design():
    redis_conf = (DEPLOY / "redis.conf").read_text()
    for line in ("appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction"):
        assert re.search(rf"^{line}$", redis_conf, re.M), line
    mounts = compose()["services"]["redis"]["volumes"]
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in mounts
    nginx = (DEPLOY / "nginx.conf").read_text()
    size = re.search(r"client_max_body_size (\d+)k;", nginx).group(1)
    assert int(size) * 1024 == Config.MAX_CONTENT_LENGTH


def test_dockerfile_runs_gunicorn_as_a_non_root_user():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "pip install -r requirements.txt" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert dockerfile.rstrip().endswith('CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]')
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".env", ".venv", "instance"} <= set(ignored)  # no secrets or local data in the image

