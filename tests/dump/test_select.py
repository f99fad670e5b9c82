"""The selection (--layers, --heads, --stack, --kind) on --maps and --dump.

    /usr/bin/python3 test_select.py ATTN_EXE

On random models of tests/reference/make_models.py (a decoder, a decoder with
grouped key/value heads, an encoder-decoder), against the float64 reference
(attn_ref.py):
  - --layers 1 --heads 0 with --maps writes exactly the rows of those maps
    (every query and visible key, each weight within 2e-5);
  - with --dump the per-layer files exist only for the selected layers, and a
    per-head array holds the selected heads in order as its first axis
    (k and v: the key/value heads the selected query heads read);
  - --stack and --kind keep only that stack's / kind's maps and dumps;
  - values out of range exit 2 with one line naming the valid range, and
    leave no output behind.
Exit status 0 pass, 1 fail, 77 skip.
"""
import csv
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dumptest  # noqa: E402  (exits 77 without numpy or torch)
from dumptest import (VALUE_REL_TOL, WEIGHT_ABS_TOL, attn_ref, fail, ids_arg,  # noqa: E402
                      make_models, run)  # exits 77 without numpy or torch

import numpy as np  # noqa: E402


class Case:
    def __init__(self, spec, rng):
        self.spec = spec
        self.cfg = spec.cfg
        V = self.cfg["vocab_size"]
        self.ids = rng.randint(0, V, size=spec.seq_len).tolist()
        self.src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
        self.ref = attn_ref.Model.load(spec.config).run(self.ids, self.src)
        self.args = ["--config", spec.config, "--ids", ids_arg(self.ids)]
        if self.src:
            self.args += ["--source-ids", ids_arg(self.src)]


def read_maps(path):
    """{(stack, layer, kind, head): {(q, k): weight}}"""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    out = {}
    for r in rows[1:]:
        out.setdefault((r[1], int(r[2]), r[3], int(r[4])), {})[(int(r[5]), int(r[7]))] = float(r[9])
    return out


def check_maps(case, path, want_keys, label):
    got = read_maps(path)
    if set(got) != set(want_keys):
        fail("%s: maps %s, expected %s" % (label, sorted(got), sorted(want_keys)))
        return
    causal = case.cfg["architecture"] != "encoder"
    for key in want_keys:
        ref = case.ref.maps[key]
        T, Tk = ref.shape
        cells = got[key]
        want_cells = {(q, k) for q in range(T) for k in range(Tk)
                      if not (causal and key[0] == "decoder" and key[2] == "self" and k > q)}
        if set(cells) != want_cells:
            fail("%s: map %s has %d entries, expected %d" % (label, key, len(cells), len(want_cells)))
            continue
        d = max(abs(w - ref[q, k]) for (q, k), w in cells.items())
        if d > WEIGHT_ABS_TOL:
            fail("%s: map %s differs by %.3g" % (label, key, d))


def all_map_keys(case):
    return set(case.ref.maps)


