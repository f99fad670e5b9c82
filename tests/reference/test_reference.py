"""End-to-end numeric test of `attn run` against the float64 reference.

    /usr/bin/python3 test_reference.py ATTN_EXE

For every random model of make_models.py (GPT-2-like, BERT-like, the original
Transformer, Llama-like with two rope_theta values, multi-query, and variants
that cover every other option of docs/model-format.md):

  1. a single run with --ids (and --source-ids) writing --maps and --context;
  2. a batch run through standard input with --ids-input (for an
     encoder-decoder, lines are SOURCE<TAB>TARGET ids) of three lines, checked
     against the reference and against single runs of the same lines;
  3. for the first decoder, encoder and encoder-decoder model, a batch with a
     bad line: exit status 1, the other lines present with their own line
     index in the input column.

Every attention weight is compared with attn_ref: |attn - ref| <= 2e-5.
Every context value: |attn - ref| <= 1e-4 * max(1, |ref|).
Also checked: the CSV headers; every row that must exist does, no row is
duplicated or unexpected; an entry above the diagonal of causal
self-attention, when present, is exactly 0; the tokens in the query_token /
key_token / token columns are the vocabulary pieces of the ids (several need
RFC 4180 quoting).

Exit status: 0 pass, 1 fail, 77 skip (no torch, no executable).
"""
import csv
import io
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
sys.path.insert(0, _HERE)
import attn_ref  # noqa: E402
import make_models  # noqa: E402

WEIGHT_ABS_TOL = 2e-5
CONTEXT_REL_TOL = 1e-4
BATCH_SAME_TOL = 1e-6  # batch row vs single run of the same line

MAPS_HEADER = ["input", "stack", "layer", "kind", "head", "query_pos", "query_token",
               "key_pos", "key_token", "weight"]


class Failure(Exception):
    pass


class Stats:
    def __init__(self):
        self.weight_diff = 0.0
        self.weight_where = ""
        self.ctx_diff = 0.0     # max |a-b| / max(1,|b|)
        self.ctx_where = ""
        self.n_weights = 0
        self.n_ctx = 0
        self.n_omitted = 0      # causal entries left out of the CSV
        self.batch_diff = 0.0
        self.batch_nonidentical = 0
        self.errors = []

    def error(self, msg):
        if len(self.errors) < 30:
            self.errors.append(msg)
        elif len(self.errors) == 30:
            self.errors.append("... (more errors left out)")


def run_attn(exe, args, stdin_text=None, expect_rc=0):
    p = subprocess.run([exe, "run"] + args, input=stdin_text, capture_output=True, text=True,
                       timeout=120)
    if p.returncode != expect_rc:
        raise Failure("attn run %s exited %d (expected %d): %s"
                      % (" ".join(args), p.returncode, expect_rc, p.stderr.strip()[:500]))
    return p


def read_maps(path, st):
    """{input: {(stack, layer, kind, head, qpos, kpos): (weight, qtok, ktok, text)}}"""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != MAPS_HEADER:
        raise Failure("%s: header is %r, expected %r" % (path, rows[0] if rows else None, MAPS_HEADER))
    out = {}
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(MAPS_HEADER):
            st.error("maps line %d has %d fields: %r" % (n, len(r), r))
            continue
        inp = int(r[0])
        key = (r[1], int(r[2]), r[3], int(r[4]), int(r[5]), int(r[7]))
        d = out.setdefault(inp, {})
        if key in d:
            st.error("maps line %d: duplicate entry input %d %r" % (n, inp, key))
        d[key] = (float(r[9]), r[6], r[8], r[9])
    return out


def read_context(path, d_model, st):
    """{input: {pos: (token, np.array[D], texts)}}"""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    want = ["input", "pos", "token"] + ["d%d" % i for i in range(d_model)]
    if not rows or rows[0][:len(want)] != want:
        raise Failure("%s: header %r does not start with %r" % (path, rows[0][:6] if rows else None, want[:6]))
    ncol = len(rows[0])
    out = {}
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != ncol:
            st.error("context line %d has %d fields, header %d" % (n, len(r), ncol))
            continue
        inp, pos = int(r[0]), int(r[1])
        d = out.setdefault(inp, {})
        if pos in d:
            st.error("context line %d: duplicate input %d pos %d" % (n, inp, pos))
        d[pos] = (r[2], np.array([float(v) for v in r[3:3 + d_model]]), r[3:3 + d_model])
    return out


