"""models/seed-attention: a hand-made attention-only model small enough to
check by hand, and its worked example computed in float64.

    /usr/bin/python3 tools/seed_attention.py build [--out DIR]   # writes the model
    /usr/bin/python3 tools/seed_attention.py example             # prints the worked example

The model is one encoder block (bidirectional self-attention, no MLP, no
positions) with d_model 4 and 2 heads of head_dim 2. The input vectors are
the hand-written rows of data/seed-embeddings.csv, one per word of
"The sun rises in the east"; they are also the model's tok_embed rows, so
text and --embeddings give the same numbers. Their four dimensions mean

    d0 = article   d1 = thing (noun)   d2 = action (verb)   d3 = place / where

and the weights are small whole numbers chosen so that each head asks one
question:

    head 0 "what thing is this about?"  articles and verbs look for things,
           things look for their article;
    head 1 "where / what happens?"       verbs and place words look for places,
           things look for actions.

Norm: post-norm layernorm with weight 1 and bias 0, so attention reads X
itself (the norm only comes after the residual add, and is not part of the
worked example). Needs only numpy.
"""
import argparse
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

SENTENCE = "The sun rises in the east"
EMBEDDINGS_CSV = os.path.join(ROOT, "data", "seed-embeddings.csv")
VOCAB = ["<unk>", "the", "sun", "rises", "in", "east"]

D, H, HD = 4, 2, 2

CONFIG = {
    "architecture": "encoder",
    "vocab_size": len(VOCAB),
    "d_model": D,
    "n_heads": H,
    "max_seq_len": 16,
    "n_layers": 1,
    "positional": "none",
    "norm": "layernorm",
    "norm_position": "post",
    "mlp": "none",
    "bias": False,
    "lm_head": "none",
}

# Linear weights in the file's layout [out, in]: row j makes output j from the
# input dimensions d0..d3. Rows 0-1 belong to head 0, rows 2-3 to head 1.
WQ = [
    [1, 0, 1, 0],  # head 0, q0 = d0 + d2   articles and verbs ask for a thing
    [0, 1, 0, 0],  # head 0, q1 = d1        things ask for their article
    [0, 0, 1, 1],  # head 1, q0 = d2 + d3   verbs and place words ask "where?"
    [0, 1, 0, 0],  # head 1, q1 = d1        things ask "what happens?"
]
WK = [
    [0, 2, 0, 0],  # head 0, k0 = 2 d1      "I am a thing"
    [2, 0, 0, 0],  # head 0, k1 = 2 d0      "I am an article"
    [0, 1, 0, 1],  # head 1, k0 = d1 + d3   "I am a place"
    [0, 0, 2, 0],  # head 1, k1 = 2 d2      "I am an action"
]
WV = [
    [1, 0, 0, 0],  # head 0 passes on d0, d1
    [0, 1, 0, 0],
    [0, 0, 1, 0],  # head 1 passes on d2, d3
    [0, 0, 0, 1],
]
WO = [  # the identity: the concatenated contexts land in d0..d3 as they are
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
]


def words(text=SENTENCE):
    return text.lower().split()


