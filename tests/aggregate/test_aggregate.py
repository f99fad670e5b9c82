"""Aggregated maps and per-head statistics against a float64 reference.

    /usr/bin/python3 test_aggregate.py ATTN_EXE

For every random model of tests/reference/make_models.py (every architecture
and option of the reference tests), the maps of tests/reference/attn_ref.py
(float64) are the ground truth, and this file computes from them, in numpy
float64, straight from the formulas of docs/aggregation.md:

  --reduce mean / max   the mean / max over the heads of each sub-layer;
  --rollout             Ã_l = 0.5·A_l + 0.5·I (A_l the mean of every head),
                        rows renormalised; R_0 = Ã_0, R_l = Ã_l · R_{l-1},
                        per stack, self-attention only;
  attn stats            entropy (nats), sink, distance, prev, self per map.

Checked: every value within its tolerance (below), every row that must be
there is and no other (causal entries above the diagonal left out, no
cross-attention rollout rows), with --layers 1 --heads 0-1 (and --stack) the
selected rows only, batch mode (--ids-input, three lines) equal to the
reference of each line and a bad line skipped; bad flag values exit 2 with
one line on standard error and leave no file behind.

Tolerances (attn computes in float32 and writes %.9g; the reference is
float64): a weight of a mean or max map 2e-5 absolute (as tests/reference),
a rollout weight 5e-5 (a product of up to three layers), the statistics
entropy 1e-4, sink/prev/self 2e-5, distance 2e-5 * max(1, T).

Exit status: 0 pass, 1 fail, 77 skip (no torch/numpy, no executable).
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch  # noqa: F401  (attn_ref needs it)
except ImportError:
    print("SKIP: torch/numpy not available to %s" % sys.executable)
    sys.exit(77)

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "reference"))
import attn_ref  # noqa: E402
import make_models  # noqa: E402

TOL_REDUCE = 2e-5
TOL_ROLLOUT = 5e-5
TOL_ENTROPY = 1e-4
TOL_SHARE = 2e-5   # sink, prev, self
TOL_DISTANCE = 2e-5  # times max(1, T)

MAPS_HEADER = ["input", "stack", "layer", "kind", "head", "query_pos", "query_token",
               "key_pos", "key_token", "weight"]
STATS_HEADER = ["input", "stack", "layer", "kind", "head", "entropy", "sink", "distance",
                "prev", "self"]

failures = []
checks = 0
largest = {}  # what -> (difference, where)


def check(name, ok, detail=""):
    global checks
    checks += 1
    if not ok:
        if len(failures) < 60:
            print("FAIL " + name + (": " + detail if detail else ""))
        failures.append(name)
    return ok


def note(what, diff, where):
    if diff >= largest.get(what, (-1.0, ""))[0]:
        largest[what] = (diff, where)


def attn(exe, cmd, args, stdin_text=None):
    return subprocess.run([exe, cmd] + args, input=stdin_text, capture_output=True, text=True,
                          timeout=120)


def ids_arg(ids):
    return ",".join(str(i) for i in ids)


def read_csv(path, header):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != header:
        raise ValueError("%s: header %r, expected %r" % (path, rows[0] if rows else None, header))
    return rows[1:]


def read_maps(path):
    """{(input, stack, layer, kind, head): {(i, j): weight}}; head a string."""
    out = {}
    for r in read_csv(path, MAPS_HEADER):
        key = (int(r[0]), r[1], int(r[2]), r[3], r[4])
        cell = (int(r[5]), int(r[7]))
        m = out.setdefault(key, {})
        check("maps row unique", cell not in m, "%r %r" % (key, cell))
        m[cell] = float(r[9])
    return out


def read_stats(path):
    """{(input, stack, layer, kind, head): [entropy, sink, distance, prev or None, self]}"""
    out = {}
    for r in read_csv(path, STATS_HEADER):
        key = (int(r[0]), r[1], int(r[2]), r[3], r[4])
        check("stats row unique", key not in out, repr(key))
        out[key] = [float(r[5]), float(r[6]), float(r[7]), float(r[8]) if r[8] != "" else None,
                    float(r[9])]
    return out


# ---- the float64 reference, from the formulas -------------------------------

def sublayers(ref):
    """{(stack, layer, kind): [map of head 0, 1, ...]} of a reference output."""
    out = {}
    for (stack, layer, kind, head), w in sorted(ref.maps.items()):
        out.setdefault((stack, layer, kind), []).append((head, w))
    return {k: [w for _, w in sorted(v)] for k, v in out.items()}


def reduce_ref(ref, op, heads=None):
    """{(stack, layer, kind): [T, Tk]} mean or max over the heads (all, or `heads`)."""
    out = {}
    for key, ws in sublayers(ref).items():
        sel = np.stack([w for h, w in enumerate(ws) if heads is None or h in heads])
        out[key] = sel.mean(axis=0) if op == "mean" else sel.max(axis=0)
    return out


def rollout_ref(ref):
    """{(stack, layer, "self"): R_l} by the formula of docs/aggregation.md."""
    subs = sublayers(ref)
    out = {}
    for stack in ("encoder", "decoder"):
        R = None
        layer = 0
        while (stack, layer, "self") in subs:
            A = np.mean(np.stack(subs[(stack, layer, "self")]), axis=0)
            At = 0.5 * A + 0.5 * np.eye(A.shape[0])
            At = At / At.sum(axis=1, keepdims=True)
            R = At if R is None else At @ R
            out[(stack, layer, "self")] = R
            layer += 1
    return out


def stats_ref(w):
    """[entropy, sink, distance, prev or None, self] of one map w [T, Tk]."""
    T, Tk = w.shape
    i = np.arange(T)[:, None]
    j = np.arange(Tk)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0)
    entropy = float(np.mean(-plogp.sum(axis=1)))
    sink = float(np.mean(w[:, 0]))
    distance = float(np.mean((w * np.abs(i - j)).sum(axis=1)))
    prev = [w[r, r - 1] if r - 1 < Tk else 0.0 for r in range(1, T)]
    same = [w[r, r] if r < Tk else 0.0 for r in range(T)]
    return [entropy, sink, distance, float(np.mean(prev)) if prev else None, float(np.mean(same))]


# ---- comparisons -------------------------------------------------------------

def causal(stack, kind):
    return stack == "decoder" and kind == "self"


def compare_maps(label, got, want, head_name, tol, what, inp=0):
    """got: read_maps of a run; want: {(stack, layer, kind): [T, Tk]} for input inp."""
    seen = set()
    for (stack, layer, kind), w in sorted(want.items()):
        key = (inp, stack, layer, kind, head_name)
        seen.add(key)
        m = got.get(key)
        if not check(label + " map present", m is not None, repr(key)):
            continue
        T, Tk = w.shape
        expected = {(i, j) for i in range(T) for j in range(Tk)
                    if not (causal(stack, kind) and j > i)}
        if not check(label + " cells", set(m) == expected,
                     "%r: %d cells, expected %d (extra %r, missing %r)"
                     % (key, len(m), len(expected), sorted(set(m) - expected)[:3],
                        sorted(expected - set(m))[:3])):
            continue
        for (i, j), v in m.items():
            d = abs(v - w[i, j])
            note(what, d, "%s %r q%d k%d" % (label, key, i, j))
            if not check(label + " value", d <= tol,
                         "%r q%d k%d: %r, reference %.9g (diff %.3g)" % (key, i, j, v, w[i, j], d)):
                break
    extra = sorted(k for k in got if k[0] == inp and k not in seen)
    check(label + " no other maps", not extra, repr(extra[:5]))


def compare_stats(label, got, ref, inp=0, keep=lambda stack, layer, kind, head: True):
    seen = set()
    names = ["entropy", "sink", "distance", "prev", "self"]
    for (stack, layer, kind, head), w in sorted(ref.maps.items()):
        if not keep(stack, layer, kind, head):
            continue
        key = (inp, stack, layer, kind, str(head))
        seen.add(key)
        row = got.get(key)
        if not check(label + " stats row present", row is not None, repr(key)):
            continue
        want = stats_ref(w)
        T = w.shape[0]
        for n, (a, b) in enumerate(zip(row, want)):
            if b is None or a is None:
                check(label + " prev empty", a is None and b is None,
                      "%r %s: %r, reference %r" % (key, names[n], a, b))
                continue
            tol = TOL_ENTROPY if n == 0 else TOL_DISTANCE * max(1, T) if n == 2 else TOL_SHARE
            d = abs(a - b)
            note("stats " + names[n], d, "%s %r" % (label, key))
            check(label + " stats " + names[n], d <= tol,
                  "%r: %r, reference %.9g (diff %.3g, tolerance %g)" % (key, a, b, d, tol))
    extra = sorted(k for k in got if k[0] == inp and k not in seen)
    check(label + " no other stats rows", not extra, repr(extra[:5]))


# ---- one model -------------------------------------------------------------

def inputs_for(spec, rng):
    """Three (ids, src) pairs of decreasing length, the last of one position."""
    V = spec.cfg["vocab_size"]
    out = []
    for length in (spec.seq_len, max(2, spec.seq_len // 2), 1):
        ids = rng.randint(0, V, size=length).tolist()
        src = rng.randint(0, V, size=max(1, spec.src_len - length // 3)).tolist() \
            if spec.src_len else None
        out.append((ids, src))
    return out


def input_args(ids, src):
    args = ["--ids", ids_arg(ids)]
    if src is not None:
        args += ["--source-ids", ids_arg(src)]
    return args


def run_ok(exe, label, cmd, args, stdin_text=None, rc=0):
    p = attn(exe, cmd, args, stdin_text)
    check(label + " exit status", p.returncode == rc,
          "attn %s %s: %d (expected %d): %s" % (cmd, " ".join(args), p.returncode, rc,
                                                 p.stderr.strip()[:300]))
    return p


def test_model(exe, spec, folder, rng):
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    H = cfg["n_heads"]
    arch = cfg["architecture"]
    inputs = inputs_for(spec, rng)
    refs = [model.run(ids, src) for ids, src in inputs]
    ids, src = inputs[0]
    ref = refs[0]
    name = spec.name
    path = lambda f: os.path.join(folder, f)  # noqa: E731
    base = ["--config", spec.config] + input_args(ids, src)

    # --reduce mean / max, every head of every sub-layer
    for op in ("mean", "max"):
        run_ok(exe, name + " reduce " + op, "run", base + ["--reduce", op, "--maps", path(op + ".csv")])
        compare_maps("%s --reduce %s" % (name, op), read_maps(path(op + ".csv")),
                     reduce_ref(ref, op), op, TOL_REDUCE, "reduce " + op)

    # --rollout: every layer of every stack's self-attention, no cross-attention
    run_ok(exe, name + " rollout", "run", base + ["--rollout", "--maps", path("rollout.csv")])
    roll = rollout_ref(ref)
    compare_maps(name + " --rollout", read_maps(path("rollout.csv")), roll, "rollout",
                 TOL_ROLLOUT, "rollout")

    # attn stats, every map
    run_ok(exe, name + " stats", "stats", base + ["--out", path("stats.csv")])
    compare_stats(name + " stats", read_stats(path("stats.csv")), ref)

    # selections: --layers 1 --heads 0-1 (models with two layers in a stack)
    n_layers = max(cfg["n_layers"], cfg.get("n_encoder_layers", 0))
    if n_layers >= 2:
        sel = ["--layers", "1", "--heads", "0-1"]
        run_ok(exe, name + " reduce sel", "run", base + sel + ["--reduce", "mean", "--maps", path("sel-mean.csv")])
        want = {k: v for k, v in reduce_ref(ref, "mean", heads={0, 1}).items() if k[1] == 1}
        compare_maps(name + " --layers 1 --heads 0-1 --reduce mean", read_maps(path("sel-mean.csv")),
                     want, "mean", TOL_REDUCE, "reduce mean")
        run_ok(exe, name + " stats sel", "stats", base + sel + ["--out", path("sel-stats.csv")])
        compare_stats(name + " stats --layers 1 --heads 0-1", read_stats(path("sel-stats.csv")), ref,
                      keep=lambda s, l, k, h: l == 1 and h in (0, 1))
        # rollout of layer 1 still goes through layer 0 and every head
        run_ok(exe, name + " rollout sel", "run", base + ["--layers", "1", "--rollout", "--maps", path("sel-roll.csv")])
        compare_maps(name + " --layers 1 --rollout", read_maps(path("sel-roll.csv")),
                     {k: v for k, v in roll.items() if k[1] == 1}, "rollout", TOL_ROLLOUT, "rollout")
    if H >= 3:  # heads that are not a range from 0: the map ends with head 2, not H-1
        run_ok(exe, name + " reduce heads", "run", base + ["--heads", "0,2", "--reduce", "max", "--maps", path("h02-max.csv")])
        compare_maps(name + " --heads 0,2 --reduce max", read_maps(path("h02-max.csv")),
                     reduce_ref(ref, "max", heads={0, 2}), "max", TOL_REDUCE, "reduce max")
    if arch == "encoder-decoder":
        run_ok(exe, name + " rollout stack", "run", base + ["--stack", "encoder", "--rollout", "--maps", path("enc-roll.csv")])
        compare_maps(name + " --stack encoder --rollout", read_maps(path("enc-roll.csv")),
                     {k: v for k, v in roll.items() if k[0] == "encoder"}, "rollout", TOL_ROLLOUT, "rollout")
        run_ok(exe, name + " reduce cross", "run", base + ["--kind", "cross", "--reduce", "max", "--maps", path("cross-max.csv")])
        compare_maps(name + " --kind cross --reduce max", read_maps(path("cross-max.csv")),
                     {k: v for k, v in reduce_ref(ref, "max").items() if k[2] == "cross"}, "max",
                     TOL_REDUCE, "reduce max")
        run_ok(exe, name + " stats cross", "stats", base + ["--kind", "cross", "--heads", "1", "--out", path("cross-stats.csv")])
        compare_stats(name + " stats --kind cross --heads 1", read_stats(path("cross-stats.csv")), ref,
                      keep=lambda s, l, k, h: k == "cross" and h == 1)

    # batch mode: three lines (the last of one position), and a bad line
    if arch == "encoder-decoder":
        lines = ["%s\t%s" % (ids_arg(s), ids_arg(i)) for i, s in inputs]
        bad = "%s\t%d" % (ids_arg(inputs[0][1]), cfg["vocab_size"])
    else:
        lines = [ids_arg(i) for i, _ in inputs]
        bad = "%d" % cfg["vocab_size"]
    stdin = "".join(l + "\n" for l in lines)
    bargs = ["--config", spec.config, "--ids-input"]
    run_ok(exe, name + " batch stats", "stats", bargs + ["--out", path("b-stats.csv")], stdin)
    run_ok(exe, name + " batch mean", "run", bargs + ["--reduce", "mean", "--maps", path("b-mean.csv")], stdin)
    run_ok(exe, name + " batch rollout", "run", bargs + ["--rollout", "--maps", path("b-roll.csv")], stdin)
    st, mean, roll_b = read_stats(path("b-stats.csv")), read_maps(path("b-mean.csv")), read_maps(path("b-roll.csv"))
    for n, r in enumerate(refs):
        compare_stats("%s batch line %d stats" % (name, n), st, r, inp=n)
        compare_maps("%s batch line %d mean" % (name, n), mean, reduce_ref(r, "mean"), "mean",
                     TOL_REDUCE, "reduce mean", inp=n)
        compare_maps("%s batch line %d rollout" % (name, n), roll_b, rollout_ref(r), "rollout",
                     TOL_ROLLOUT, "rollout", inp=n)
    check(name + " batch inputs", sorted({k[0] for k in st}) == [0, 1, 2], repr(sorted({k[0] for k in st})))
    p = run_ok(exe, name + " batch bad line", "stats", bargs + ["--out", path("bad-stats.csv")],
               lines[0] + "\n" + bad + "\n" + lines[2] + "\n", rc=1)
    check(name + " bad line named", "line 2" in p.stderr, p.stderr.strip())
    st = read_stats(path("bad-stats.csv"))
    check(name + " bad line skipped", sorted({k[0] for k in st}) == [0, 2], repr(sorted({k[0] for k in st})))
    compare_stats(name + " bad batch line 2 stats", st, refs[2], inp=2)


# ---- usage errors -------------------------------------------------------------

def test_usage(exe, specs, tmp):
    dec = next(s for s in specs if s.cfg["architecture"] == "decoder")
    encdec = next(s for s in specs if s.cfg["architecture"] == "encoder-decoder")
    one = ["--ids", "1,2,3"]
    two = one + ["--source-ids", "1,2"]
    cases = [
        (dec, "run", one + ["--reduce", "foo", "--maps", "out.csv"], "--reduce"),
        (dec, "run", one + ["--reduce", "", "--maps", "out.csv"], "--reduce"),
        (dec, "run", one + ["--reduce", "mean", "--rollout", "--maps", "out.csv"], "--rollout"),
        (dec, "run", one + ["--reduce", "mean"], "--reduce"),
        (dec, "run", one + ["--rollout", "--context", "out.csv"], "--rollout"),
        (dec, "run", one + ["--rollout", "--heads", "0", "--maps", "out.csv"], "--heads"),
        (encdec, "run", two + ["--rollout", "--kind", "cross", "--maps", "out.csv"], "cross"),
        (dec, "run", one + ["--reduce", "mean", "--heads", "9", "--maps", "out.csv"], "--heads"),
        (dec, "stats", one + ["--maps", "out.csv"], "--maps"),
        (dec, "stats", one + ["--maps", "out.csv", "--out", "s.csv"], "--maps"),
        (dec, "stats", one + ["--reduce", "mean", "--out", "s.csv"], "--reduce"),
        (dec, "stats", one + ["--rollout", "--out", "s.csv"], "--rollout"),
        (dec, "stats", one + ["--context", "c.csv", "--out", "s.csv"], "--context"),
        (dec, "stats", one + ["--top-k", "2", "--out", "s.csv"], "--top-k"),
        (dec, "stats", one + ["--heatmap", "dir", "--out", "s.csv"], "--heatmap"),
        (dec, "stats", one + ["--layers", "7", "--out", "s.csv"], "--layers"),
        (dec, "stats", one + ["--heads", "0-x", "--out", "s.csv"], "--heads"),
        (dec, "stats", one + ["--kind", "cross", "--out", "s.csv"], "cross"),
    ]
    for n, (spec, cmd, args, word) in enumerate(cases):
        d = os.path.join(tmp, "usage%d" % n)
        os.makedirs(d)
        p = subprocess.run([exe, cmd, "--config", spec.config] + args, cwd=d, capture_output=True,
                           text=True, timeout=60)
        label = "usage: attn %s %s" % (cmd, " ".join(args))
        check(label + " exits 2", p.returncode == 2, "%d: %s" % (p.returncode, p.stderr.strip()))
        lines = p.stderr.strip().split("\n")
        check(label + " one line", len(lines) == 1 and lines[0].startswith("attn: "), repr(p.stderr))
        check(label + " names the flag", word in p.stderr, repr(p.stderr))
        check(label + " no output", p.stdout == "", repr(p.stdout[:200]))
        check(label + " no file", os.listdir(d) == [], repr(os.listdir(d)))
    # an --out that cannot be written: exit 1, one line naming it, nothing left
    d = os.path.join(tmp, "usage-missing")
    os.makedirs(d)
    p = subprocess.run([exe, "stats", "--config", dec.config, "--ids", "1,2", "--out",
                        "no-such-folder/s.csv"], cwd=d, capture_output=True, text=True, timeout=60)
    check("stats --out in a missing folder", p.returncode == 1 and p.stderr.count("\n") == 1 and
          "no-such-folder/s.csv" in p.stderr and os.listdir(d) == [],
          "%d %r %r" % (p.returncode, p.stderr, os.listdir(d)))
    # --help of attn stats: the columns and examples, exit 0
    p = subprocess.run([exe, "stats", "--help"], capture_output=True, text=True, timeout=60)
    check("stats --help", p.returncode == 0 and "Examples:" in p.stdout and
          "entropy,sink,distance,prev,self" in p.stdout, p.stdout[:200])


def main(argv):
    if len(argv) != 2:
        print("usage: test_aggregate.py ATTN_EXE")
        return 2
    exe = os.path.abspath(argv[1])
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not an executable" % exe)
        return 77
    tmp = tempfile.mkdtemp(prefix="attn-agg-")
    try:
        specs = make_models.build_all(os.path.join(tmp, "models"))
        rng = np.random.RandomState(1111)
        for spec in specs:
            folder = os.path.join(tmp, spec.name + "-out")
            os.makedirs(folder)
            before = len(failures)
            try:
                test_model(exe, spec, folder, rng)
            except (ValueError, OSError) as e:
                check(spec.name, False, str(e))
            print("%-22s %-16s %s" % (spec.name, spec.cfg["architecture"],
                                      "ok" if len(failures) == before else "FAIL"))
        test_usage(exe, specs, tmp)
    finally:
        if os.environ.get("ATTN_KEEP_TMP"):
            print("temporary files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for what, (d, where) in sorted(largest.items()):
        print("largest difference %-16s %.3g at %s" % (what, d, where))
    print("%d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
