"""WSGI entry point for any server: `gunicorn -c gunicorn.conf.py wsgi:app`."""
from quiz import create_app

# A web process gathers what its requests' commits owe and sends it in batches (quiz/effects.py).
app = create_app(batch_effects=True)
