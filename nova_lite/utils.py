"""Small helpers: waiting for a condition, masking secrets in URLs.

Concurrency primitives live in ``nova_lite.concurrency``.
"""

import re
import time

from nova_lite import concurrency

_PASSWORD_IN_URL = re.compile(r'(?P<user>[/,@][^:/@,?]*):[^@/,?]*@')
# A password as a query parameter (tooz's redis sentinel_password=, a
# driver's password=).
_PASSWORD_IN_QUERY = re.compile(r'(?P<key>[?&][^=&]*password=)[^&]*',
                                re.IGNORECASE)


def wait_for(predicate, timeout, interval=0.05, what=None,
             retry_errors=(Exception,), error=TimeoutError):
    """Call ``predicate()`` until it returns a true value; return that value.

    Exceptions in ``retry_errors`` count as "not yet" (a row may not exist
    yet); the last one is named in the ``error`` raised after ``timeout``
    seconds.  Other exceptions propagate at once.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except retry_errors as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = ' (last error: %s)' % last_error if last_error else ''
            raise error('Timed out after %.1fs waiting for %s%s' % (
                timeout, what or getattr(predicate, '__name__', 'predicate'),
                detail))
        concurrency.sleep(interval)


def mask_url(url):
    """``url`` with any password replaced by ``***``; safe to log or print.

    Works for transport URLs with several hosts
    (``rabbit://u:p@h1,u:p@h2/``) and for SQLAlchemy URLs.
    """
    if not url:
        return url
    masked = _PASSWORD_IN_URL.sub(r'\g<user>:***@', str(url))
    return _PASSWORD_IN_QUERY.sub(r'\g<key>***', masked)
