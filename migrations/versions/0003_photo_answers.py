"""photo answers: a kind on every question, and the photos sent for photo questions

Revision ID: 0003_photo_answers
Revises: 0002_checkin_helpdesk
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa


revision = "0003_photo_answers"
down_revision = "0002_checkin_helpdesk"
branch_labels = None
depends_on = None


def upgrade():
    # Existing questions are multiple choice: the server default fills them in.
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), server_default="choice",
                                      nullable=False))

    op.create_table(
        "photo_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("challenge_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=80), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenge.id"],
                                name=op.f("fk_photo_answer_challenge_id_challenge"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"],
                                name=op.f("fk_photo_answer_participant_id_participant"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["question_id"], ["question.id"],
                                name=op.f("fk_photo_answer_question_id_question"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_photo_answer_submission_id_submission"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photo_answer")),
        sa.UniqueConstraint("submission_id", "question_id",
                            name=op.f("uq_photo_answer_submission_id_question_id")),
    )
    with op.batch_alter_table("photo_answer", schema=None) as batch_op:
        batch_op.create_index("ix_photo_answer_challenge_status", ["challenge_id", "status"],
                              unique=False)


def downgrade():
    with op.batch_alter_table("photo_answer", schema=None) as batch_op:
        batch_op.drop_index("ix_photo_answer_challenge_status")
    op.drop_table("photo_answer")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_column("kind")
