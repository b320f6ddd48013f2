"""template languages: the organizer's SMS and email wording has a version per language

Revision ID: 0019_template_languages
Revises: 0018_participant_language
Create Date: 2026-12-06

Each message_template and email_template row gets a language and the key (kind, language); the
wording edited before is the event's DEFAULT_LANGUAGE version (the language it was written for).
Down again, only that version of each kind is kept: the others are dropped. A reminder gets its
text in other languages (`texts`, JSON by language; none: every player reads `text`).
"""
from alembic import op
import sqlalchemy as sa
from flask import current_app


revision = "0019_template_languages"
down_revision = "0018_participant_language"
branch_labels = None
depends_on = None

TABLES = ("message_template", "email_template")


def _default_language() -> str:
    return current_app.config.get("DEFAULT_LANGUAGE") or "en"


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("language", sa.String(8), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET language = :language")
                   .bindparams(language=_default_language()))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("language", existing_type=sa.String(8), nullable=False)
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["kind", "language"])
    with op.batch_alter_table("reminder") as batch:
        batch.add_column(sa.Column("texts", sa.JSON(), nullable=False, server_default="{}"))


def downgrade():
    with op.batch_alter_table("reminder") as batch:
        batch.drop_column("texts")
    for table in TABLES:
        op.execute(sa.text(f"DELETE FROM {table} WHERE language <> :language")
                   .bindparams(language=_default_language()))
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["kind"])
            batch.drop_column("language")
