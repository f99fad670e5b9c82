#!/usr/bin/python3
"""Peak memory of `attn run` in batch mode: a 1,000-line batch against a
100,000-line batch, for every output (issue 9: constant-memory batches).

    bench/batch_rss.py ATTN_EXE SOURCE_ROOT [--lines N] [--small S] [--all] [--models A,B]
                       [--jobs J] [--keep]

Each case runs the same flags on the first S lines (default N / 100) and on
the first N lines (default 100,000) of one generated batch, and measures the peak
RSS of the attn process with /usr/bin/time -f %M (the wait4 of a process that
Python forks would report Python's own peak: Linux carries the peak of the
memory image that exec replaces). PASS: the N-line peak is at most 10% above
the S-line peak. Exit status 1 when a case fails or attn misbehaves, 77 (skip)
without /usr/bin/time.

The batch (seeded, the same every run): lines of 1 word (one in five: 2
words; ids with --ids-input, SOURCE<TAB>TARGET for the translator), short so
that the long batch stays quick; line 1 of every 10,000 has max_seq_len
tokens, so that both batches hold the longest shape; line 50 of
every 100 is bad (no tokens, too many tokens, an id outside the vocabulary, no
tab), so that the error path runs 1,000 times in the long batch and must not
keep anything either. Outputs go to files in a temporary folder, removed after
each run.
"""
import argparse
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

TIME = '/usr/bin/time'
SETARCH = '/usr/bin/setarch'
BOUND = 1.10


def no_aslr():
    """setarch -R as a prefix where it works: with address randomization the
    peak of one command moves by up to 6% from run to run (where the heap,
    the stack and the mappings fall on pages); without it, not at all."""
    try:
        ok = subprocess.call([SETARCH, '-R', '/bin/true']) == 0
    except OSError:
        ok = False
    return [SETARCH, '-R'] if ok else []


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown'


def read_config(root, model):
    import json
    with open(os.path.join(root, 'models', model, 'config.json')) as f:
        cfg = json.load(f)
    with open(os.path.join(root, 'models', model, cfg['tokenizer']['vocab'])) as f:
        vocab = [w for w in f.read().split('\n') if w]
    return cfg, vocab


