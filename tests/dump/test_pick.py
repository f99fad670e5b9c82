"""Attention to chosen positions: --from and --to on --maps, the view and attn stats.

    /usr/bin/python3 test_pick.py ATTN_EXE

On random models of tests/reference/make_models.py (a decoder, a decoder with
grouped key/value heads, an encoder, an encoder-decoder), against the float64
reference (attn_ref.py), with token ids drawn at random and one token repeated
so that a pick by text matches two positions:
  - --maps with --from P and/or --to P writes exactly the rows of the picked
    query and key positions of every map (visible keys only), each weight
    within 2e-5 of the reference; P is a position, a negative position, or a
    token's text (matched as docs/selection.md says: the label, or the label
    without one leading space);
  - attn stats --from P --to Q: the means over the picked query rows, and the
    column "to" (the weight on the picked keys) against numpy;
  - the view shows the picked query rows and key columns only;
  - bad picks exit 2 with one line and leave no file; in batch mode a line
    without the token is reported with its line number, the others written,
    exit 1.
Exit status 0 pass, 1 fail, 77 skip.
"""
import csv
import io
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dumptest  # noqa: E402  (exits 77 without numpy or torch)
from dumptest import WEIGHT_ABS_TOL, attn_ref, fail, ids_arg, make_models, run  # noqa: E402

import numpy as np  # noqa: E402
import subprocess  # noqa: E402


def pick_has(pick, labels, pos):
    """The rule of docs/selection.md, written independently of attn."""
    if pick is None:
        return True
    if pick.startswith("="):
        text = pick[1:]
    elif re.fullmatch(r"-?[0-9]+", pick):
        p = int(pick)
        return pos == (len(labels) + p if p < 0 else p)
    else:
        text = pick
    lab = labels[pos]
    return lab == text or (lab.startswith(" ") and lab[1:] == text) or \
        (lab.startswith("\u2581") and lab[1:] == text)


class Case:
    def __init__(self, spec, rng):
        self.spec = spec
        self.cfg = spec.cfg
        V = self.cfg["vocab_size"]
        self.model = attn_ref.Model.load(spec.config)
        # ids avoid the tokens that need quoting so that the view's columns parse
        plain = [i for i in range(V) if re.fullmatch(r"[a-z0-9]+", self.model.piece(i))]
        self.ids = [int(i) for i in rng.choice(plain, size=spec.seq_len)]
        self.ids[-2] = self.ids[1]  # one token twice
        self.src = ([int(i) for i in rng.choice(plain, size=spec.src_len)]
                    if spec.src_len else None)
        if self.src:
            self.src[0] = self.ids[1]  # the same token in the source
        self.ref = self.model.run(self.ids, self.src)
        self.labels = [self.model.piece(i) for i in self.ids]
        self.src_labels = [self.model.piece(i) for i in self.src] if self.src else None
        self.args = ["--config", spec.config, "--ids", ids_arg(self.ids)]
        if self.src:
            self.args += ["--source-ids", ids_arg(self.src)]

    def map_labels(self, key):
        """(query labels, key labels) of a map key (stack, layer, kind, head)."""
        stack, _, kind, _ = key
        if self.src and stack == "encoder":
            return self.src_labels, self.src_labels
        if kind == "cross":
            return self.labels, self.src_labels
        return self.labels, self.labels

    def causal(self, key):
        return self.cfg["architecture"] != "encoder" and key[0] == "decoder" and key[2] == "self"


def expected_cells(case, frm, to):
    """{map key: {(q, k): reference weight}} of the picked rows and columns."""
    out = {}
    for key, w in case.ref.maps.items():
        ql, kl = case.map_labels(key)
        cells = {}
        for q in range(w.shape[0]):
            if not pick_has(frm, ql, q):
                continue
            for k in range(w.shape[1]):
                if case.causal(key) and k > q:
                    continue
                if pick_has(to, kl, k):
                    cells[(q, k)] = w[q, k]
        if cells:
            out[key] = cells
    return out


