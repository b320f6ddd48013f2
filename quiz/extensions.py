"""Extensions, created once here and bound to the app in create_app."""
import redis
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from rq import Queue
from sqlalchemy import MetaData

# Named constraints, so migrations can alter them on every database.
metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

db = SQLAlchemy(metadata=metadata)
migrate = Migrate()
sock = Sock()
csrf = CSRFProtect()
htmx = Htmx()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)

QUEUE_NAMES = ("forms", "notify", "default")


def get_redis() -> redis.Redis:
    """The app's Redis connection (one pool per process)."""
    return current_app.extensions["knockout_redis"]


def get_queue(name: str = "default") -> Queue:
    """One of the RQ queues: forms, notify or default."""
    return Queue(name, connection=get_redis())
