"""The queue inspector's broker connection on single- and multi-host
transport URLs (no broker needed: kombu connects lazily)."""

from nova_lite.inflight import queues


def test_one_host(conf):
    connection = queues.kombu_connection(
        conf, 'rabbit://u:secret@10.0.0.1:5673/vh')
    assert connection.alt == ['amqp://u:secret@10.0.0.1:5673/vh']
    assert (connection.hostname, connection.port, connection.userid,
            connection.password, connection.virtual_host) == (
        '10.0.0.1', 5673, 'u', 'secret', 'vh')
    assert connection.transport_cls == 'pyamqp'


def test_every_host_of_a_cluster_in_order(conf):
    connection = queues.kombu_connection(
        conf, 'rabbit://a:p1@h1:5672,b:p2@h2:5673,c:p3@h3/vh')
    assert connection.alt == ['amqp://a:p1@h1:5672/vh',
                              'amqp://b:p2@h2:5673/vh',
                              'amqp://c:p3@h3:5672/vh']
    assert connection.failover_strategy is not None
    # The next host after a failure is the URL's next one.
    connection.maybe_switch_next()
    assert (connection.hostname, connection.port, connection.userid) == (
        'h2', 5673, 'b')


def test_quoting_and_the_default_vhost(conf):
    connection = queues.kombu_connection(conf, 'rabbit://u:p%40ss@h1:5672/')
    assert connection.alt == ['amqp://u:p%40ss@h1:5672/%2F']
    assert (connection.password, connection.virtual_host) == ('p@ss', '/')
