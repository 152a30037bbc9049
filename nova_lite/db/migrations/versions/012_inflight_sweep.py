"""Inflight samples record what the sweep of a cloud saw of each service.

A sample of a real Nova service is a ping: its round trip (``total``)
only, the other phases NULL (not measured; they always were nullable).

- ``method``: how it was probed, ``inflight`` (the four-way split) or
  ``ping`` (round trip only); NULL on older rows (all inflight).
- ``up`` and ``heartbeat_age``: the service list's verdict by heartbeat,
  and the heartbeat's age in seconds, when the service was probed.
- ``queue_messages``, ``queue_unacked`` and ``queue_consumers``: its
  ``topic.host`` queue's ready and unacknowledged messages (NULL when not
  known: only RabbitMQ's management API counts them) and consumers, read
  just after the round's probes.
- ``flags``: the round's verdicts, comma-separated (``unreachable``,
  ``no_consumers``, ``slow``; NULL for none).

Revision ID: 012
Revises: 011
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '012'
down_revision = '011'
branch_labels = None
depends_on = None

Float = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), 'mysql',
                                'mariadb')


def upgrade():
    with op.batch_alter_table('inflight_samples') as batch:
        batch.add_column(sa.Column('method', sa.String(16)))
        batch.add_column(sa.Column('up', sa.Boolean))
        batch.add_column(sa.Column('heartbeat_age', Float))
        batch.add_column(sa.Column('queue_messages', sa.Integer))
        batch.add_column(sa.Column('queue_unacked', sa.Integer))
        batch.add_column(sa.Column('queue_consumers', sa.Integer))
        batch.add_column(sa.Column('flags', sa.String(255)))


def downgrade():
    with op.batch_alter_table('inflight_samples') as batch:
        for column in ('flags', 'queue_consumers', 'queue_unacked',
                       'queue_messages', 'heartbeat_age', 'up', 'method'):
            batch.drop_column(column)
