"""Capacity claims: what the scheduler has claimed on each compute host.

``compute_nodes`` gets usage counters, and ``allocations`` one row per
instance (its host and flavor amounts).  A claim raises the counters with
one conditional UPDATE (``used + requested <= capacity``) and inserts the
row in the same transaction; a release deletes the row and lowers them.

Revision ID: 007
Revises: 006
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '007'
down_revision = '006'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql',
                                      'mariadb')

USED_COLUMNS = ('vcpus_used', 'memory_mb_used', 'local_gb_used')


def upgrade():
    with op.batch_alter_table('compute_nodes') as batch:
        for name in USED_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False,
                                       server_default='0'))
    op.create_table(
        'allocations',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('vcpus', sa.Integer, nullable=False),
        sa.Column('memory_mb', sa.Integer, nullable=False),
        sa.Column('local_gb', sa.Integer, nullable=False),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime),
        sa.UniqueConstraint('instance_uuid',
                            name='uniq_allocations0instance_uuid'))
    op.create_index('ix_allocations_host', 'allocations', ['host'])


def downgrade():
    op.drop_index('ix_allocations_host', 'allocations')
    op.drop_table('allocations')
    with op.batch_alter_table('compute_nodes') as batch:
        for name in USED_COLUMNS:
            batch.drop_column(name)
