"""The notifier's reconnections: oslo.messaging's "forever" (-1) is made a
count kombu honours (see ``rpc._retrying_forever``); an explicit bound is
kept."""

import pytest

from nova_lite import rpc


@pytest.fixture
def notifier_retry(request, conf):
    rpc.cleanup()
    # The first Notifier registers [oslo_messaging_notifications].
    rpc.init(conf)
    if request.param is not None:
        rpc.cleanup()
        conf.set_override('retry', request.param,
                          group='oslo_messaging_notifications')
        rpc.init(conf)
    yield rpc.get_notifier('compute.test').retry
    rpc.cleanup()
    if request.param is not None:
        conf.clear_override('retry', group='oslo_messaging_notifications')


@pytest.mark.parametrize('notifier_retry', [None], indirect=True)
def test_forever_becomes_a_count(notifier_retry):
    # oslo.messaging's default is -1, which kombu would read as "no retry"
    # for a new connection.
    assert notifier_retry == rpc.NOTIFY_RETRY_FOREVER


@pytest.mark.parametrize('notifier_retry', [3, 0], indirect=True)
def test_an_explicit_bound_is_kept(notifier_retry, request):
    assert notifier_retry == request.node.callspec.params['notifier_retry']
