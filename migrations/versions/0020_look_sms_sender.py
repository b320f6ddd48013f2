"""look sms sender: the SMS sender name set on the console's Look page

Revision ID: 0020_look_sms_sender
Revises: 0019_template_languages
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0020_look_sms_sender"
down_revision = "0019_template_languages"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("event_look") as batch:
        batch.add_column(sa.Column("sms_sender", sa.String(11), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("event_look") as batch:
        batch.drop_column("sms_sender")
