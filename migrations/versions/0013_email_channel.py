"""email beside SMS: a message's channel, room for an address, subject and HTML; email wording;
a player's email opt-out

Revision ID: 0013_email_channel
Revises: 0012_confirmation_owed
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0013_email_channel"
down_revision = "0012_confirmation_owed"
branch_labels = None
depends_on = None


def upgrade():
    # Every message so far was an SMS.
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=10), server_default="sms",
                                      nullable=False))
        batch_op.add_column(sa.Column("subject", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("html", sa.Text(), nullable=True))
        batch_op.alter_column("to", existing_type=sa.String(length=20),
                              type_=sa.String(length=254), existing_nullable=False)
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_opted_out_at", sa.DateTime(), nullable=True))
    op.create_table(
        "email_template",
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_email_template")),
    )


def downgrade():
    op.drop_table("email_template")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("email_opted_out_at")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.alter_column("to", existing_type=sa.String(length=254),
                              type_=sa.String(length=20), existing_nullable=False)
        batch_op.drop_column("html")
        batch_op.drop_column("subject")
        batch_op.drop_column("channel")