def check_input(model, ref, ids, src, maps, ctx, st, label):
    """Compares one input's CSV entries with the reference output `ref`."""
    cfg = model.cfg
    piece = model.piece
    maps = dict(maps or {})
    ctx = ctx or {}
    for (stack, layer, kind, head), w in sorted(ref.maps.items()):
        if stack == "encoder" and cfg["architecture"] == "encoder-decoder":
            q_ids, k_ids = src, src
        elif kind == "cross":
            q_ids, k_ids = ids, src
        else:
            q_ids, k_ids = ids, ids
        causal = stack == "decoder" and kind == "self"
        T, Tk = w.shape
        for i in range(T):
            for j in range(Tk):
                key = (stack, layer, kind, head, i, j)
                entry = maps.pop(key, None)
                where = "%s %s layer %d %s head %d q%d k%d" % (label, stack, layer, kind, head, i, j)
                if entry is None:
                    if causal and j > i:
                        st.n_omitted += 1
                        continue
                    st.error("%s: missing row" % where)
                    continue
                value, qtok, ktok, _ = entry
                if causal and j > i and value != 0.0:
                    st.error("%s: above the diagonal of causal self-attention but %r" % (where, value))
                if qtok != piece(q_ids[i]) or ktok != piece(k_ids[j]):
                    st.error("%s: tokens %r,%r expected %r,%r" % (where, qtok, ktok, piece(q_ids[i]), piece(k_ids[j])))
                diff = abs(value - w[i, j])
                st.n_weights += 1
                if diff > st.weight_diff:
                    st.weight_diff, st.weight_where = diff, where
                if not diff <= WEIGHT_ABS_TOL:
                    st.error("%s: weight %r, reference %.9g (diff %.3g)" % (where, value, w[i, j], diff))
    for key in list(maps)[:5]:
        st.error("%s: unexpected maps row %r" % (label, key))
    if maps:
        st.error("%s: %d unexpected maps rows" % (label, len(maps)))

    hidden = ref.hidden
    T, D = hidden.shape
    if sorted(ctx) != list(range(T)):
        st.error("%s: context positions %r, expected 0..%d" % (label, sorted(ctx)[:30], T - 1))
    for pos in range(T):
        if pos not in ctx:
            continue
        tok, vals, _ = ctx[pos]
        if tok != piece(ids[pos]):
            st.error("%s: context pos %d token %r expected %r" % (label, pos, tok, piece(ids[pos])))
        rel = np.abs(vals - hidden[pos]) / np.maximum(1.0, np.abs(hidden[pos]))
        st.n_ctx += D
        k = int(np.argmax(rel))
        if rel[k] > st.ctx_diff:
            st.ctx_diff, st.ctx_where = float(rel[k]), "%s pos %d d%d" % (label, pos, k)
        if not np.all(rel <= CONTEXT_REL_TOL):
            st.error("%s: context pos %d d%d = %r, reference %.9g (rel diff %.3g)"
                     % (label, pos, k, vals[k], hidden[pos][k], rel[k]))


def compare_same(a_maps, b_maps, a_ctx, b_ctx, st, label):
    """A batch line's rows against a single run of the same line."""
    if set(a_maps) != set(b_maps):
        st.error("%s: batch rows differ from the single run's (%d vs %d keys, e.g. %r)"
                 % (label, len(a_maps), len(b_maps), sorted(set(a_maps) ^ set(b_maps))[:3]))
    for key in set(a_maps) & set(b_maps):
        a, b = a_maps[key], b_maps[key]
        if a[1:] != b[1:]:
            if a[1:3] != b[1:3]:
                st.error("%s: %r tokens differ between batch and single run" % (label, key))
            d = abs(a[0] - b[0])
            st.batch_nonidentical += 1
            st.batch_diff = max(st.batch_diff, d)
            if d > BATCH_SAME_TOL:
                st.error("%s: %r batch %r single %r" % (label, key, a[3], b[3]))
    if set(a_ctx) != set(b_ctx):
        st.error("%s: batch context positions differ from the single run's" % label)
    for pos in set(a_ctx) & set(b_ctx):
        if a_ctx[pos][0] != b_ctx[pos][0]:
            st.error("%s: context pos %d token differs" % (label, pos))
        if a_ctx[pos][2] != b_ctx[pos][2]:
            d = float(np.max(np.abs(a_ctx[pos][1] - b_ctx[pos][1]) / np.maximum(1, np.abs(b_ctx[pos][1]))))
            st.batch_nonidentical += 1
            st.batch_diff = max(st.batch_diff, d)
            if d > BATCH_SAME_TOL:
                st.error("%s: context pos %d differs from the single run by %.3g" % (label, pos, d))


