"""Reading a daemon's /metrics, for the benchmarks (prometheus-client's
own parser of the text format)."""

import dataclasses
import urllib.request

from prometheus_client import parser


@dataclasses.dataclass
class Histogram:
    """One histogram's series summed over the label sets that matched."""

    count: float = 0.0
    sum: float = 0.0
    # Cumulative counts by upper bound (a float; +Inf included).
    buckets: dict = dataclasses.field(default_factory=dict)

    def __sub__(self, other):
        return Histogram(
            self.count - other.count, self.sum - other.sum,
            {le: n - other.buckets.get(le, 0.0)
             for le, n in self.buckets.items()})

    def above(self, bound):
        """Observations greater than ``bound`` (a bucket's upper bound)."""
        return self.count - self.buckets.get(float(bound), 0.0)

    @property
    def mean(self):
        return self.sum / self.count if self.count else None


def get(address, timeout=5):
    """The text of http://ADDRESS/metrics."""
    with urllib.request.urlopen('http://%s/metrics' % address,
                                timeout=timeout) as answer:
        return answer.read().decode('utf-8')


def histogram(text, name, **labels):
    """Histogram ``name`` (without ``_bucket`` etc.) in ``text``, summed
    over the series whose labels include ``labels``."""
    result = Histogram()
    for family in parser.text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if sample.name == name + '_count':
                result.count += sample.value
            elif sample.name == name + '_sum':
                result.sum += sample.value
            elif sample.name == name + '_bucket':
                le = float(sample.labels['le'])
                result.buckets[le] = result.buckets.get(le, 0.0) + \
                    sample.value
    return result
