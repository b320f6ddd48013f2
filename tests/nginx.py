"""Debian's nginx running deploy/nginx.conf on loopback, in front of one web node or several
(tests/test_deploy.py, tests/test_two_nodes.py)."""
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from quiz.stack import free_port

from .helpers import ROOT

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# The upstream's server line: Docker's DNS gives `web` one address per replica; here, one line per
# node, with the same options.
UPSTREAM_SERVER = re.compile(r"^(\s*)server web:8000( [^;\n]*)?;$", re.M)


def render_nginx_conf(upstreams: list[str], port: int, prefix: Path) -> str:
    """deploy/nginx.conf with loopback addresses (one upstream server per node) and paths under
    `prefix`: the only changes made to it."""
    text = (DEPLOY / "nginx.conf").read_text()
    server = UPSTREAM_SERVER.search(text)
    assert server, "deploy/nginx.conf no longer has `server web:8000 …;` in its upstream"
    indent, options = server.group(1), server.group(2) or ""
    text = UPSTREAM_SERVER.sub(
        "\n".join(f"{indent}server {address}{options};" for address in upstreams), text, count=1)
    temp_paths = "".join(f"\n    {kind}_temp_path {prefix}/{kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    swaps = {"listen 80 default_server": f"listen 127.0.0.1:{port} default_server",
             "/srv/knockout/static/": f"{ROOT / 'static'}/",
             "/var/run/nginx.pid": f"{prefix}/nginx.pid",
             "/var/log/nginx/": f"{prefix}/", "/var/cache/nginx/": f"{prefix}/",
             "http {": "http {" + temp_paths}
    for old, new in swaps.items():
        assert old in text, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    """Debian's nginx running deploy/nginx.conf on a loopback port, in front of `upstreams`
    (host:port each)."""

    def __init__(self, *upstreams: str):
        self.prefix = Path(tempfile.mkdtemp(prefix="knockout-nginx-"))
        self.prefix.chmod(0o755)  # nginx's workers drop root: they must reach their temp dirs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(render_nginx_conf(list(upstreams), self.port, self.prefix))

    def start(self) -> "Nginx":
        args = [NGINX, "-p", str(self.prefix), "-c", str(self.conf),
                "-e", str(self.prefix / "error.log")]
        checked = subprocess.run(args + ["-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(args + ["-g", "daemon off;"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert time.monotonic() < deadline and self.process.poll() is None, self.log()
                time.sleep(0.1)

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else "(no nginx error log)"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)