def test_maps(exe, case, tmp, frm, to):
    label = "%s --from %s --to %s" % (case.spec.name, frm, to)
    flags = (["--from", frm] if frm else []) + (["--to", to] if to else [])
    path = os.path.join(tmp, "pick.csv")
    p = run(exe, case.args + ["--maps", path] + flags)
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    got = {}
    for r in rows[1:]:
        got.setdefault((r[1], int(r[2]), r[3], int(r[4])), {})[(int(r[5]), int(r[7]))] = float(r[9])
    want = expected_cells(case, frm, to)
    if set(got) != set(want):
        fail("%s: maps %s, expected %s" % (label, sorted(got)[:4], sorted(want)[:4]))
        return 0
    n = 0
    for key, cells in want.items():
        if set(got[key]) != set(cells):
            fail("%s: map %s has cells %s, expected %s"
                 % (label, key, sorted(got[key])[:6], sorted(cells)[:6]))
            continue
        d = max(abs(got[key][c] - w) for c, w in cells.items())
        if d > WEIGHT_ABS_TOL:
            fail("%s: map %s differs by %.3g" % (label, key, d))
        n += len(cells)
    return n


def test_stats(exe, case, frm, to):
    label = "%s stats --from %s --to %s" % (case.spec.name, frm, to)
    p = subprocess.run([exe, "stats"] + case.args + ["--from", frm, "--to", to],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return 0
    rows = list(csv.reader(io.StringIO(p.stdout)))
    if rows[0][-1] != "to" or rows[0][:10] != ["input", "stack", "layer", "kind", "head", "entropy",
                                                "sink", "distance", "prev", "self"]:
        fail("%s: header %s" % (label, rows[0]))
        return 0
    got = {(r[1], int(r[2]), r[3], int(r[4])): r for r in rows[1:]}
    n = 0
    for key, w in case.ref.maps.items():
        ql, kl = case.map_labels(key)
        qs = [q for q in range(w.shape[0]) if pick_has(frm, ql, q)]
        if not qs:
            if key in got:
                fail("%s: map %s has a row though --from picks none of its queries" % (label, key))
            continue
        if key not in got:
            fail("%s: no row for map %s" % (label, key))
            continue
        ks = [k for k in range(w.shape[1]) if pick_has(to, kl, k)]
        sub = w[qs]
        on = np.mean(sub[:, ks].sum(axis=1)) if ks else 0.0
        ent = np.mean([-(r[r > 0] * np.log(r[r > 0])).sum() for r in sub])
        r = got[key]
        for name, value, want in (("to", float(r[10]), on), ("entropy", float(r[5]), ent),
                                  ("sink", float(r[6]), np.mean(sub[:, 0]))):
            if abs(value - want) > 2e-5 * max(1.0, abs(want)):
                fail("%s: map %s %s %.9g, expected %.9g" % (label, key, name, value, want))
        n += 1
    return n


def test_view(exe, case, frm, to):
    """The view's rows are the picked queries, its columns the picked keys."""
    label = "%s view --from %s --to %s" % (case.spec.name, frm, to)
    p = run(exe, case.args + ["--from", frm, "--to", to, "--width", "0", "--color", "never"])
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return 0
    blocks = re.split(r"\n(?=(?:encoder|decoder) layer \d+, \w+-attention, head \d+\n)", p.stdout)
    seen = 0
    for b in blocks[1:]:
        lines = b.split("\n\n")[0].split("\n")  # the map ends at a blank line
        m = re.match(r"(encoder|decoder) layer (\d+), (\w+)-attention, head (\d+)", lines[0])
        key = (m.group(1), int(m.group(2)), m.group(3), int(m.group(4)))
        ql, kl = case.map_labels(key)
        keys = [int(x) for x in lines[1].split()]
        want_keys = [k for k in range(len(kl)) if pick_has(to, kl, k)]
        rows = [int(ln.split()[0]) for ln in lines[3:] if re.match(r"\s+\d+ \S", ln)]
        want_rows = [q for q in range(len(ql)) if pick_has(frm, ql, q)]
        if keys != want_keys or rows != want_rows:
            fail("%s: map %s shows keys %s rows %s, expected %s and %s"
                 % (label, key, keys, rows, want_keys, want_rows))
        seen += 1
    want_maps = sum(1 for k in case.ref.maps
                    if any(pick_has(frm, case.map_labels(k)[0], q)
                           for q in range(len(case.map_labels(k)[0])))
                    and any(pick_has(to, case.map_labels(k)[1], j)
                            for j in range(len(case.map_labels(k)[1]))))
    if seen != want_maps:
        fail("%s: %d maps shown, expected %d" % (label, seen, want_maps))
    return seen


def test_bad(exe, case, tmp):
    parent = os.path.join(tmp, "bad")
    os.makedirs(parent)
    m = os.path.join(parent, "maps.csv")
    n = len(case.ids)
    absent = next(w for w in ("east", "sun", "rises", "mat", "w0", "w1") if w not in case.labels)
    rows = [
        (["--maps", m, "--from", str(n + 3)], "positions 0-%d" % (n - 1)),
        (["--maps", m, "--from", str(-n - 1)], "out of range"),
        (["--maps", m, "--to", "no-such-token"], "vocabulary"),
        (["--maps", m, "--from", ""], "--from"),
        (["--maps", m, "--to", "="], "--to"),
        (["--maps", m, "--from", "99999999999999"], "out of range"),
        (["--context", m, "--from", "0"], "--from"),
        (["--maps", m, "--to", absent], "no such token"),
    ]
    for flags, word in rows:
        p = run(exe, case.args + flags)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or word not in lines[0]:
            fail("%s: exit %d, stderr %r (expected 2 and one line with %r)"
                 % (flags, p.returncode, p.stderr, word))
        if os.listdir(parent):
            fail("%s left %s" % (flags, os.listdir(parent)))
            for f in os.listdir(parent):
                os.unlink(os.path.join(parent, f))
    # batch: the second line lacks the token; the first is written, exit 1
    cfg = case.spec.config
    p = subprocess.run([exe, "run", "--config", cfg, "--maps", m, "--from", "cat", "--quiet"],
                       input="the cat sits\nthe sun rises\non the mat cat\n", capture_output=True,
                       text=True, timeout=300)
    lines = p.stderr.strip().splitlines()
    if p.returncode != 1 or len(lines) != 1 or "line 2" not in lines[0]:
        fail("batch: exit %d, stderr %r (expected 1 and one line naming line 2)"
             % (p.returncode, p.stderr))
    else:
        with open(m, newline="", encoding="utf-8") as f:
            got = {(r[0], r[5], r[6]) for r in list(csv.reader(f))[1:]}
        if got != {("0", "1", "cat"), ("2", "3", "cat")}:
            fail("batch: rows of (input, query_pos, query_token) %s" % sorted(got))
    print("bad picks: %d cases exit 2 with one line, nothing left; a batch line without the "
          "token exits 1" % len(rows))


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"), ["gpt2", "llama", "transformer", "bert"])
    rng = np.random.RandomState(4242)
    cases = [Case(s, rng) for s in specs]
    for case in cases:
        twice = case.labels[1]
        picks = [("2", None), ("-1", None), (None, "0"), (twice, None), (None, twice),
                 ("-1", twice), ("=" + twice, "1"), (twice, "-2")]
        cells = sum(test_maps(exe, case, tmp, f, t) for f, t in picks)
        stats = test_stats(exe, case, twice, twice) + test_stats(exe, case, "-1", "0")
        views = test_view(exe, case, twice, twice) + test_view(exe, case, "2", "-1")
        print("%-12s %d picks: %d weights, %d stats rows, %d maps in the view ok"
              % (case.spec.name, len(picks), cells, stats, views))
    test_bad(exe, cases[0], tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