def ids_arg(ids):
    return ",".join(str(i) for i in ids)


def make_inputs(spec, rng):
    """Three (ids, src) pairs; the first has the full test length and uses the
    tokens that need CSV quoting."""
    V = spec.cfg["vocab_size"]
    special = list(range(10, len(make_models.BASE_WORDS)))
    out = []
    for n, length in enumerate((spec.seq_len, max(1, spec.seq_len // 2), 1 if n_small(spec) else 3)):
        ids = rng.randint(0, V, size=length).tolist()
        if n == 0:
            for k, s in enumerate(special[: max(0, length - 2)]):
                ids[(k * 3 + 1) % length] = s
        src = None
        if spec.src_len:
            src = rng.randint(0, V, size=max(1, spec.src_len - 3 * n)).tolist()
            if n == 0:
                src[0] = special[1]
        out.append((ids, src))
    return out


def n_small(spec):
    # One model also runs a single-token input (the smallest sequence).
    return spec.name in ("gpt2", "transformer", "bert")


def test_model(exe, spec, tmp, rng, bad_line_check):
    st = Stats()
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    inputs = make_inputs(spec, rng)
    refs = [model.run(ids, src) for ids, src in inputs]
    folder = os.path.join(tmp, spec.name + "-out")
    os.makedirs(folder, exist_ok=True)
    single = []
    try:
        # 1. single runs of every input
        for n, (ids, src) in enumerate(inputs):
            mp = os.path.join(folder, "single%d-maps.csv" % n)
            cp = os.path.join(folder, "single%d-ctx.csv" % n)
            args = ["--config", spec.config, "--ids", ids_arg(ids), "--maps", mp, "--context", cp]
            if src is not None:
                args += ["--source-ids", ids_arg(src)]
            run_attn(exe, args)
            maps = read_maps(mp, st)
            ctx = read_context(cp, cfg["d_model"], st)
            if set(maps) - {0} or set(ctx) - {0}:
                st.error("single run %d: input column not 0 (%r)" % (n, sorted(set(maps) | set(ctx))))
            check_input(model, refs[n], ids, src, maps.get(0), ctx.get(0), st, "single%d" % n)
            single.append((maps.get(0, {}), ctx.get(0, {})))

        # 2. one batch run through standard input
        if cfg["architecture"] == "encoder-decoder":
            lines = ["%s\t%s" % (ids_arg(src), ids_arg(ids)) for ids, src in inputs]
        else:
            lines = [ids_arg(ids) for ids, _ in inputs]
        mp = os.path.join(folder, "batch-maps.csv")
        cp = os.path.join(folder, "batch-ctx.csv")
        run_attn(exe, ["--config", spec.config, "--ids-input", "--maps", mp, "--context", cp],
                 stdin_text="".join(l + "\n" for l in lines))
        maps = read_maps(mp, st)
        ctx = read_context(cp, cfg["d_model"], st)
        if sorted(maps) != list(range(len(lines))) or sorted(ctx) != list(range(len(lines))):
            st.error("batch: input column values %r / %r, expected 0..%d"
                     % (sorted(maps), sorted(ctx), len(lines) - 1))
        for n, (ids, src) in enumerate(inputs):
            check_input(model, refs[n], ids, src, maps.get(n), ctx.get(n), st, "batch%d" % n)
            compare_same(maps.get(n, {}), single[n][0], ctx.get(n, {}), single[n][1], st,
                         "batch line %d vs single" % n)

        # 2b. encoder-decoder: batch of target lines with one --source-ids
        if cfg["architecture"] == "encoder-decoder":
            src0 = inputs[0][1]
            mp = os.path.join(folder, "batchsrc-maps.csv")
            cp = os.path.join(folder, "batchsrc-ctx.csv")
            run_attn(exe, ["--config", spec.config, "--ids-input", "--source-ids", ids_arg(src0),
                           "--maps", mp, "--context", cp],
                     stdin_text="".join(ids_arg(ids) + "\n" for ids, _ in inputs[:2]))
            maps = read_maps(mp, st)
            ctx = read_context(cp, cfg["d_model"], st)
            for n in range(2):
                ids = inputs[n][0]
                ref = refs[0] if n == 0 else model.run(ids, src0)
                check_input(model, ref, ids, src0, maps.get(n), ctx.get(n), st, "batch-source-ids%d" % n)

        # 3. a bad line counts in the input column, is skipped, exit status 1
        if bad_line_check:
            V = cfg["vocab_size"]
            bad = "%d,%d" % (1, V)  # id V is outside the vocabulary
            if cfg["architecture"] == "encoder-decoder":
                bad = "%s\t%s" % (ids_arg(inputs[0][1]), bad)
            blines = [lines[1], bad, lines[2]]
            mp = os.path.join(folder, "bad-maps.csv")
            cp = os.path.join(folder, "bad-ctx.csv")
            p = run_attn(exe, ["--config", spec.config, "--ids-input", "--maps", mp, "--context", cp],
                         stdin_text="".join(l + "\n" for l in blines), expect_rc=1)
            if "2" not in p.stderr:
                st.error("bad line: message %r does not name line 2" % p.stderr.strip())
            if not os.path.exists(mp) or not os.path.exists(cp):
                st.error("bad line: the other lines' output files were not written")
            else:
                maps = read_maps(mp, st)
                ctx = read_context(cp, cfg["d_model"], st)
                if sorted(maps) != [0, 2] or sorted(ctx) != [0, 2]:
                    st.error("bad line: input column values %r / %r, expected [0, 2]" % (sorted(maps), sorted(ctx)))
                for n, k in ((0, 1), (2, 2)):
                    ids, src = inputs[k]
                    check_input(model, refs[k], ids, src, maps.get(n), ctx.get(n), st, "bad-batch%d" % n)
    except Failure as e:
        st.error(str(e))
    return st


def main(argv):
    if len(argv) != 2:
        print("usage: test_reference.py ATTN_EXE")
        return 2
    exe = os.path.abspath(argv[1])
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not an executable" % exe)
        return 77
    tmp = tempfile.mkdtemp(prefix="attn-ref-")
    failed = []
    try:
        specs = make_models.build_all(os.path.join(tmp, "models"))
        rng = np.random.RandomState(4242)
        seen_arch = set()
        totals = Stats()
        print("%-22s %-16s %9s %11s %9s %11s  %s" % ("model", "architecture", "weights", "max|dw|",
                                                     "context", "max rel dc", "result"))
        for spec in specs:
            arch = spec.cfg["architecture"]
            st = test_model(exe, spec, tmp, rng, arch not in seen_arch)
            seen_arch.add(arch)
            ok = not st.errors
            print("%-22s %-16s %9d %11.3g %9d %11.3g  %s%s" % (
                spec.name, arch, st.n_weights, st.weight_diff, st.n_ctx, st.ctx_diff,
                "ok" if ok else "FAIL",
                "" if st.batch_nonidentical == 0 else
                "  (batch vs single: %d values not identical, max %.3g)" % (st.batch_nonidentical, st.batch_diff)))
            if not ok:
                failed.append(spec.name)
                for e in st.errors:
                    print("    " + e)
            if st.weight_diff >= totals.weight_diff:
                totals.weight_diff, totals.weight_where = st.weight_diff, spec.name + ": " + st.weight_where
            if st.ctx_diff >= totals.ctx_diff:
                totals.ctx_diff, totals.ctx_where = st.ctx_diff, spec.name + ": " + st.ctx_where
            totals.n_weights += st.n_weights
            totals.n_ctx += st.n_ctx
            totals.n_omitted += st.n_omitted
    finally:
        if os.environ.get("ATTN_KEEP_TMP"):
            print("temporary files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("compared %d attention weights (%d causal entries left out, counted as 0) and %d context values"
          % (totals.n_weights, totals.n_omitted, totals.n_ctx))
    print("largest weight difference   %.3g (tolerance %g absolute) at %s"
          % (totals.weight_diff, WEIGHT_ABS_TOL, totals.weight_where))
    print("largest context difference  %.3g (tolerance: |a-b| <= %g * max(1, |ref|)) at %s"
          % (totals.ctx_diff, CONTEXT_REL_TOL, totals.ctx_where))
    print("%d passed, %d failed" % (len(specs) - len(failed), len(failed)))
    if failed:
        print("FAILED models: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
