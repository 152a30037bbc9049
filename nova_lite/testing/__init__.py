"""Test helpers for nova_lite and for services built on it.

- ``fixtures.ConfFixture``: a parsed config with test-friendly values.
- ``fixtures.RabbitVhost``: a fresh vhost and user on a real broker.
- ``services.ServiceFactory``: in-process services and daemon processes,
  always stopped at cleanup.
- ``waiters``: wait for a condition, a handled cast, or a service up/down.
- ``scrape``: a daemon's ``/metrics`` (parsed), ``/health`` and probes.
- ``rabbit_node.RabbitNode``: a private RabbitMQ node on loopback, for
  tests that stop the broker or build a cluster.
- ``rabbit_cluster.RabbitCluster``: a 3-node RabbitMQ cluster on loopback
  (multi-host ``url``, ``leader_of(queue)``, ``node.kill()``).
- ``prometheus.PrometheusServer``: a real Prometheus scraping the daemons
  of a file_sd file (``nova-lite-manage metrics targets --output``), with
  PromQL helpers that wait for a value.
- ``nova_schema``: SQLite (or any SQL) databases shaped like a Nova
  cloud's (cell_mappings, aggregates, services), for the Nova service
  source without installing Nova.
- ``nova_cloud.NovaCloud``: a real Nova 34 on loopback (conductor,
  scheduler, compute on the fake driver, nova-api, placement) from a cached
  venv (``nova_venv``), on SQLite and a vhost of its own.
"""
