"""nova_lite.utils helpers that have no better home in another test."""

import pytest

from nova_lite import utils


def _counter(results):
    """A predicate returning ``results`` one by one (raising exceptions)."""
    calls = []

    def predicate():
        result = results[len(calls)]
        calls.append(result)
        if isinstance(result, Exception):
            raise result
        return result

    return predicate, calls


def test_wait_for_returns_the_first_true_value():
    predicate, calls = _counter([None, 0, {'id': 7}])
    assert utils.wait_for(predicate, 5, interval=0) == {'id': 7}
    assert len(calls) == 3


def test_wait_for_retries_listed_errors_and_names_the_last():
    predicate, _ = _counter([KeyError('row')] * 1000)
    with pytest.raises(LookupError) as info:
        utils.wait_for(predicate, 0.05, interval=0.01, what='the row',
                       retry_errors=(KeyError,), error=LookupError)
    assert 'waiting for the row' in str(info.value)
    assert "last error: 'row'" in str(info.value)


def test_wait_for_propagates_unlisted_errors_at_once():
    predicate, calls = _counter([None, RuntimeError('daemon exited'), True])
    with pytest.raises(RuntimeError, match='daemon exited'):
        utils.wait_for(predicate, 5, interval=0, retry_errors=())
    assert len(calls) == 2
