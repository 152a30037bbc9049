"""Summary statistics for probe phases (no numpy needed for a few
thousand samples)."""

import math


def percentile(values, pct):
    """The ``pct`` percentile (0-100) of ``values``, nearest-rank."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarize(values, percentiles=(50, 95, 99)):
    """min, avg, max and the given percentiles of the non-None values."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    summary = {'count': len(present), 'min': min(present),
               'avg': sum(present) / len(present), 'max': max(present)}
    for pct in percentiles:
        summary['p%d' % pct] = percentile(present, pct)
    return summary
