"""nova_lite: a small Nova-style control plane over RabbitMQ."""
