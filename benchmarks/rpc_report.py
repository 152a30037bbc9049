"""The RPC benchmark's tables and checks (``rpc_bench.py`` measures).

``samples`` maps a stack's label to its per-round results (dicts keyed as
in ``COLUMNS``); ``results`` maps it to the medians over those rounds.  A
stack left out of the run (``--stacks``) leaves out what needs it.
"""

import statistics

import backends  # benchmarks/, next to this file

RAW = 'raw py-amqp'
OSLO = 'oslo.messaging (%s)'
NOVA = 'nova_lite (%s)'
NOVA_METRICS = 'nova_lite +metrics (%s)'

# The threading backend's target, on throughput (issue 9).
THREADING_TARGET = 0.9

# What the metrics may cost (issue 17), as nova_lite +metrics / nova_lite
# by medians: (key, title, the ratio's bound, 'max' or 'min').
METRICS_TARGETS = (
    ('cpu', 'srv us/call', 1.03, 'max'),
    ('ccpu', 'cli us/call', 1.03, 'max'),
    ('p50', 'call p50 ms', 1.03, 'max'),
    ('conc', 'calls/s @%d', 0.97, 'min'),
    ('casts', 'casts/s', 0.97, 'min'),
)
# Shown beside them, without a target: CPU in the concurrent phase (2.5x
# the calls of the sequential one, so a steadier figure) and p99.
METRICS_EXTRA = (
    ('cpu_conc', 'srv us/c@%d'),
    ('ccpu_conc', 'cli us/c@%d'),
    ('p99', 'call p99 ms'),
)


def columns(args):
    return [('p50', 'call p50 ms'), ('p99', 'call p99 ms'),
            ('max', 'call max ms'),
            ('conc', 'calls/s @%d' % args.concurrency),
            ('casts', 'casts/s'), ('cpu', 'srv us/call'),
            ('ccpu', 'cli us/call'),
            ('bcpu', 'brk us/c@%d' % args.concurrency)]


def _title(title, args):
    return title % args.concurrency if '%d' in title else title


def fmt(value):
    if value is None:
        return 'n/a'
    return '%.2f' % value if value < 100 else '%.0f' % value


def medians(samples):
    return {name: {key: statistics.median(r[key] for r in rounds)
                   for key in rounds[0] if key not in ('pool_warnings',
                                                       'scrapes')}
            for name, rounds in samples.items()}


def _round_ratios(samples, numerator, denominator, key):
    return [num[key] / den[key] for num, den in zip(samples[numerator],
                                                   samples[denominator])]


def print_table(results, pool_warnings, args):
    cols = columns(args)
    header = '%-32s' % 'stack' + ''.join('%14s' % title for _, title in cols)
    print()
    print('RPC benchmark: %d sequential calls after %d warm-up, %d calls '
          'from %d concurrent callers (greenthreads; native threads under '
          'threading), %d casts, one RabbitMQ broker' % (
              args.calls, args.warmup, args.conc_calls, args.concurrency,
              args.casts))
    print(header)
    print('-' * len(header))
    for name, result in results.items():
        print('%-32s' % name + ''.join(
            '%14s' % fmt(result.get(key)) for key, _ in cols))
    print('(medians of %d rounds; "Connection pool limit exceeded" warnings: '
          '%s)' % (args.rounds, ', '.join(
              '%s %d' % (name, count)
              for name, count in pool_warnings.items())))
    pairs = [(backend, label) for label in (NOVA, NOVA_METRICS)
             for backend in backends.BACKENDS
             if label % backend in results and OSLO % backend in results]
    if not pairs:
        return
    print()
    print('ratios to raw oslo.messaging on the same backend:')
    print('  %-14s' % '' + ''.join('%26s' % (label % backend)
                                   for backend, label in pairs))
    for key, title in cols:
        ratios = []
        for backend, label in pairs:
            nova, base = results[label % backend], results[OSLO % backend]
            ratios.append('%.3fx' % (nova[key] / base[key])
                          if nova.get(key) and base.get(key) else 'n/a')
        print('  %-14s' % title + ''.join('%26s' % r for r in ratios))


