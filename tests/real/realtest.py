"""Helpers shared by the tests in tests/real: running attn, reading its CSVs, comparing.

Run the tests with /usr/bin/python3 (torch and numpy).
"""
import csv
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "csv"))
import csvtext  # noqa: E402  (the escapes of the CSV text columns)
SHARED_MODELS = os.path.join(REPO_ROOT, "..", "shared", "models")

SKIP = 77

csv.field_size_limit(1 << 30)


class Failures:
    """Collects failed checks; every check prints one line."""

    def __init__(self):
        self.msgs = []

    def check(self, ok, what):
        print("%s: %s" % ("ok  " if ok else "FAIL", what))
        sys.stdout.flush()
        if not ok:
            self.msgs.append(what)
        return ok

    def exit(self):
        if self.msgs:
            print("\n%d check(s) failed:" % len(self.msgs))
            for m in self.msgs:
                print("  - " + m)
            return 1
        print("\nall checks passed")
        return 0


def run(cmd, timeout=300, stdin=None):
    """Runs cmd (list), returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          input=stdin)


def describe(proc):
    err = proc.stderr.decode("utf-8", "replace").strip()
    return "exit %d, stderr: %s" % (proc.returncode, err[:2000])


def read_csv(path):
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


MAPS_HEADER = ["input", "stack", "layer", "kind", "head", "query_pos", "query_token", "key_pos",
               "key_token", "weight"]


def read_maps(path):
    """{(stack, layer, kind, head): [T, Tk] array} (missing entries = 0), {pos: token} of queries."""
    header, rows = read_csv(path)
    if header[:len(MAPS_HEADER)] != MAPS_HEADER:
        raise AssertionError("%s: header %s" % (path, header))
    entries = {}
    tq, tk = 0, 0
    qtok = {}
    for r in rows:
        if not r:
            continue
        key = (r[1], int(r[2]), r[3], int(r[4]))
        qp, kp = int(r[5]), int(r[7])
        entries.setdefault(key, []).append((qp, kp, float(r[9])))
        tq, tk = max(tq, qp + 1), max(tk, kp + 1)
        qtok[qp] = r[6]
    maps = {}
    for key, es in entries.items():
        a = np.zeros((tq, tk))
        for qp, kp, w in es:
            a[qp, kp] = w
        maps[key] = a
    return maps, qtok


def read_context(path):
    """(tokens, [T, D] array) from a context CSV; the tokens with their escapes
    (\\n, \\xNN, ...) undone."""
    header, rows = read_csv(path)
    if header[:3] != ["input", "pos", "token"]:
        raise AssertionError("%s: header %s" % (path, header))
    rows = [r for r in rows if r]
    rows.sort(key=lambda r: int(r[1]))
    toks = [csvtext.unescape_str(r[2]) for r in rows]
    vals = np.array([[float(x) for x in r[3:]] for r in rows])
    return toks, vals


def max_abs(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def max_rel(got, ref):
    """Largest |got - ref| / max(|ref|, rms(ref)) (relative, floored at the RMS of ref)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    floor = max(float(np.sqrt(np.mean(ref * ref))), 1e-30)
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), floor)))
