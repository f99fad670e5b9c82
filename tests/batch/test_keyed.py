"""Keyed batches and progress (issue 11, item 8).

  test_keyed.py ATTN_EXE SOURCE_ROOT

- With --keyed each line is KEY<TAB>text (KEY<TAB>SOURCE<TAB>TARGET for an
  encoder-decoder): every output's `input` column carries KEY, and the rows
  are, KEY for index, those of the same lines run without keys. Bad keys are
  reported with their line number and skipped (exit 1).
- A corpus cut into 2 and 4 shards (GNU parallel --pipe --round-robin, and
  split -n l/N as on a cluster) gives, after a sort, the same rows as one
  run (skipped when `parallel` is not installed).
- Progress appears on standard error only when it is a terminal (a pty
  here), never with --quiet, never into a pipe, and with the share read and
  the time left when standard input is a file.
"""
import csv
import math
import os
import pty
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_batch  # noqa: E402  (its check() and counters; ATTN and ROOT from the same argv)
from test_batch import ATTN, ROOT, check, failures  # noqa: E402

DECODER = os.path.join(ROOT, "models", "tiny-decoder", "config.json")
TRANSLATOR = os.path.join(ROOT, "models", "tiny-translator", "config.json")


def vocab_words(config):
    folder = os.path.dirname(config)
    with open(os.path.join(folder, "vocab.txt")) as f:
        return [w for w in f.read().split("\n") if w and not w.startswith("<")]


def run(args, stdin=b"", stderr=subprocess.PIPE):
    return subprocess.run([ATTN] + args, input=stdin, stdout=subprocess.PIPE, stderr=stderr)


def sentences(rng, words, n):
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 7))) for _ in range(n)]


def rows(csv_bytes):
    """Header and data rows of a CSV output, as lines."""
    lines = csv_bytes.decode().splitlines()
    return lines[0], lines[1:]


def records(lines):
    return [r for r in csv.reader(lines)]


def keyed_equals_unkeyed():
    rng = random.Random(11)
    words = vocab_words(DECODER)
    texts = sentences(rng, words, 12)
    keys = ["doc-%03d" % i for i in range(len(texts))]
    keys[3] = "κλειδί"  # UTF-8 keys are fine
    keys[5] = "a key, with a comma"  # written as an RFC 4180 field
    keys[7] = '"quoted"'
    plain = "".join(t + "\n" for t in texts).encode()
    keyed = "".join(k + "\t" + t + "\n" for k, t in zip(keys, texts)).encode()
    for flag, extra in (("--maps", []), ("--context", []), ("--predictions", ["--top-k", "3"])):
        a = run(["run", "--config", DECODER, flag, "-"] + extra, plain)
        b = run(["run", "--config", DECODER, "--keyed", flag, "-"] + extra, keyed)
        if not check("keyed %s runs" % flag, a.returncode == 0 and b.returncode == 0,
                     (a.stderr + b.stderr).decode()):
            continue
        ha, ra = rows(a.stdout)
        hb, rb = rows(b.stdout)
        check("keyed %s header" % flag, ha == hb)
        want = [[keys[int(r[0])]] + r[1:] for r in records(ra)]
        got = records(rb)
        check("keyed %s rows: the key in the input column" % flag, got == want,
              "%d vs %d rows" % (len(got), len(want)))

    # encoder-decoder: KEY<TAB>SOURCE<TAB>TARGET
    src_words = vocab_words(TRANSLATOR)
    pairs = list(zip(sentences(rng, src_words, 5), sentences(rng, src_words, 5)))
    plain = "".join(s + "\t<s> " + t + "\n" for s, t in pairs).encode()
    keys = ["p%d" % i for i in range(len(pairs))]
    keyed = "".join(k + "\t" + s + "\t<s> " + t + "\n" for k, (s, t) in zip(keys, pairs)).encode()
    a = run(["run", "--config", TRANSLATOR, "--maps", "-"], plain)
    b = run(["run", "--config", TRANSLATOR, "--keyed", "--maps", "-"], keyed)
    if check("keyed pairs run", a.returncode == 0 and b.returncode == 0, (a.stderr + b.stderr).decode()):
        want = [[keys[int(r[0])]] + r[1:] for r in records(rows(a.stdout)[1])]
        check("keyed pairs rows", records(rows(b.stdout)[1]) == want)


def bad_keys():
    lines = [b"k0\tthe cat", b"no tab here", b"\tempty key", b"a/b\tthe cat", b"..\tthe cat",
             b"\xff\xfe\tthe cat", b"k" * 256 + b"\tthe cat", b"k6\tthe dog"]
    r = run(["run", "--config", DECODER, "--keyed", "--maps", "-"], b"\n".join(lines) + b"\n")
    check("bad keys exit 1", r.returncode == 1, str(r.returncode))
    msgs = r.stderr.decode().splitlines()
    check("bad keys: one message per bad line", len(msgs) == 6, "\n".join(msgs))
    for n, m in zip((2, 3, 4, 5, 6, 7), msgs):
        check("bad key line %d named" % n, m.startswith("attn: standard input line %d:" % n), m)
    got = {row.split(",", 1)[0] for row in rows(r.stdout)[1]}
    check("good keyed lines kept", got == {"k0", "k6"}, str(got))
    r = run(["run", "--config", DECODER, "--keyed", "--text", "the cat", "--maps", "-"])
    check("--keyed with --text is a usage error", r.returncode == 2 and
          len(r.stderr.splitlines()) == 1 and b"--keyed" in r.stderr, r.stderr.decode())