def print_round_ratios(samples, args):
    """nova_lite / oslo per round and backend: the spread the medians
    hide."""
    backends_run = [b for b in backends.BACKENDS
                    if NOVA % b in samples and OSLO % b in samples]
    if not backends_run:
        return
    print()
    print('nova_lite / oslo.messaging on the same backend, in each round '
          '(the stacks take turns, so a round shares the machine\'s '
          'conditions):')
    for backend in backends_run:
        for key, title in (('p50', 'call p50'),
                           ('conc', 'calls/s @%d' % args.concurrency),
                           ('casts', 'casts/s')):
            ratios = _round_ratios(samples, NOVA % backend, OSLO % backend,
                                   key)
            print('  %-10s %-14s %s' % (backend, title, '  '.join(
                '%.3f' % r for r in ratios)))


def print_backend_ratio(samples, args):
    """nova_lite threading / eventlet throughput, per round and median,
    against the target; the checks (none when a stack is missing)."""
    if not all(NOVA % b in samples for b in backends.BACKENDS):
        return []
    print()
    print('nova_lite (threading) / nova_lite (eventlet), per round and '
          'median; target: threading-backend throughput >= %.1fx '
          'eventlet\'s' % THREADING_TARGET)
    met = True
    for key, title in (('conc', 'calls/s @%d' % args.concurrency),
                       ('casts', 'casts/s')):
        ratios = _round_ratios(samples, NOVA % backends.THREADING,
                               NOVA % backends.EVENTLET, key)
        median = statistics.median(ratios)
        met = met and median >= THREADING_TARGET
        print('  %-14s rounds %s   median %.3fx  [%s]' % (
            title, '  '.join('%.3f' % r for r in ratios), median,
            'met' if median >= THREADING_TARGET else 'MISSED'))
    return [('threading-backend throughput >= %.1fx eventlet\'s (median '
             'ratios above)' % THREADING_TARGET, met)]


def oslo_checks(results, pool_warnings):
    """nova_lite (with and without metrics) against raw oslo.messaging."""
    checks = []
    for backend in backends.BACKENDS:
        base = results.get(OSLO % backend)
        for label in (NOVA, NOVA_METRICS):
            name = label % backend
            nova = results.get(name)
            if nova is None or base is None:
                continue
            checks += [
                ('%s call p50 <= 1.05x oslo' % name,
                 nova['p50'] <= 1.05 * base['p50']),
                ('%s call max <= 10 ms' % name, nova['max'] <= 10.0),
                ('%s 50-concurrent >= 1.0x oslo' % name,
                 nova['conc'] >= 1.0 * base['conc']),
                ('no "Connection pool limit exceeded" warnings in %s' % name,
                 pool_warnings[name] == 0),
                ('%s casts >= 0.95x oslo' % name,
                 nova['casts'] >= 0.95 * base['casts']),
            ]
    return checks


