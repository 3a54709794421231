"""Initial schema: sequences (+ tags), encoders, embeddings, index versions, jobs (+ items).

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""
from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "encoders",
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("checkpoint_hash", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_path", sa.String(length=1024), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        _timestamp("created"),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_encoders")),
    )
    op.create_table(
        "sequences",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("collection", sa.String(length=128), nullable=True),
        sa.Column("season", sa.String(length=64), nullable=True),
        sa.Column("model_id", sa.String(length=128), nullable=True),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("skeleton", sa.String(length=32), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        _timestamp("created"),
        _timestamp("updated"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequences")),
    )
    for column in ("collection", "label", "model_id", "season"):
        op.create_index(op.f(f"ix_sequences_{column}"), "sequences", [column], unique=False)

    op.create_table(
        "sequence_tags",
        sa.Column("sequence_id", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"],
                                name=op.f("fk_sequence_tags_sequence_id_sequences"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sequence_id", "tag", name=op.f("pk_sequence_tags")),
    )
    op.create_index(op.f("ix_sequence_tags_tag"), "sequence_tags", ["tag"], unique=False)

    op.create_table(
        "embeddings",
        sa.Column("sequence_id", sa.String(length=255), nullable=False),
        sa.Column("encoder_version", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("shard", sa.String(length=512), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        _timestamp("created"),
        sa.ForeignKeyConstraint(["encoder_version"], ["encoders.version"],
                                name=op.f("fk_embeddings_encoder_version_encoders"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"],
                                name=op.f("fk_embeddings_sequence_id_sequences"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sequence_id", "encoder_version", name=op.f("pk_embeddings")),
    )
    op.create_index("ix_embeddings_encoder_version_shard", "embeddings", ["encoder_version", "shard"], unique=False)

    op.create_table(
        "index_versions",
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("encoder_version", sa.String(length=128), nullable=False),
        sa.Column("spec", sa.String(length=256), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        _timestamp("created"),
        _timestamp("verified_at", nullable=True),
        _timestamp("promoted_at", nullable=True),
        sa.CheckConstraint("status IN ('building', 'verified', 'live', 'retired', 'failed')",
                           name=op.f("ck_index_versions_status_valid")),
        sa.ForeignKeyConstraint(["encoder_version"], ["encoders.version"],
                                name=op.f("fk_index_versions_encoder_version_encoders"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_index_versions")),
    )
    op.create_index(op.f("ix_index_versions_encoder_version"), "index_versions", ["encoder_version"], unique=False)
    # At most one live version, enforced by the database itself.
    op.create_index("uq_index_versions_one_live", "index_versions", ["status"], unique=True,
                    sqlite_where=sa.text("status = 'live'"), postgresql_where=sa.text("status = 'live'"))

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("encoder_version", sa.String(length=128), nullable=True),
        sa.Column("index_version", sa.String(length=128), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("error_log", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        _timestamp("heartbeat"),
        _timestamp("started"),
        _timestamp("finished", nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed', 'interrupted')",
                           name=op.f("ck_jobs_status_valid")),
        sa.ForeignKeyConstraint(["encoder_version"], ["encoders.version"],
                                name=op.f("fk_jobs_encoder_version_encoders"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_kind_status", "jobs", ["kind", "status"], unique=False)

    op.create_table(
        "job_items",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("sequence_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("updated"),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed', 'skipped')",
                           name=op.f("ck_job_items_status_valid")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_items_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "sequence_id", name=op.f("pk_job_items")),
    )
    op.create_index("ix_job_items_job_id_status", "job_items", ["job_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_table("job_items")
    op.drop_table("jobs")
    op.drop_table("index_versions")
    op.drop_table("embeddings")
    op.drop_table("sequence_tags")
    op.drop_table("sequences")
    op.drop_table("encoders")