def sharded():
    """The README's recipes: parallel on one machine and split on a cluster."""
    rng = random.Random(5)
    texts = sentences(rng, vocab_words(DECODER), 60)
    corpus = "".join("id%02d\t%s\n" % (i, t) for i, t in enumerate(texts))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "corpus.tsv")
        with open(path, "w") as f:
            f.write(corpus)
        one = run(["run", "--config", DECODER, "--keyed", "--maps", "-"], corpus.encode())
        if not check("single run", one.returncode == 0, one.stderr.decode()):
            return
        header, want = rows(one.stdout)
        want.sort()

        def merged(folder):
            out = []
            files = sorted(os.listdir(folder))
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    h, r = rows(f.read())
                check("shard header " + name, h == header)
                out.extend(r)
            return len(files), sorted(out)

        for n in (2, 4):
            # a cluster job array: split -n l/N, one attn call per task
            sd = os.path.join(d, "split%d" % n)
            os.mkdir(sd)
            subprocess.run(["split", "-n", "l/%d" % n, path, os.path.join(sd, "part-")], check=True)
            od = os.path.join(d, "split%d-out" % n)
            os.mkdir(od)
            for part in sorted(os.listdir(sd)):
                with open(os.path.join(sd, part), "rb") as f:
                    r = subprocess.run([ATTN, "run", "--config", DECODER, "--keyed", "--maps",
                                        os.path.join(od, part + ".csv")], stdin=f)
                check("split task %s" % part, r.returncode == 0)
            count, got = merged(od)
            check("split -n l/%d: %d shards" % (n, n), count == n, str(count))
            check("split -n l/%d rows equal one run" % n, got == want,
                  "%d vs %d rows" % (len(got), len(want)))

        if not shutil.which("parallel"):
            print("SKIP GNU parallel is not installed (Debian package 'parallel')")
            return
        for n in (2, 4):
            od = os.path.join(d, "parallel%d" % n)
            os.mkdir(od)
            # --round-robin with -j N: exactly N jobs, the blocks dealt out in turn
            cmd = ["parallel", "--will-cite", "--pipe", "--round-robin", "-j", str(n),
                   "--block", "300", ATTN, "run", "--config", DECODER, "--keyed", "--quiet",
                   "--maps", os.path.join(od, "shard-{%}.csv")]
            with open(path, "rb") as f:
                r = subprocess.run(cmd, stdin=f, stderr=subprocess.PIPE)
            if not check("parallel -j %d runs" % n, r.returncode == 0, r.stderr.decode()):
                continue
            count, got = merged(od)
            check("parallel -j %d: %d shards" % (n, n), count == n, str(count))
            check("parallel -j %d rows equal one run" % n, got == want,
                  "%d vs %d rows" % (len(got), len(want)))


def on_pty(args, stdin_path):
    """Runs attn with standard error on a pseudo-terminal, standard output
    to a pipe; returns (exit status, what the terminal received)."""
    master, slave = pty.openpty()
    with open(stdin_path, "rb") as f:
        p = subprocess.Popen([ATTN] + args, stdin=f, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    out = b""
    while True:
        rl, _, _ = select.select([master, p.stdout], [], [], 60)
        if not rl:
            break
        if master in rl:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                rl.remove(master)
            seen += chunk
        if p.stdout in rl:
            chunk = p.stdout.read1(65536)
            if not chunk:
                break
            out += chunk
    p.wait()
    try:
        while True:
            r, _, _ = select.select([master], [], [], 0.2)
            if not r:
                break
            chunk = os.read(master, 4096)
            if not chunk:
                break
            seen += chunk
    except OSError:
        pass
    os.close(master)
    return p.returncode, seen


def progress():
    rng = random.Random(3)
    texts = sentences(rng, vocab_words(DECODER), 400)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "in.txt")
        args = ["run", "--config", DECODER, "--maps", "-"]
        # enough lines for about a second (the line redraws every 0.25 s),
        # measured on this machine: 400 lines first
        with open(path, "w") as f:
            f.write("".join(t + "\n" for t in texts))
        start = time.monotonic()
        with open(path, "rb") as f:
            subprocess.run([ATTN] + args, stdin=f, stdout=subprocess.DEVNULL, check=True)
        repeat = max(1, math.ceil(1.0 / max(time.monotonic() - start, 1e-3)))
        n_lines = 400 * repeat
        with open(path, "w") as f:
            f.write("".join(t + "\n" for t in texts * repeat))
        rc, seen = on_pty(args, path)
        text = seen.decode(errors="replace")
        check("progress run exits 0", rc == 0, text[-300:])
        check("progress shows lines and rate", re.search(r"\d+ lines, [\d.]+ lines/s", text) is not None,
              repr(text[:200]))
        check("progress shows the share read and the time left (a file)",
              re.search(r"\d+% read, about \d+(s|m\d+s) left", text) is not None, repr(text[:200]))
        check("progress line is cleared at the end", text.endswith("\r\033[K"), repr(text[-40:]))
        rc, seen = on_pty(args + ["--quiet"], path)
        check("--quiet: no progress", rc == 0 and seen == b"", repr(seen[:200]))
        with open(path, "rb") as f:
            r = subprocess.run([ATTN] + args, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check("no progress into a pipe", r.returncode == 0 and r.stderr == b"", repr(r.stderr[:200]))
        # a bad line's message is not mixed with the progress line
        with open(path, "a") as f:
            f.write("the " * 1000 + "\n")  # longer than max_seq_len
        rc, seen = on_pty(args, path)
        text = seen.decode(errors="replace")
        msg = [l for l in text.replace("\r\033[K", "\n").split("\n") if "standard input line" in l]
        check("bad line message on its own line", rc == 1 and len(msg) == 1 and
              msg[0].startswith("attn: standard input line %d:" % (n_lines + 1)), repr(msg))


def main():
    keyed_equals_unkeyed()
    bad_keys()
    sharded()
    progress()
    print("%d checks, %d failed" % (test_batch.checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