def print_metrics_overhead(samples, results, args):
    """nova_lite +metrics against nova_lite, per backend: both medians,
    their ratio against the target, and the ratio in each round (the
    two run next to each other in a round).  Returns the checks."""
    checks = []
    for backend in backends.BACKENDS:
        base_name, name = NOVA % backend, NOVA_METRICS % backend
        if base_name not in samples or name not in samples:
            continue
        base, metrics = results[base_name], results[name]
        print()
        print('what the metrics cost on %s: %s / %s (medians of %d rounds; '
              'then the ratio in each round)' % (
                  backend, name, base_name, args.rounds))
        print('  %-14s %12s %12s %9s %10s   %s' % (
            '', 'nova_lite', '+metrics', 'ratio', 'target', 'rounds'))
        rows = [(key, _title(title, args), bound, how)
                for key, title, bound, how in METRICS_TARGETS]
        rows += [(key, _title(title, args), None, None)
                 for key, title in METRICS_EXTRA]
        for key, title, bound, how in rows:
            if key not in base or key not in metrics:
                continue
            ratio = metrics[key] / base[key]
            if bound is None:
                target = ''
            else:
                ok = ratio <= bound if how == 'max' else ratio >= bound
                target = '%s%.2fx %s' % ('<=' if how == 'max' else '>=',
                                         bound, 'met' if ok else 'MISSED')
                checks.append(('%s: %s %s %.2fx nova_lite\'s (median)' % (
                    name, title, '<=' if how == 'max' else '>=', bound), ok))
            print('  %-14s %12s %12s %8.3fx %-15s %s' % (
                title, fmt(base[key]), fmt(metrics[key]), ratio, target,
                '  '.join('%.3f' % r for r in _round_ratios(
                    samples, name, base_name, key))))
        scrapes = [r.get('scrapes') or {} for r in samples[name]]
        print('  /metrics scraped once per %.1f s: %s scrapes, %d errors, '
              '%.0f kB per scrape; echo calls counted by the server\'s '
              'histogram vs sent: %s' % (
                  args.scrape_interval,
                  '+'.join(str(s.get('scrapes', 0)) for s in scrapes),
                  sum(s.get('errors', 0) for s in scrapes),
                  statistics.median(
                      s['bytes'] / s['scrapes'] for s in scrapes
                      if s.get('scrapes')) / 1024.0 if any(
                          s.get('scrapes') for s in scrapes) else 0.0,
                  ', '.join('%d/%d' % (s.get('echo_counted', -1),
                                       s.get('echo_sent', -1))
                            for s in scrapes)))
        checks.append(('%s: every echo call counted on /metrics' % name,
                       all(s.get('echo_counted') == s.get('echo_sent')
                           for s in scrapes)))
    return checks


# rpc_overhead.py's pieces: (key, title, side).
PIECES = (
    ('client_wrap', 'client: TimedClient, observe_client', 'client'),
    ('stamp_encode', 'client: the stamp, JSON-encoded', 'client'),
    ('receipt', 'server: receipt stamp', 'server'),
    ('dispatch', 'server: dispatch timed, observe_server', 'server'),
    ('stamp_decode', 'server: the stamp, JSON-decoded', 'server'),
)


def print_pieces(results, pieces, args):
    """What the metrics add, piece by piece (``pieces``: rpc_overhead.py's
    JSON per backend), and what it comes to against the full stack's
    medians: per message, and the endpoint's fixed cost (watchdog,
    scrapes) spread over the sequential phase's calls."""
    run = [b for b in backends.BACKENDS if b in pieces]
    print()
    print('what the metrics add, piece by piece (rpc_overhead.py: in one '
          'process, CPU us, best of 25):')
    print('  %-42s' % '' + ''.join('%12s' % b for b in run))
    for key, title, _ in PIECES:
        print('  %-42s' % title + ''.join('%12.2f' % pieces[b][key]
                                          for b in run))
    totals = {b: {side: sum(pieces[b][key] for key, _, s in PIECES
                            if s == side) for side in ('client', 'server')}
              for b in run}
    for side in ('client', 'server'):
        print('  %-42s' % ('%s, per call' % side) + ''.join(
            '%12.2f' % totals[b][side] for b in run))
    print('  %-42s' % 'watchdog, ms CPU per s' + ''.join(
        '%12.2f' % pieces[b]['watchdog'] for b in run))
    print('  %-42s' % 'rendering /metrics, ms per scrape' + ''.join(
        '%12.2f' % pieces[b]['scrape'] for b in run))
    for b in run:
        base = results.get(NOVA % b)
        if not base or 'seq_rate' not in base:
            continue
        endpoint = ((pieces[b]['watchdog'] + pieces[b]['scrape'] /
                     args.scrape_interval) * 1000.0 / base['seq_rate'])
        print('  %s: client %.2f us = %.2f%% of nova_lite\'s %.0f us per '
              'call; server %.2f us + endpoint %.2f us (%.0f calls/s) = '
              '%.2f%% of %.0f us' % (
                  b, totals[b]['client'],
                  100.0 * totals[b]['client'] / base['ccpu'], base['ccpu'],
                  totals[b]['server'], endpoint, base['seq_rate'],
                  100.0 * (totals[b]['server'] + endpoint) / base['cpu'],
                  base['cpu']))


def print_checks(checks):
    print()
    for title, ok in checks:
        print('  [%s] %s' % ('met' if ok else 'MISSED', title))
