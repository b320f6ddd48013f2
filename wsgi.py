"""WSGI entry point for any server: `gunicorn -c gunicorn.conf.py wsgi:app`."""
from quiz import create_app

app = create_app()