def test_layers_heads(exe, case, tmp, heads, label):
    """--layers 1 --heads HEADS on --maps and --dump."""
    cfg = case.cfg
    H = cfg["n_heads"]
    KV = cfg.get("n_kv_heads", H)
    group = H // KV
    sel = sorted(heads)
    kv_sel = sorted({h // group for h in sel})
    flags = ["--layers", "1", "--heads", ",".join(map(str, sel))]
    maps = os.path.join(tmp, label + ".csv")
    p = run(exe, case.args + ["--maps", maps] + flags)
    if p.returncode != 0:
        fail("%s: --maps exited %d: %s" % (label, p.returncode, p.stderr))
        return
    want = {k for k in all_map_keys(case) if k[1] == 1 and k[3] in sel}
    check_maps(case, maps, want, label + " --maps")
    out = os.path.join(tmp, label + "-dump")
    p = run(exe, case.args + ["--dump", "*", "--out", out] + flags)
    if p.returncode != 0:
        fail("%s: --dump exited %d: %s" % (label, p.returncode, p.stderr))
        return
    files = {f[:-4] for f in os.listdir(out)}
    ref = case.ref.values
    want_files = {n for n in ref if ".blocks." not in "." + n or ".1." in n}
    if files != want_files:
        fail("%s: dump files differ: extra %s, missing %s"
             % (label, sorted(files - want_files)[:6], sorted(want_files - files)[:6]))
    n_checked = 0
    for n in sorted(files & want_files):
        a = np.load(os.path.join(out, n + ".npy"))
        r = ref[n]
        last = n.rsplit(".", 1)[-1]
        if r.ndim == 3:  # per head: the selected heads, in order
            r = r[kv_sel] if last in ("k", "v") else r[sel]
        if a.shape != r.shape:
            fail("%s: %s has shape %s, expected %s" % (label, n, a.shape, r.shape))
            continue
        d = np.max(np.abs(a - r) / np.maximum(1.0, np.abs(r)))
        if d > (WEIGHT_ABS_TOL if last == "weights" else VALUE_REL_TOL):
            fail("%s: %s differs by %.3g" % (label, n, d))
        n_checked += 1
    print("%-34s %d maps, %d dumps (heads %s, kv heads %s) ok"
          % (label, len(want), n_checked, sel, kv_sel))


def test_stack_kind(exe, case, tmp):
    label = case.spec.name
    for flags, keep_map, keep_dump in [
        (["--stack", "encoder"], lambda k: k[0] == "encoder", lambda n: n.startswith("encoder.")),
        (["--stack", "decoder"], lambda k: k[0] == "decoder", lambda n: not n.startswith("encoder.")),
        (["--kind", "cross"], lambda k: k[2] == "cross",
         lambda n: ".attn." not in n),
        (["--kind", "self"], lambda k: k[2] == "self", lambda n: ".cross." not in n),
        (["--stack", "decoder", "--kind", "cross", "--layers", "0"],
         lambda k: k[2] == "cross" and k[1] == 0,
         lambda n: not n.startswith("encoder.") and ".attn." not in n and ".1." not in n),
    ]:
        name = "-".join(f.strip("-") for f in flags)
        maps = os.path.join(tmp, "%s-%s.csv" % (label, name))
        p = run(exe, case.args + ["--maps", maps] + flags)
        if p.returncode != 0:
            fail("%s %s --maps exited %d: %s" % (label, flags, p.returncode, p.stderr))
            continue
        check_maps(case, maps, {k for k in all_map_keys(case) if keep_map(k)},
                   "%s %s --maps" % (label, flags))
        out = os.path.join(tmp, "%s-%s-dump" % (label, name))
        p = run(exe, case.args + ["--dump", "*", "--out", out] + flags)
        if p.returncode != 0:
            fail("%s %s --dump exited %d: %s" % (label, flags, p.returncode, p.stderr))
            continue
        files = {f[:-4] for f in os.listdir(out)}
        want = {n for n in case.ref.values if keep_dump(n)}
        if files != want:
            fail("%s %s --dump: extra %s, missing %s" % (label, flags, sorted(files - want)[:6],
                                                        sorted(want - files)[:6]))
        else:
            print("%-34s %d dumps ok" % ("%s %s" % (label, " ".join(flags)), len(files)))


def test_out_of_range(exe, cases, tmp):
    parent = os.path.join(tmp, "range")
    os.makedirs(parent)
    d = os.path.join(parent, "out")
    m = os.path.join(parent, "maps.csv")
    gpt2, transformer = cases["gpt2"], cases["transformer"]
    rows = [
        (gpt2, ["--layers", "2"], "layers 0-1"),
        (gpt2, ["--layers", "0,5-7"], "layers 0-1"),
        (gpt2, ["--heads", "4"], "heads 0-3"),
        (gpt2, ["--heads", "1-9"], "heads 0-3"),
        (gpt2, ["--stack", "encoder"], "decoder"),
        (gpt2, ["--kind", "cross"], "cross"),
        (gpt2, ["--stack", "middle"], "encoder or decoder"),
        (gpt2, ["--kind", "both"], "self or cross"),
        (gpt2, ["--layers", "x"], "--layers"),
        (gpt2, ["--heads", "3-1"], "--heads"),
        (transformer, ["--layers", "3"], "layers 0-2"),
        (transformer, ["--stack", "decoder", "--layers", "2"], "0-1 (decoder stack)"),
        (transformer, ["--stack", "encoder", "--kind", "cross"], "cross"),
    ]
    for case, flags, word in rows:
        for out in (["--maps", m], ["--dump", "*", "--out", d]):
            p = run(exe, case.args + out + flags)
            lines = p.stderr.strip().splitlines()
            if p.returncode != 2 or len(lines) != 1 or word not in lines[0]:
                fail("%s %s: exit %d, stderr %r (expected 2 and one line with %r)"
                     % (case.spec.name, flags + out, p.returncode, p.stderr, word))
            if os.listdir(parent):
                fail("%s %s left %s" % (case.spec.name, flags + out, os.listdir(parent)))
                for f in os.listdir(parent):
                    shutil.rmtree(os.path.join(parent, f), ignore_errors=True)
    print("out of range: %d cases exit 2 with the valid range, nothing left behind" % (2 * len(rows)))


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"), ["gpt2", "llama", "transformer", "bert"])
    rng = np.random.RandomState(2222)
    cases = {s.name: Case(s, rng) for s in specs}
    test_layers_heads(exe, cases["gpt2"], tmp, [0], "gpt2 --layers 1 --heads 0")
    test_layers_heads(exe, cases["bert"], tmp, [0], "bert --layers 1 --heads 0")
    test_layers_heads(exe, cases["llama"], tmp, [0], "llama --layers 1 --heads 0")
    test_layers_heads(exe, cases["llama"], tmp, [1, 4], "llama --layers 1 --heads 1,4")
    test_layers_heads(exe, cases["llama"], tmp, [0, 1, 2, 5], "llama --layers 1 --heads 0-2,5")
    test_layers_heads(exe, cases["transformer"], tmp, [0], "transformer --layers 1 --heads 0")
    test_layers_heads(exe, cases["transformer"], tmp, [1, 3], "transformer --layers 1 --heads 1,3")
    test_stack_kind(exe, cases["transformer"], tmp)
    test_out_of_range(exe, cases, tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
