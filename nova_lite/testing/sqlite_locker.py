"""Hold SQLite's write lock from another process, as a second daemon or an
operator's ``sqlite3`` shell can::

    python -m nova_lite.testing.sqlite_locker PATH ROUNDS HOLD_SECONDS

Each round takes the lock with ``BEGIN EXCLUSIVE``, prints ``locked <time>``,
holds it ``HOLD_SECONDS``, commits, prints ``unlocked <time>`` and rests
half a second.  Tests and benchmarks use it to check that a locked database
stalls only the DB calls of a service, never its hub.
"""

import sqlite3
import sys
import time


def hold(path, rounds, seconds, rest=0.5, out=sys.stdout):
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        for _ in range(rounds):
            conn.execute('BEGIN EXCLUSIVE')
            print('locked', time.time(), file=out, flush=True)
            time.sleep(seconds)
            conn.execute('COMMIT')
            print('unlocked', time.time(), file=out, flush=True)
            time.sleep(rest)
    finally:
        conn.close()


def command(path, rounds, seconds):
    """argv to run this module as a separate process."""
    return [sys.executable, '-m', __name__, path, str(rounds), str(seconds)]


def main(argv=None):
    path, rounds, seconds = (argv or sys.argv[1:])[:3]
    hold(path, int(rounds), float(seconds))


if __name__ == '__main__':
    main()
