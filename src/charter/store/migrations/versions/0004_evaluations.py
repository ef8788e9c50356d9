"""Evaluation runs and the red-team targets models declare.

Revision ID: 0004_evaluations
Revises: 0003_gates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_evaluations"
down_revision = "0003_gates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_evaluation_runs_version", "evaluation_runs", ["version_id"])
    op.create_table(
        "model_targets",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.String(32), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """CREATE TRIGGER evaluation_runs_append_only BEFORE UPDATE OR DELETE
               ON evaluation_runs FOR EACH ROW
               EXECUTE FUNCTION charter_refuse('evaluation_runs is append-only')"""
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"""CREATE TRIGGER evaluation_runs_no_{action.lower()} BEFORE {action}
                    ON evaluation_runs
                    BEGIN SELECT RAISE(ABORT, 'evaluation_runs is append-only'); END"""
            )


def downgrade() -> None:
    op.drop_table("model_targets")
    op.drop_table("evaluation_runs")