def read_embeddings(path=EMBEDDINGS_CSV):
    """The rows of the CSV (comments and the header row skipped): [T, D] float64."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("d0"):
                continue
            rows.append([float(x) for x in line.split(",")])
    x = np.array(rows, dtype=np.float64)
    if x.shape != (len(words()), D):
        raise ValueError("%s: expected %d rows of %d numbers" % (path, len(words()), D))
    return x


def tok_embed():
    """[V, D]: row of each vocabulary word taken from the CSV; <unk> is zeros."""
    x = read_embeddings()
    table = np.zeros((len(VOCAB), D))
    seen = {}
    for w, row in zip(words(), x):
        i = VOCAB.index(w)
        if w in seen and not np.array_equal(seen[w], row):
            raise ValueError("%s: the rows of '%s' differ" % (EMBEDDINGS_CSV, w))
        seen[w] = row
        table[i] = row
    return table


def tensors():
    return {
        "tok_embed": tok_embed(),
        "blocks.0.attn_norm.weight": np.ones(D),
        "blocks.0.attn_norm.bias": np.zeros(D),
        "blocks.0.attn.q.weight": np.array(WQ, dtype=np.float64),
        "blocks.0.attn.k.weight": np.array(WK, dtype=np.float64),
        "blocks.0.attn.v.weight": np.array(WV, dtype=np.float64),
        "blocks.0.attn.o.weight": np.array(WO, dtype=np.float64),
    }


def build(out):
    import attn_format
    path = attn_format.write_model(out, CONFIG, tensors(), vocab=VOCAB)
    return path


def softmax_rows(s):
    m = s.max(axis=1, keepdims=True)
    e = np.exp(s - m)
    return e / e.sum(axis=1, keepdims=True)


def worked_example():
    """Every step in float64, by the textbook formulas. Returns {name: array}:
    X [T, D]; per head h: Wq{h}, Wk{h}, Wv{h} [D, hd] (the file's rows
    transposed), Q{h}, K{h}, V{h} [T, hd], QK{h} = Q Kᵀ, S{h} = QK / √hd,
    weights{h} = softmax(S), C{h} = weights V; concat [T, H*hd]; Wo [H*hd, D];
    out = concat Wo [T, D]."""
    x = read_embeddings()
    wq, wk, wv, wo = (np.array(m, dtype=np.float64) for m in (WQ, WK, WV, WO))
    r = {"X": x}
    ctx = []
    for h in range(H):
        rows = slice(h * HD, (h + 1) * HD)
        r["Wq%d" % h] = wq[rows].T
        r["Wk%d" % h] = wk[rows].T
        r["Wv%d" % h] = wv[rows].T
        q = x @ wq[rows].T
        k = x @ wk[rows].T
        v = x @ wv[rows].T
        r["Q%d" % h], r["K%d" % h], r["V%d" % h] = q, k, v
        r["QK%d" % h] = q @ k.T
        r["S%d" % h] = r["QK%d" % h] / math.sqrt(HD)
        r["weights%d" % h] = softmax_rows(r["S%d" % h])
        r["C%d" % h] = r["weights%d" % h] @ v
        ctx.append(r["C%d" % h])
    r["concat"] = np.concatenate(ctx, axis=1)
    r["Wo"] = wo.T
    r["out"] = r["concat"] @ wo.T
    return r


def format_matrix(m, rows=None, cols=None, digits=3):
    """A small fixed-width table (for the guide)."""
    m = np.atleast_2d(m)
    w = digits + 5
    rows = rows or [""] * m.shape[0]
    lw = max(len(r) for r in rows) + 2
    out = []
    if cols:
        out.append(" " * lw + "".join(c.rjust(w) for c in cols))
    for name, row in zip(rows, m):
        cells = "".join(("%.*f" % (digits, v)).replace("-0.000", "0.000").rjust(w) for v in row)
        out.append(name.ljust(lw) + cells)
    return "\n".join(out)


def main(argv):
    # the docstring's first paragraph (two lines) as the description, the
    # rest after the options; both as written
    summary, _, rest = __doc__.strip().partition("\n\n")
    ap = argparse.ArgumentParser(description=summary, epilog=rest,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the model folder")
    b.add_argument("--out", default=os.path.join(ROOT, "models", "seed-attention"))
    sub.add_parser("example", help="print the worked example (float64)")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(build(args.out))
        return 0
    r = worked_example()
    toks = ["%d %s" % (i, w) for i, w in enumerate(words())]
    for name in ["X"] + ["%s%d" % (n, h) for h in range(H)
                         for n in ("Q", "K", "V", "QK", "S", "weights", "C")] + ["concat", "out"]:
        print(name)
        print(format_matrix(r[name], toks))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
