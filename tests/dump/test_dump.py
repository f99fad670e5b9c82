"""Named dumps (attn run --dump, docs/dumps.md) against the float64 reference.

    /usr/bin/python3 test_dump.py ATTN_EXE

For every random model of tests/reference/make_models.py (every architecture
and option of the reference tests) it dumps every name (--dump '*') and
compares each array with tests/reference/attn_ref.py's float64 values of the
same name: the set of files equals the names of --list-dumps and of the
reference, each shape is the documented one, and each value is within

    attention weights   |a - b| <= 2e-5                (b in [0, 1])
    everything else     |a - b| <= 1e-4 * max(1, |b|)  (float32 vs float64)

and weights a causal mask hides are exactly 0. Then: --dump
'blocks.*.attn.weights' round-trips through numpy.load with the documented
shapes and a NumPy 1.0 header; batch mode gives one folder per input and none
for a bad line; csv and jsonl parse and equal the .npy data; bad flags exit 2
with one line and leave nothing next to DIR.

Exit status 0 pass, 1 fail, 77 skip (no numpy or torch).
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dumptest  # noqa: E402  (exits 77 without numpy or torch)
from dumptest import (VALUE_REL_TOL, WEIGHT_ABS_TOL, attn_ref, fail, ids_arg,  # noqa: E402
                      make_models, run)  # exits 77 without numpy or torch

import numpy as np  # noqa: E402


def input_args(ids, src):
    a = ["--ids", ids_arg(ids)]
    if src is not None:
        a += ["--source-ids", ids_arg(src)]
    return a


def list_dumps(exe, config):
    """{name: shape formula} of --list-dumps, in its order."""
    p = run(exe, ["--config", config, "--list-dumps"])
    if p.returncode != 0:
        raise RuntimeError("--list-dumps exited %d: %s" % (p.returncode, p.stderr))
    out = {}
    for line in p.stdout.splitlines():
        name, shape = line.split(None, 1)
        out[name] = shape.strip()
    return out


def formula_shape(formula, T, S):
    """'[H=4, T, hd=8]' -> (4, T, 8)."""
    dims = []
    for part in formula.strip("[]").split(","):
        part = part.strip()
        if "=" in part:
            dims.append(int(part.split("=")[1]))
        else:
            dims.append({"T": T, "S": S}[part])
    return tuple(dims)


def compare(name, got, want, causal_self):
    """Largest difference of one dump against its reference (and its measure)."""
    if got.shape != want.shape:
        fail("%s: shape %s, reference %s" % (name, got.shape, want.shape))
        return 0.0
    if got.dtype != np.float32:
        fail("%s: dtype %s, expected float32" % (name, got.dtype))
    g = got.astype(np.float64)
    if name.endswith(".weights"):
        d = float(np.max(np.abs(g - want))) if g.size else 0.0
        if d > WEIGHT_ABS_TOL:
            fail("%s: weights differ by %.3g (tolerance %g)" % (name, d, WEIGHT_ABS_TOL))
        if causal_self:
            T = g.shape[1]
            masked = np.triu(np.ones((T, g.shape[2]), dtype=bool), k=1)
            if np.any(got[:, masked] != 0.0):
                fail("%s: a masked weight is not exactly 0" % name)
        return d
    d = float(np.max(np.abs(g - want) / np.maximum(1.0, np.abs(want)))) if g.size else 0.0
    if d > VALUE_REL_TOL:
        idx = np.unravel_index(np.argmax(np.abs(g - want) / np.maximum(1.0, np.abs(want))), g.shape)
        fail("%s: differs by %.3g relative (tolerance %g) at %s: %r vs %r"
             % (name, d, VALUE_REL_TOL, idx, got[idx], want[idx]))
    return d


def test_every_name(exe, specs, tmp, rng):
    print("%-22s %-16s %6s %9s %11s %11s" % ("model", "architecture", "names", "values",
                                              "max|dw|", "max rel dv"))
    worst_w = worst_v = 0.0
    for spec in specs:
        cfg = spec.cfg
        model = attn_ref.Model.load(spec.config)
        V = cfg["vocab_size"]
        ids = rng.randint(0, V, size=spec.seq_len).tolist()
        src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
        out = os.path.join(tmp, "every-" + spec.name)
        p = run(exe, ["--config", spec.config] + input_args(ids, src) + ["--dump", "*", "--out", out])
        if p.returncode != 0:
            fail("%s: --dump '*' exited %d: %s" % (spec.name, p.returncode, p.stderr.strip()))
            continue
        ref = model.run(ids, src).values
        listed = list_dumps(exe, spec.config)
        files = {f[:-4] for f in os.listdir(out) if f.endswith(".npy")}
        if set(os.listdir(out)) != {f + ".npy" for f in files}:
            fail("%s: files other than .npy in %s" % (spec.name, out))
        if files != set(listed):
            fail("%s: files %s vs --list-dumps %s" % (spec.name, sorted(files ^ set(listed))[:8],
                                                      "differ"))
        if set(ref) != set(listed):
            fail("%s: reference names and --list-dumps differ: %s"
                 % (spec.name, sorted(set(ref) ^ set(listed))[:8]))
        T, S = len(ids), len(src) if src else None
        causal_stack = cfg["architecture"] != "encoder"
        dw = dv = 0.0
        n_values = 0
        for name in sorted(files & set(ref)):
            got = np.load(os.path.join(out, name + ".npy"), allow_pickle=False)
            shape = formula_shape(listed[name], T, S)
            if got.shape != shape:
                fail("%s: %s has shape %s, --list-dumps says %s = %s"
                     % (spec.name, name, got.shape, listed[name], shape))
            causal_self = causal_stack and not name.startswith("encoder.") and ".attn." in name
            d = compare(spec.name + ": " + name, got, ref[name], causal_self)
            n_values += got.size
            if name.endswith(".weights"):
                dw = max(dw, d)
            else:
                dv = max(dv, d)
        worst_w, worst_v = max(worst_w, dw), max(worst_v, dv)
        print("%-22s %-16s %6d %9d %11.3g %11.3g" % (spec.name, cfg["architecture"], len(files),
                                                    n_values, dw, dv))
    print("largest weight difference %.3g (tolerance %g absolute), largest other %.3g "
          "(tolerance %g * max(1, |ref|))" % (worst_w, WEIGHT_ABS_TOL, worst_v, VALUE_REL_TOL))


def npy_header(path):
    with open(path, "rb") as f:
        raw = f.read(1 << 12)
    if raw[:8] != b"\x93NUMPY\x01\x00":
        fail("%s: not a NumPy 1.0 file: %r" % (path, raw[:8]))
        return None
    n = raw[8] | raw[9] << 8
    if (10 + n) % 64 != 0:
        fail("%s: data start at %d, not a multiple of 64" % (path, 10 + n))
    import ast
    return ast.literal_eval(raw[10:10 + n].decode("latin-1"))


def test_weights_roundtrip(exe, specs, tmp, rng):
    for spec in specs:
        cfg = spec.cfg
        V = cfg["vocab_size"]
        ids = rng.randint(0, V, size=spec.seq_len).tolist()
        src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
        out = os.path.join(tmp, "weights-" + spec.name)
        p = run(exe, ["--config", spec.config] + input_args(ids, src) +
                ["--dump", "blocks.*.attn.weights", "--out", out])
        if p.returncode != 0:
            fail("%s: --dump blocks.*.attn.weights exited %d: %s" % (spec.name, p.returncode, p.stderr))
            continue
        want = {"blocks.%d.attn.weights.npy" % i for i in range(cfg["n_layers"])}
        if set(os.listdir(out)) != want:
            fail("%s: files %s, expected %s" % (spec.name, sorted(os.listdir(out)), sorted(want)))
            continue
        ref = attn_ref.Model.load(spec.config).run(ids, src)
        stack = "encoder" if cfg["architecture"] == "encoder" else "decoder"
        for i in range(cfg["n_layers"]):
            path = os.path.join(out, "blocks.%d.attn.weights.npy" % i)
            h = npy_header(path)
            T = len(ids)
            if h != {"descr": "<f4", "fortran_order": False, "shape": (cfg["n_heads"], T, T)}:
                fail("%s: header %r" % (path, h))
            a = np.load(path, allow_pickle=False)
            for head in range(cfg["n_heads"]):
                d = np.max(np.abs(a[head] - ref.maps[(stack, i, "self", head)]))
                if d > WEIGHT_ABS_TOL:
                    fail("%s head %d: differs from the reference maps by %.3g" % (path, head, d))
            if not np.allclose(a.sum(axis=2), 1.0, atol=1e-5):
                fail("%s: rows do not sum to 1" % path)
    print("--dump 'blocks.*.attn.weights': [H, T, T] per layer, NumPy 1.0 headers, for %d models"
          % len(specs))


def spec_of(specs, name):
    return next(s for s in specs if s.name == name)


def test_batch(exe, specs, tmp):
    spec = spec_of(specs, "gpt2")
    lines = ["1,2,3,4", "5,999", "7,8", "9"]  # line 2: an id outside the vocabulary
    out = os.path.join(tmp, "batch")
    p = run(exe, ["--config", spec.config, "--ids-input", "--dump", "embed,blocks.1.*,logits",
                  "--out", out], "\n".join(lines) + "\n")
    if p.returncode != 1 or "line 2" not in p.stderr:
        fail("batch with a bad line: exit %d (expected 1), stderr %r" % (p.returncode, p.stderr))
    if sorted(os.listdir(out)) != ["0", "2", "3"]:
        fail("batch folders %s, expected 0 2 3" % sorted(os.listdir(out)))
        return
    for n in (0, 2, 3):
        single = os.path.join(tmp, "batch-single-%d" % n)
        q = run(exe, ["--config", spec.config, "--ids", lines[n], "--dump", "embed,blocks.1.*,logits",
                      "--out", single])
        if q.returncode != 0:
            fail("single run of batch line %d: %s" % (n + 1, q.stderr))
            continue
        a, b = sorted(os.listdir(os.path.join(out, str(n)))), sorted(os.listdir(single))
        if a != b:
            fail("batch input %d: files %s vs single run %s" % (n, a, b))
            continue
        for f in a:
            x = np.load(os.path.join(out, str(n), f))
            y = np.load(os.path.join(single, f))
            if x.shape != y.shape or not np.array_equal(x, y):
                fail("batch input %d: %s differs from the single run" % (n, f))
    # keyed lines name the folders by their keys; a key that came before is a
    # bad line (its folder would hold both), reported with its number
    out = os.path.join(tmp, "batch-keyed")
    p = run(exe, ["--config", spec.config, "--ids-input", "--keyed", "--dump", "embed",
                  "--out", out], "doc-a\t1,2,3\ndoc-b\t4,5\ndoc-a\t6\n")
    got = sorted(os.listdir(out)) if os.path.isdir(out) else None
    msg = p.stderr.strip().splitlines()
    if p.returncode != 1 or got != ["doc-a", "doc-b"]:
        fail("batch --keyed: exit %d, folders %s (want 1, doc-a and doc-b)" % (p.returncode, got))
    elif len(msg) != 1 or not msg[0].startswith("attn: standard input line 3:") or "doc-a" not in msg[0]:
        fail("batch --keyed: the repeated key's message: %s" % msg)
    else:
        x = np.load(os.path.join(out, "doc-a", "embed.npy"))
        if x.shape[0] != 3:
            fail("batch --keyed: doc-a holds the first line's values, shape %s" % (x.shape,))
        print("batch --keyed: folders doc-a, doc-b; the repeated key is a bad line")
    print("batch: one folder per good input, none for the bad line, equal to single runs")


def test_formats(exe, specs, tmp, rng):
    for name in ("gpt2", "transformer", "llama"):
        spec = spec_of(specs, name)
        cfg = spec.cfg
        ids = rng.randint(0, cfg["vocab_size"], size=spec.seq_len).tolist()
        src = rng.randint(0, cfg["vocab_size"], size=spec.src_len).tolist() if spec.src_len else None
        pats = "embed,blocks.0.attn.*,logits,hidden"
        if src is not None:
            pats += ",*.cross.k,encoder.blocks.0.attn.weights"
        dirs = {}
        for fmt in ("npy", "csv", "jsonl"):
            dirs[fmt] = os.path.join(tmp, "fmt-%s-%s" % (name, fmt))
            extra = [] if fmt == "npy" else ["--format", fmt]
            p = run(exe, ["--config", spec.config] + input_args(ids, src) +
                    ["--dump", pats, "--out", dirs[fmt]] + extra)
            if p.returncode != 0:
                fail("%s --format %s exited %d: %s" % (name, fmt, p.returncode, p.stderr))
                return
        names = sorted(f[:-4] for f in os.listdir(dirs["npy"]))
        for n in names:
            a = np.load(os.path.join(dirs["npy"], n + ".npy"))
            per_head = a.ndim == 3
            # csv: input,name,head,i,j,value
            with open(os.path.join(dirs["csv"], n + ".csv"), newline="") as f:
                rows = list(csv.reader(f))
            if rows[0] != ["input", "name", "head", "i", "j", "value"]:
                fail("%s.csv: header %r" % (n, rows[0]))
                continue
            b = np.full(a.shape, np.nan, dtype=np.float32)
            heads = []
            for r in rows[1:]:
                if r[0] != "0" or r[1] != n or (r[2] == "") == per_head:
                    fail("%s.csv: bad row %r" % (n, r))
                    break
                if per_head:
                    h = int(r[2])
                    if h not in heads:
                        heads.append(h)
                    b[heads.index(h), int(r[3]), int(r[4])] = np.float32(float(r[5]))
                else:
                    b[int(r[3]), int(r[4])] = np.float32(float(r[5]))
            if len(rows) - 1 != a.size or not np.array_equal(a, b):
                fail("%s.csv: %d rows, differs from the .npy" % (n, len(rows) - 1))
            if per_head and heads != list(range(a.shape[0])):
                fail("%s.csv: heads %r" % (n, heads))
            # jsonl: one object
            with open(os.path.join(dirs["jsonl"], n + ".jsonl")) as f:
                objs = [json.loads(line) for line in f]
            if len(objs) != 1:
                fail("%s.jsonl: %d objects" % (n, len(objs)))
                continue
            o = objs[0]
            if o["input"] != 0 or o["name"] != n or o["shape"] != list(a.shape):
                fail("%s.jsonl: input %r name %r shape %r" % (n, o["input"], o["name"], o["shape"]))
                continue
            c = np.array(o["data"], dtype=np.float64).astype(np.float32).reshape(a.shape)
            if not np.array_equal(a, c):
                fail("%s.jsonl: data differ from the .npy" % n)
            if per_head and o.get("heads") != list(range(a.shape[0])):
                fail("%s.jsonl: heads %r" % (n, o.get("heads")))
            if not per_head and "heads" in o:
                fail("%s.jsonl: heads on a value that is not per head" % n)
        print("csv and jsonl of %s: %d names equal to the .npy" % (name, len(names)))


def test_bad_flags(exe, specs, tmp):
    spec = spec_of(specs, "gpt2")
    parent = os.path.join(tmp, "bad")
    os.makedirs(parent)
    d = os.path.join(parent, "out")
    afile = os.path.join(parent, "file")
    full = os.path.join(parent, "full")
    os.makedirs(full)
    with open(afile, "w") as f:
        f.write("x\n")
    with open(os.path.join(full, "keep"), "w") as f:
        f.write("x\n")
    before = sorted(os.listdir(parent))
    base = ["--config", spec.config, "--ids", "1,2,3"]
    cases = [
        (["--dump", "embed"], "--out"),
        (["--out", d], "--dump"),
        (["--dump", "embed", "--out", d, "--format", "xml"], "xml"),
        (["--format", "csv"], "--dump"),
        (["--dump", "", "--out", d], "empty"),
        (["--dump", "embed,,logits", "--out", d], "empty"),
        (["--dump", "embed,", "--out", d], "empty"),
        (["--dump", "blocks.*.nothing", "--out", d], "blocks.*.nothing"),
        (["--dump", "embed,encoder.*", "--out", d], "encoder.*"),
        (["--dump", "embed", "--out", afile], "not a folder"),
        (["--dump", "embed", "--out", full], "not empty"),
        (["--dump", "embed", "--out", "/dev/null"], "/dev"),
        (["--dump", "embed", "--out", "-"], "standard output"),
        (["--dump", "embed", "--out", ""], "empty"),
        (["--dump", "embed", "--out", d, "--layers", "2"], "0-1"),
        (["--dump", "embed", "--out", d, "--heads", "4"], "0-3"),
        (["--dump", "embed", "--out", d, "--stack", "encoder"], "encoder"),
        (["--dump", "embed", "--out", d, "--kind", "cross"], "cross"),
        (["--list-dumps", "--out", d], "--out"),
    ]
    for args, word in cases:
        p = run(exe, base + args)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or word not in lines[0]:
            fail("%s: exit %d (expected 2), stderr %r (expected one line naming %r)"
                 % (args, p.returncode, p.stderr, word))
        if sorted(os.listdir(parent)) != before:
            fail("%s left %s behind" % (args, sorted(set(os.listdir(parent)) - set(before))))
    # a run that fails (an id outside the vocabulary) leaves nothing either
    p = run(exe, ["--config", spec.config, "--ids", "1,999", "--dump", "*", "--out", d])
    if p.returncode != 2 or sorted(os.listdir(parent)) != before:
        fail("a failed run: exit %d, left %s" % (p.returncode, sorted(os.listdir(parent))))
    # an empty folder is replaced
    os.makedirs(d)
    p = run(exe, base + ["--dump", "embed", "--out", d])
    if p.returncode != 0 or os.listdir(d) != ["embed.npy"]:
        fail("an empty --out folder: exit %d, %s" % (p.returncode, os.listdir(d)))
    # "DIR/" names DIR: its temporary is a sibling, not a folder inside it
    slash = os.path.join(parent, "slash")
    p = run(exe, base + ["--dump", "embed", "--out", slash + "/"])
    if p.returncode != 0 or os.listdir(slash) != ["embed.npy"]:
        fail("--out DIR/: exit %d, %s" % (p.returncode, p.stderr))
    leftovers = [f for f in os.listdir(parent) if ".tmp." in f]
    if leftovers:
        fail("temporaries left: %s" % leftovers)
    print("bad flags: %d cases exit 2 with one line and leave nothing behind" % len(cases))


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"))
    rng = np.random.RandomState(1111)
    test_every_name(exe, specs, tmp, rng)
    test_weights_roundtrip(exe, specs, tmp, rng)
    test_batch(exe, specs, tmp)
    test_formats(exe, specs, tmp, rng)
    test_bad_flags(exe, specs, tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
