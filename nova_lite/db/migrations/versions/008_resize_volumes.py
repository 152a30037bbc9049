"""Resize and volumes: ``migrations`` (one row per resize, Nova's name),
``volumes`` (the small volume table behind os-volumes and
os-volume_attachments), and ``conductor_work.migration_uuid`` (the
resize a work drives).

A resize's claim on its target host is an ``allocations`` row whose
consumer (``instance_uuid``) is the migration's ``uuid``, as Nova's
placement keys it: the instance's own claim stays on its source until
the resize is confirmed.

Revision ID: 008
Revises: 007
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '008'
down_revision = '007'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql',
                                      'mariadb')


def upgrade():
    op.create_table(
        'migrations',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('source_host', sa.String(255), nullable=False),
        sa.Column('dest_host', sa.String(255)),
        sa.Column('old_flavor', sa.Text, nullable=False),
        sa.Column('new_flavor', sa.Text, nullable=False),
        sa.Column('status', sa.String(32), nullable=False),
        sa.Column('attempts', sa.Integer, nullable=False,
                  server_default='0'),
        sa.Column('failed_hosts', sa.Text),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime),
        sa.UniqueConstraint('uuid', name='uniq_migrations0uuid'))
    op.create_index('ix_migrations_instance_uuid', 'migrations',
                    ['instance_uuid'])
    op.create_index('ix_migrations_status', 'migrations', ['status'])
    op.create_table(
        'volumes',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('display_name', sa.String(255)),
        sa.Column('display_description', sa.String(255)),
        sa.Column('size', sa.Integer, nullable=False),
        sa.Column('status', sa.String(32), nullable=False),
        sa.Column('project_id', sa.String(255)),
        sa.Column('instance_uuid', sa.String(36)),
        sa.Column('device', sa.String(255)),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime))
    op.create_index('ix_volumes_project_id', 'volumes', ['project_id'])
    op.create_index('ix_volumes_instance_uuid', 'volumes', ['instance_uuid'])
    with op.batch_alter_table('conductor_work') as batch:
        batch.add_column(sa.Column('migration_uuid', sa.String(36)))


def downgrade():
    with op.batch_alter_table('conductor_work') as batch:
        batch.drop_column('migration_uuid')
    op.drop_index('ix_volumes_instance_uuid', 'volumes')
    op.drop_index('ix_volumes_project_id', 'volumes')
    op.drop_table('volumes')
    op.drop_index('ix_migrations_status', 'migrations')
    op.drop_index('ix_migrations_instance_uuid', 'migrations')
    op.drop_table('migrations')
