"""Printing tables and JSON for the operator tools."""

import datetime
import json
import sys


def _cell(value):
    if value is None:
        return '-'
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=' ', timespec='seconds')
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, float):
        return '%.2f' % value
    return str(value)


def format_table(columns, rows):
    """Aligned text: a header line, then one line per row (a dict)."""
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(line[i]) for line in cells])
              for i, col in enumerate(columns)]
    lines = ['  '.join(col.ljust(w) for col, w in zip(columns, widths))
             .rstrip()]
    for line in cells:
        lines.append('  '.join(c.ljust(w) for c, w in zip(line, widths))
                     .rstrip())
    return '\n'.join(lines)


def print_table(columns, rows, out=None):
    print(format_table(columns, rows), file=out or sys.stdout)


def to_json(value):
    def default(obj):
        if isinstance(obj, datetime.datetime):
            return obj.isoformat()
        raise TypeError('not JSON serializable: %r' % (obj,))
    return json.dumps(value, default=default, sort_keys=False)


def print_json(value, out=None):
    print(to_json(value), file=out or sys.stdout, flush=True)
