"""nova-lite-api: a subset of OpenStack's Compute API v2.1.

The WSGI app (``wsgi.build_app``) is webob and routes, as Nova's is: request
ids, JSON faults, a body size limit and authentication (``auth``) wrap a
router whose controllers are one module per resource (``servers``,
``server_actions``, ``flavors``, ``services``, ``hypervisors``,
``versions``).  Policy is oslo.policy with defaults in code
(``policies``).  ``service.APIService`` serves it (eventlet's WSGI server or
a threaded one, per the concurrency backend) beside an RPC server that
answers ``baseapi``, registers and heartbeats like every other service.
"""
