"""The RQ worker: `python worker.py` works the links, forms, notify and default queues (in that
order), with RQ's scheduler."""
from quiz import create_app
from quiz.worker import run_worker

if __name__ == "__main__":
    app = create_app()
    with app.app_context():
        run_worker()