class Batch:
    """The generated lines of one model and input kind."""

    def __init__(self, cfg, vocab, ids, pair, seed):
        self.rng = random.Random(seed)
        tok = cfg['tokenizer']
        special = {tok.get('unk'), tok.get('bos'), tok.get('eos')}
        self.words = [w for w in vocab if w not in special and w.isalpha()]
        self.index = {w: i for i, w in enumerate(vocab)}
        self.vocab_size = cfg['vocab_size']
        self.ids, self.pair = ids, pair
        # the longest sequence a line may give (the tokenizer adds BOS when the model has one)
        self.longest = cfg['max_seq_len'] - (1 if tok.get('bos') else 0)

    def side(self, n, bad=False):
        words = [self.rng.choice(self.words) for _ in range(n)]
        if not self.ids:
            return ' '.join(words)
        ids = [self.index[w] for w in words]
        if bad:
            ids[-1] = self.vocab_size  # one past the vocabulary
        return ','.join(map(str, ids))

    def line(self, i):
        """Line i (from 0) and whether it is bad."""
        if i % 100 == 50:
            kind = (i // 100) % 2
            if self.pair and kind == 0:
                return self.side(2), True                          # no tab
            if self.ids and kind == 0:
                return self.side(2, bad=True), True                # unknown id
            if kind == 0:
                return '', True                                    # no tokens
            n = self.longest + 1                                   # too many tokens
            return (self.side(1) + '\t' + self.side(n) if self.pair else self.side(n)), True
        n = self.longest if i % 10000 == 1 else 1 if self.rng.random() < 0.8 else 2
        if self.pair:
            return self.side(n) + '\t' + self.side(n), False
        return self.side(n), False

    def write(self, path, n):
        bad = 0
        with open(path, 'w') as f:
            for i in range(n):
                text, is_bad = self.line(i)
                bad += is_bad
                f.write(text + '\n')
        return bad


def run_case(prefix, exe, config, flags, input_path, stdout_path, tmp, expect_bad):
    """Runs attn once; returns (peak RSS in KB, CPU seconds, output bytes)."""
    rss_path = os.path.join(tmp, 'rss.txt')
    err_path = os.path.join(tmp, 'stderr.txt')
    cmd = prefix + [TIME, '-f', '%M %U %S', '-o', rss_path, exe, 'run', '--config', config] + flags
    with open(input_path, 'rb') as fin, open(stdout_path, 'wb') as fout, \
            open(err_path, 'wb') as ferr:
        status = subprocess.call(cmd, stdin=fin, stdout=fout, stderr=ferr)
    with open(err_path, 'rb') as f:
        messages = f.read().decode('utf-8', 'replace').splitlines()
    with open(rss_path) as f:
        lines = [l for l in f.read().split('\n') if l.strip()]
    want = 1 if expect_bad else 0
    if status != want or len(messages) != expect_bad or \
            any(not m.startswith('attn: standard input line ') for m in messages):
        raise RuntimeError('%s: exit %d (expected %d), %d messages (expected %d): %s' % (
            ' '.join(cmd[len(prefix) + 5:]), status, want, len(messages), expect_bad,
            messages[:3]))
    size = sum(os.path.getsize(os.path.join(tmp, n)) for n in os.listdir(tmp)
               if n.startswith('out'))
    for n in os.listdir(tmp):
        if n.startswith('out'):
            os.remove(os.path.join(tmp, n))
    rss, user, system = lines[-1].split()
    return int(rss), float(user) + float(system), size


ALL_THREE = ['--maps', 'out-maps.csv', '--context', 'out-ctx.csv', '--top-k', '3',
             '--predictions', 'out-pred.csv']


def cases(models, everything):
    """(model, case name, flags, ids input); output paths are names in the
    case's temporary folder. The last two only with --all."""
    out = []
    m = 'tiny-decoder'
    if m in models:
        out += [
            (m, 'maps', ['--maps', 'out-maps.csv'], False),
            (m, 'context', ['--context', 'out-ctx.csv'], False),
            (m, 'predictions', ['--top-k', '3', '--predictions', 'out-pred.csv'], False),
            (m, 'view', ['--top-k', '3'], False),
            (m, 'all three', ALL_THREE, False),
        ]
    for m in ('tiny-encoder', 'tiny-translator'):
        if m in models:
            out.append((m, 'all three', ALL_THREE, False))
    if everything and 'tiny-decoder' in models:
        out += [('tiny-decoder', 'all three, ids', ['--ids-input'] + ALL_THREE, True),
                ('tiny-decoder', 'all three to -', ['--maps', '-', '--context', '-', '--top-k',
                                                    '3', '--predictions', '-'], False)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('attn')
    ap.add_argument('root')
    ap.add_argument('--lines', type=int, default=100000, help='the long batch (100000)')
    ap.add_argument('--small', type=int, help='the short batch (--lines / 100: 1000)')
    ap.add_argument('--models', default='tiny-decoder,tiny-encoder,tiny-translator')
    ap.add_argument('--all', action='store_true',
                    help='also id lines and all three outputs to standard output')
    ap.add_argument('--jobs', type=int, default=2,
                    help='runs at a time (2; each peak is its own process\'s)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    a = ap.parse_args()
    if a.small is None:
        a.small = max(1, a.lines // 100)
    if a.small < 1 or a.lines < a.small or a.jobs < 1:
        ap.error('expected 1 <= --small <= --lines and --jobs >= 1')
    if not os.access(TIME, os.X_OK):
        print('batch_rss: %s is missing (GNU time measures the peak RSS); skipped' % TIME)
        return 77
    exe = os.path.abspath(a.attn)
    todo = cases(a.models.split(','), a.all)
    tmp = tempfile.mkdtemp(prefix='attn-batch-rss-')
    print('attn batch mode, peak RSS (/usr/bin/time %%M, KB): %d lines against %d lines'
          % (a.small, a.lines))
    print('cpu: %s; attn: %s' % (cpu_name(), exe))
    failed = False
    prefix = no_aslr()
    print('address randomization: %s' % ('off (setarch -R)' if prefix else
                                         'on (no setarch -R here: expect a few % of noise)'))
    t0 = time.monotonic()
    try:
        floor = subprocess.run(prefix + [TIME, '-f', '%M', '/bin/true'], stderr=subprocess.PIPE,
                               text=True).stderr.split()[-1]
        print('floor (/bin/true under /usr/bin/time): %s KB' % floor, flush=True)
        inputs = {}
        for model, _, _, ids in todo:
            if (model, ids) in inputs:
                continue
            cfg, vocab = read_config(a.root, model)
            batch = Batch(cfg, vocab, ids, cfg['architecture'] == 'encoder-decoder', seed=9)
            path = os.path.join(tmp, 'in-%s-%s.txt' % (model, 'ids' if ids else 'text'))
            bad_large = batch.write(path, a.lines)
            small = path[:-4] + '-%d.txt' % a.small  # the first --small lines
            with open(path, 'rb') as f, open(small, 'wb') as g:
                g.writelines(f.readline() for _ in range(a.small))
            bad_small = sum(Batch(cfg, vocab, ids, batch.pair, seed=9).line(i)[1]
                            for i in range(a.small))
            inputs[model, ids] = {a.small: (small, bad_small), a.lines: (path, bad_large)}

        def job(k, n):
            model, _, flags, ids = todo[k]
            d = os.path.join(tmp, 'case-%d-%d' % (k, n))
            os.mkdir(d)
            config = os.path.join(a.root, 'models', model, 'config.json')
            full = [os.path.join(d, f) if f.startswith('out') else f for f in flags]
            path, bad = inputs[model, ids][n]
            try:
                return run_case(prefix, exe, config, full, path, os.path.join(d, 'out-stdout'),
                                d, bad)
            finally:
                shutil.rmtree(d, ignore_errors=True)

        # the long runs first, so that the short ones fill the gaps at the end
        order = [(k, a.lines) for k in range(len(todo))] + \
                [(k, a.small) for k in range(len(todo))]
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            futures = {kn: pool.submit(job, *kn) for kn in order}
            results = {kn: f.result() for kn, f in futures.items()}
        print()
        print('%-16s %-16s %10s %10s %7s %8s %9s  %s' % (
            'model', 'output', 'RSS@%d' % a.small, 'RSS@%d' % a.lines, 'ratio',
            'CPU', 'output', 'bound %d%%' % round((BOUND - 1) * 100)))
        cpu = 0.0
        for k, (model, name, _, _) in enumerate(todo):
            small, _, _ = results[k, a.small]
            large, seconds, size = results[k, a.lines]
            cpu += seconds
            ratio = large / small
            ok = ratio <= BOUND
            failed |= not ok
            print('%-16s %-16s %7d KB %7d KB %7.3f %6.1f s %6.1f MB  %s' % (
                model, name, small, large, ratio, seconds, size / 1e6,
                'PASS' if ok else 'FAIL'))
        print('the %d-line runs: %.1f s of CPU (user + system); everything: %.1f s of wall '
              'time, %d at a time' % (a.lines, cpu, time.monotonic() - t0, a.jobs))
        print('%s' % ('FAIL: a peak grows with the number of lines' if failed else
                      'PASS: every peak within 10%'))
    except (RuntimeError, OSError) as e:
        print('batch_rss: %s' % e)
        failed = True
    finally:
        if a.keep:
            print('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
