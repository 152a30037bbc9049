"""Inflight samples record who took them, and in which round.

Several ``nova-lite-inflight`` daemons share the probing through a tooz
hash ring (``nova_lite.inflight.ring``).  ``prober`` is the daemon that
took the sample (its member id in the group: host and process id, e.g.
``i1-4242``); ``round_no`` is the wall-clock round k, the one covering
[k * probe_interval, (k + 1) * probe_interval), or NULL for a sample of
``probe_now`` (outside the ring) and for samples stored before this
revision.

Indexes: ``(prober, created_at)`` for a prober's samples in a window (the
report's ``probers``, a prober's share over time), ``round_no`` for the
samples of one round (was every service probed once?).

Revision ID: 011
Revises: 010
"""

from alembic import op
import sqlalchemy as sa

revision = '011'
down_revision = '010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('inflight_samples') as batch:
        batch.add_column(sa.Column('prober', sa.String(255)))
        batch.add_column(sa.Column('round_no', sa.BigInteger))
        batch.create_index('ix_inflight_samples_prober_created_at',
                           ['prober', 'created_at'])
        batch.create_index('ix_inflight_samples_round_no', ['round_no'])


def downgrade():
    with op.batch_alter_table('inflight_samples') as batch:
        batch.drop_index('ix_inflight_samples_round_no')
        batch.drop_index('ix_inflight_samples_prober_created_at')
        batch.drop_column('round_no')
        batch.drop_column('prober')
