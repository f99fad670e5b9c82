"""The two seed examples through `attn run --text`, on random-weight models.

    /usr/bin/python3 test_seed_examples.py ATTN_EXE

  "The sun rises in the east"  through a BERT-like encoder
  "The cat sits on the mat"    through a GPT-2-like decoder

Both models have a word vocabulary containing those words and a lowercasing
tokenizer. Checked: the query_token / key_token / token columns are the
lowercased words, in order; the stack column names the model's stack and kind
is "self"; every row of every map sums to 1 (within 1e-6, a missing causal
entry counting as 0); decoder: every entry present above the diagonal is
exactly 0; encoder: every map has a weight above the diagonal > 0. Every
weight and context value is also compared with the float64 reference
(2e-5 absolute; 1e-4 * max(1, |ref|) for context).

Exit status: 0 pass, 1 fail, 77 skip (no torch, no executable).
"""
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

try:
    import numpy as np  # noqa: F401
    import torch  # noqa: F401
except ImportError:
    print("SKIP: torch/numpy not available to %s" % sys.executable)
    sys.exit(77)

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import attn_ref  # noqa: E402
import make_models  # noqa: E402
import test_reference as tr  # noqa: E402

ROW_SUM_TOL = 1e-6

EXAMPLES = [
    # (spec name in make_models, new name, seed, text, stack)
    ("bert", "seed-encoder", 7001, "The sun rises in the east", "encoder"),
    ("gpt2", "seed-decoder", 7002, "The cat sits on the mat", "decoder"),
]


def spec_copy(name, new_name, seed):
    base = [s for s in make_models.SPECS if s.name == name][0]
    s = copy.copy(base)
    s.cfg = dict(base.cfg)
    s.name = new_name
    s.seed = seed
    return s


def run_example(exe, root, base, name, seed, text, stack):
    st = tr.Stats()
    checks = []  # (description, ok, detail)
    spec = make_models.build(spec_copy(base, name, seed), root)
    model = attn_ref.Model.load(spec.config)
    words = text.lower().split()
    ids = model.encode_words(text)
    if [model.piece(i) for i in ids] != words:
        checks.append(("reference tokenizes the text into its words", False,
                       "%r" % [model.piece(i) for i in ids]))
    mp = os.path.join(root, name + "-maps.csv")
    cp = os.path.join(root, name + "-ctx.csv")
    p = subprocess.run([exe, "run", "--config", spec.config, "--text", text, "--maps", mp,
                        "--context", cp], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        checks.append(("attn run exits 0", False, "exit %d: %s" % (p.returncode, p.stderr.strip())))
        return checks, st
    maps = tr.read_maps(mp, st).get(0, {})
    ctx = tr.read_context(cp, model.cfg["d_model"], st).get(0, {})
    T = len(words)

    # tokens
    bad = [(k, v[1], v[2]) for k, v in maps.items()
           if k[4] >= T or k[5] >= T or v[1] != words[k[4]] or v[2] != words[k[5]]]
    checks.append(("query_token/key_token are the words %r" % words, not bad and bool(maps),
                   "e.g. %r" % bad[:3]))
    ctx_tokens = [ctx[p][0] for p in sorted(ctx)]
    checks.append(("context token column is the words", ctx_tokens == words, "%r" % ctx_tokens))
    kinds = {(k[0], k[2]) for k in maps}
    checks.append(("stack/kind columns are %s/self" % stack, kinds == {(stack, "self")}, "%r" % kinds))

    # row sums, diagonal
    sums = defaultdict(float)
    above = defaultdict(float)
    above_nonzero = []
    for (stk, layer, kind, head, q, k), v in maps.items():
        sums[(layer, head, q)] += v[0]
        if k > q:
            above[(layer, head)] = max(above[(layer, head)], v[0])
            if v[0] != 0.0:
                above_nonzero.append(((layer, head, q, k), v[3]))
    n_maps = model.cfg["n_layers"] * model.cfg["n_heads"]
    expected_rows = {(l, h, q) for l in range(model.cfg["n_layers"])
                     for h in range(model.cfg["n_heads"]) for q in range(T)}
    worst_sum = max((abs(s - 1.0) for s in sums.values()), default=float("inf"))
    checks.append(("every row sums to 1 (%d rows, max |sum-1| %.3g)" % (len(sums), worst_sum),
                   set(sums) == expected_rows and worst_sum <= ROW_SUM_TOL,
                   "rows %d expected %d" % (len(sums), len(expected_rows))))
    if stack == "decoder":
        checks.append(("every present entry above the diagonal is exactly 0",
                       not above_nonzero, "e.g. %r" % above_nonzero[:3]))
    else:
        ok = len(above) == n_maps and all(v > 0 for v in above.values())
        checks.append(("every map has a weight above the diagonal > 0 (smallest map max %.3g)"
                       % min(above.values(), default=0.0), ok, "%r" % dict(above)))

    # against the reference
    ref = model.run(ids)
    tr.check_input(model, ref, ids, None, maps, ctx, st, name)
    checks.append(("matches the float64 reference (max |dw| %.3g, max rel context diff %.3g)"
                   % (st.weight_diff, st.ctx_diff), not st.errors, "; ".join(st.errors[:5])))
    return checks, st


def main(argv):
    if len(argv) != 2:
        print("usage: test_seed_examples.py ATTN_EXE")
        return 2
    exe = os.path.abspath(argv[1])
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not an executable" % exe)
        return 77
    root = tempfile.mkdtemp(prefix="attn-seed-")
    n_ok = n_fail = 0
    try:
        for base, name, seed, text, stack in EXAMPLES:
            print("%s: %r" % (name, text))
            try:
                checks, _ = run_example(exe, root, base, name, seed, text, stack)
            except tr.Failure as e:
                checks = [("read the CSV output", False, str(e))]
            for desc, ok, detail in checks:
                print("  %s %s%s" % ("ok  " if ok else "FAIL", desc, "" if ok else "\n       " + detail))
                n_ok += ok
                n_fail += not ok
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (n_ok, n_fail))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
