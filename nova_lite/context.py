"""The request context that travels with every RPC message."""

from oslo_context import context


class RequestContext(context.RequestContext):
    """An oslo.context RequestContext; ``request_id`` follows each call."""


def get_admin_context():
    """A context for service-internal work, with a fresh request_id."""
    return RequestContext(is_admin=True, overwrite=False)


def from_dict(values):
    return RequestContext.from_dict(values)
