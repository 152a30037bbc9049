"""nova-lite-api: flavors (seeded with Nova's historical defaults), compute
nodes (each compute's capacity), and the instance attributes the Compute
API shows (name, owner, image, flavor snapshot).

Revision ID: 006
Revises: 005
"""

import datetime

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '006'
down_revision = '005'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql',
                                      'mariadb')

# Nova's default flavors before they were dropped from its migrations:
# (flavorid, name, vcpus, memory_mb, root_gb).
DEFAULT_FLAVORS = (
    ('1', 'm1.tiny', 1, 512, 1),
    ('2', 'm1.small', 1, 2048, 20),
    ('3', 'm1.medium', 2, 4096, 40),
    ('4', 'm1.large', 4, 8192, 80),
    ('5', 'm1.xlarge', 8, 16384, 160),
)

_INSTANCE_COLUMNS = (
    ('display_name', sa.String(255)),
    ('project_id', sa.String(255)),
    ('user_id', sa.String(255)),
    ('image_ref', sa.String(255)),
    ('flavorid', sa.String(255)),
    ('flavor_name', sa.String(255)),
    ('vcpus', sa.Integer),
    ('memory_mb', sa.Integer),
    ('root_gb', sa.Integer),
)


def upgrade():
    flavors = op.create_table(
        'flavors',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('flavorid', sa.String(255), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('vcpus', sa.Integer, nullable=False),
        sa.Column('memory_mb', sa.Integer, nullable=False),
        sa.Column('root_gb', sa.Integer, nullable=False),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime),
        sa.UniqueConstraint('flavorid', name='uniq_flavors0flavorid'),
        sa.UniqueConstraint('name', name='uniq_flavors0name'))
    op.bulk_insert(flavors, [
        dict(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=memory_mb,
             root_gb=root_gb, created_at=_utcnow())
        for flavorid, name, vcpus, memory_mb, root_gb in DEFAULT_FLAVORS])
    op.create_table(
        'compute_nodes',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('hypervisor_type', sa.String(255), nullable=False),
        sa.Column('vcpus', sa.Integer, nullable=False),
        sa.Column('memory_mb', sa.Integer, nullable=False),
        sa.Column('local_gb', sa.Integer, nullable=False),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime),
        sa.UniqueConstraint('host', name='uniq_compute_nodes0host'))
    with op.batch_alter_table('instances') as batch:
        for name, type_ in _INSTANCE_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    op.create_index('ix_instances_project_id', 'instances', ['project_id'])


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
