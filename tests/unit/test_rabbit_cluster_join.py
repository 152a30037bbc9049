"""How nova_lite.testing.rabbit_cluster joins a node: once more from a
reset node when its start fails (no broker needed)."""

import pytest

from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import rabbit_cluster


class FakeNode:
    """Records rabbitmqctl calls; its first ``failures`` starts fail."""

    def __init__(self, node, failures=0):
        self.node = node
        self.failures = failures
        self.calls = []

    def ctl(self, *args, check=True):
        self.calls.append(args[0])

    def start_app(self):
        self.calls.append('start_app')
        if self.failures:
            self.failures -= 1
            raise nl_fixtures.BrokerUnavailable(reason='mnesia did not start')


def test_a_join_that_starts_is_done_once():
    node = FakeNode('n2')
    rabbit_cluster.RabbitCluster._join(node, FakeNode('n1'))
    assert node.calls == ['join_cluster', 'start_app']


def test_a_failed_start_is_tried_again_from_a_reset_node(capsys):
    node = FakeNode('n2', failures=1)
    rabbit_cluster.RabbitCluster._join(node, FakeNode('n1'))
    assert node.calls == ['join_cluster', 'start_app', 'stop_app', 'reset',
                          'join_cluster', 'start_app']
    assert 'n2 did not join (' in capsys.readouterr().err


def test_a_second_failure_is_raised():
    node = FakeNode('n2', failures=2)
    with pytest.raises(nl_fixtures.BrokerUnavailable):
        rabbit_cluster.RabbitCluster._join(node, FakeNode('n1'))
