"""Gunicorn settings: gevent workers (websockets included). Override with environment variables."""
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "4000"))
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG") or None


def post_worker_init(worker):
    """Let open websockets see a graceful restart coming, so they close with 1012 and clients reconnect."""
    worker.wsgi.config["KNOCKOUT_ALIVE"] = lambda: worker.alive
