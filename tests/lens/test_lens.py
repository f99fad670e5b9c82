"""attn lens (the logit lens) against the float64 reference.

    /usr/bin/python3 test_lens.py ATTN_EXE

For every random model of tests/reference/make_models.py that has an lm_head
(decoders, encoders, encoder-decoders; layernorm and rmsnorm; tied and
separate heads; with and without a final norm), on random token ids:
  - the reference reads each layer's residual stream (attn_ref's
    blocks.L.resid, in float64) through the final norm and the unembedding,
    as the logit lens does, and takes the top k (equal logits by the lower
    id), with probabilities a softmax in float64;
  - attn lens --top-k 4 gives, for every layer and position, the same ids in
    the same order wherever the reference's logits are more than 1e-4 apart,
    logits within 1e-4 * max(1, |logit|) and probabilities within 2e-5;
  - the last layer's rows equal attn run --top-k --predictions (the model's
    own predictions) byte for byte after the layer column;
  - --last, --layers and batch mode keep the right rows; bad flags exit 2;
  - --attribute TOKEN: every part (embeddings, each head of self- and
    cross-attention, each o bias, each MLP, the final norm's bias) equals
    the decomposition written out here in float64 from the reference's
    values (each head's context times its columns of the o projection,
    through the final norm with its scale frozen) within 1e-4 * max(1, |x|),
    the total is the reference's logit, the parts sum to the total (also
    under --ablate 0.0, where that head's part is 0); a post-norm model is
    refused with exit 2.
Exit status 0 pass, 1 fail, 77 skip.
"""
import csv
import io
import re
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dump"))
import dumptest  # noqa: E402  (exits 77 without numpy or torch; adds tests/reference to the path)
from dumptest import attn_ref, fail, failures, make_models  # noqa: E402,F401

import numpy as np  # noqa: E402
import torch  # noqa: E402,F401

K = 4


def attn(exe, cmd, args, stdin=None):
    return subprocess.run([exe, cmd] + args, input=stdin, capture_output=True, text=True,
                          timeout=300)


def reference_lens(model, out):
    """{(layer, pos): [(id, logit, prob)] * K} from the float64 streams."""
    cfg, t = model.cfg, model.tensors
    W = t["tok_embed"] if cfg["lm_head"] == "tied" else t["lm_head.weight"]
    res = {}
    for layer in range(cfg["n_layers"]):
        x = torch.as_tensor(out.values["blocks.%d.resid" % layer], dtype=torch.float64)
        if cfg["final_norm"]:
            x = attn_ref.norm(cfg, t, "norm", x)
        logits = (x @ W.T).numpy()
        for pos, row in enumerate(logits):
            p = np.exp(row - row.max())
            p /= p.sum()
            order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:K]
            res[(layer, pos)] = ([(i, row[i], p[i]) for i in order], row)
    return res


def parse(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def check_case(exe, spec, rng):
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    ids = rng.randint(0, cfg["vocab_size"], size=spec.seq_len).tolist()
    src = rng.randint(0, cfg["vocab_size"], size=spec.src_len).tolist() if spec.src_len else None
    out = model.run(ids, src)
    ref = reference_lens(model, out)
    args = ["--config", spec.config, "--ids", ",".join(map(str, ids))]
    if src:
        args += ["--source-ids", ",".join(map(str, src))]
    p = attn(exe, "lens", args + ["--top-k", str(K)])
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (spec.name, p.returncode, p.stderr))
        return
    head, rows = parse(p.stdout)
    if head != ["input", "layer", "pos", "rank", "token_id", "token", "logit", "prob"]:
        fail("%s: header %s" % (spec.name, head))
        return
    got = {}
    for r in rows:
        got.setdefault((int(r[1]), int(r[2])), []).append((int(r[3]), int(r[4]), float(r[6]),
                                                           float(r[7])))
    if set(got) != set(ref):
        fail("%s: (layer, pos) %s, expected %s" % (spec.name, sorted(got)[:5], sorted(ref)[:5]))
        return
    worst = 0.0
    for key, (top, row) in ref.items():
        g = got[key]
        if [x[0] for x in g] != list(range(1, K + 1)):
            fail("%s %s: ranks %s" % (spec.name, key, [x[0] for x in g]))
            continue
        for (rank, gid, glogit, gprob), (rid, rlogit, rprob) in zip(g, top):
            # a different id is fine only where the reference's logits are a near tie
            if gid != rid and abs(row[gid] - rlogit) > 1e-4:
                fail("%s %s rank %d: id %d, expected %d" % (spec.name, key, rank, gid, rid))
            d = abs(glogit - row[gid]) / max(1.0, abs(row[gid]))
            worst = max(worst, d)
            if d > 1e-4 or abs(gprob - rprob) > 2e-5 + abs(row[gid] - rlogit):
                fail("%s %s rank %d: logit %.9g prob %.9g, expected %.9g %.9g"
                     % (spec.name, key, rank, glogit, gprob, row[gid], rprob))
    # the last layer is the model's own predictions
    q = attn(exe, "run", args + ["--top-k", str(K), "--predictions", "-"])
    last = cfg["n_layers"] - 1
    mine = [r[:1] + r[2:] for r in rows if int(r[1]) == last]
    _, theirs = parse(q.stdout)
    if q.returncode != 0 or mine != theirs:
        fail("%s: the last layer's rows differ from attn run --top-k (%d vs %d rows)"
             % (spec.name, len(mine), len(theirs)))
    # --last and --layers
    p = attn(exe, "lens", args + ["--top-k", "1", "--last", "--layers", "0"])
    _, rows1 = parse(p.stdout)
    want = [("0", str(len(ids) - 1), "1", str(ref[(0, len(ids) - 1)][0][0][0]))]
    have = [(r[1], r[2], r[3], r[4]) for r in rows1]
    if p.returncode != 0 or have != want:
        fail("%s --last --layers 0: %s, expected %s" % (spec.name, have, want))
    print("%-22s %d layers x %d positions x top %d ok (logits within %.2g)"
          % (spec.name, cfg["n_layers"], len(ids), K, worst))
    return spec


def reference_parts(model, out, target):
    """[(part, kind, layer, head, [T] contributions)] and the [T] logits,
    the decomposition written out in float64 from attn_ref's values."""
    cfg, t = model.cfg, model.tensors
    W = (t["tok_embed"] if cfg["lm_head"] == "tied" else t["lm_head.weight"])[target].numpy()
    D = cfg["d_model"]
    H = cfg["n_heads"]
    v = out.values
    L = cfg["n_layers"]
    x = v["blocks.%d.resid" % (L - 1)]
    if cfg["final_norm"]:
        g = t["norm.weight"].numpy()
        u = W * g
        if cfg["norm"] == "layernorm":
            mean = x.mean(axis=1)
            scale = np.sqrt(((x - mean[:, None]) ** 2).mean(axis=1) + cfg["norm_eps"])

            def f(c):
                return (c @ u - c.mean(axis=-1) * u.sum()) / scale
        else:
            scale = np.sqrt((x ** 2).mean(axis=1) + cfg["norm_eps"])

            def f(c):
                return (c @ u) / scale
    else:
        def f(c):
            return c @ W
    parts = [("embed", "", None, None, f(v["embed"]))]
    T = x.shape[0]
    for layer in range(L):
        for kind in ("attn", "cross"):
            name = "blocks.%d.%s" % (layer, kind)
            if name + ".context" not in v:
                continue
            Wo = t[name + ".o.weight"].numpy()
            ctx = v[name + ".context"]  # [H, T, hd]
            hd = ctx.shape[2]
            for h in range(H):
                c = ctx[h] @ Wo[:, h * hd:(h + 1) * hd].T
                parts.append(("head", "self" if kind == "attn" else "cross", layer, h, f(c)))
            if name + ".o.bias" in t:
                c = np.tile(t[name + ".o.bias"].numpy(), (T, 1))
                parts.append(("attn_bias", "self" if kind == "attn" else "cross", layer, None, f(c)))
        if "blocks.%d.mlp.out" % layer in v:
            parts.append(("mlp", "", layer, None, f(v["blocks.%d.mlp.out" % layer])))
    if cfg["final_norm"] and "norm.bias" in t:
        nb = float(t["norm.bias"].numpy() @ W)
        if nb != 0:
            parts.append(("norm_bias", "", None, None, np.full(T, nb)))
    return parts, out.logits[:, target]


def check_attribution(exe, spec, rng):
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    ids = rng.randint(0, cfg["vocab_size"], size=spec.seq_len).tolist()
    src = rng.randint(0, cfg["vocab_size"], size=spec.src_len).tolist() if spec.src_len else None
    target = int(rng.randint(0, cfg["vocab_size"]))
    args = ["--config", spec.config, "--ids", ",".join(map(str, ids))]
    if src:
        args += ["--source-ids", ",".join(map(str, src))]
    p = attn(exe, "lens", args + ["--attribute", str(target)
                                  if not re.fullmatch(r"[a-z]+", model.piece(target))
                                  else model.piece(target)])
    if cfg["norm_position"] != "pre":
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or "pre-norm" not in lines[0]:
            fail("%s (post-norm) --attribute: exit %d, %r" % (spec.name, p.returncode, p.stderr))
        return 0
    if p.returncode != 0:
        fail("%s --attribute: exit %d: %s" % (spec.name, p.returncode, p.stderr))
        return 0
    head, rows = parse(p.stdout)
    if head != ["input", "pos", "token_id", "token", "part", "kind", "layer", "head", "logit"]:
        fail("%s --attribute: header %s" % (spec.name, head))
        return 0
    parts, logits = reference_parts(model, model.run(ids, src), target)
    want = []
    for pos in range(len(ids)):
        for part, kind, layer, h, c in parts:
            want.append((pos, part, kind, layer, h, c[pos]))
        want.append((pos, "total", "", None, None, logits[pos]))
    if len(rows) != len(want):
        fail("%s --attribute: %d rows, expected %d" % (spec.name, len(rows), len(want)))
        return 0
    worst = 0.0
    for r, (pos, part, kind, layer, h, value) in zip(rows, want):
        key = (int(r[1]), r[4], r[5], int(r[6]) if r[6] else None, int(r[7]) if r[7] else None)
        if key != (pos, part, kind, layer, h) or int(r[2]) != target:
            fail("%s --attribute: row %s, expected %s" % (spec.name, r, (pos, part, kind, layer, h)))
            return 0
        d = abs(float(r[8]) - value) / max(1.0, abs(value))
        worst = max(worst, d)
        if d > 1e-4:
            fail("%s --attribute %s: %s, expected %.9g" % (spec.name, key, r[8], value))
    # the parts of each position sum to its total
    for pos in range(len(ids)):
        mine = [float(r[8]) for r in rows if int(r[1]) == pos]
        if abs(sum(mine[:-1]) - mine[-1]) > 1e-4 * max(1.0, abs(mine[-1])):
            fail("%s --attribute pos %d: parts sum to %.9g, total %.9g"
                 % (spec.name, pos, sum(mine[:-1]), mine[-1]))
    # under --ablate 0.0 (zero) the head's part is 0 and the parts still sum to the total
    p = attn(exe, "lens", args + ["--attribute", str(target), "--ablate", "0.0"])
    if p.returncode != 0:
        fail("%s --attribute --ablate 0.0: exit %d: %s" % (spec.name, p.returncode, p.stderr))
        return 0
    _, arows = parse(p.stdout)
    h00 = [float(r[8]) for r in arows if r[4] == "head" and r[5] == "self" and r[6] == "0"
           and r[7] == "0"]
    if len(h00) != len(ids) or any(x != 0 for x in h00):
        fail("%s --attribute --ablate 0.0: head 0.0's parts %s" % (spec.name, h00[:4]))
    print("%-22s --attribute: %d parts x %d positions ok (within %.2g)"
          % (spec.name, len(parts), len(ids), worst))
    return 1


def check_batch_and_errors(exe, spec, tmp):
    cfg = spec.config
    out = os.path.join(tmp, "lens.csv")
    p = attn(exe, "lens", ["--config", cfg, "--top-k", "1", "--out", out, "--quiet"],
             stdin="the cat sits\n" + "w1 " * 200 + "\non the mat\n")
    if p.returncode != 1 or "line 2" not in p.stderr:
        fail("batch: exit %d, stderr %r (expected 1 naming line 2)" % (p.returncode, p.stderr))
    else:
        with open(out, newline="", encoding="utf-8") as f:
            inputs = sorted({r[0] for r in list(csv.reader(f))[1:]})
        if inputs != ["0", "2"]:
            fail("batch: inputs %s, expected 0 and 2" % inputs)
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    b = os.path.join(bad, "x.csv")
    for flags, word in [(["--maps", b], "--maps"), (["--top-k", "0", "--out", b], "--top-k"),
                        (["--layers", "9", "--out", b], "layers 0-"),
                        (["--heads", "0", "--out", b], "--heads"),
                        (["--dump", "*", "--out", b], "--dump"),
                        (["--out", ""], "--out"),
                        (["--attribute", "no-such-token", "--out", b], "vocabulary"),
                        (["--attribute", "cat", "--top-k", "2", "--out", b], "--top-k")]:
        p = attn(exe, "lens", ["--config", cfg, "--text", "the cat"] + flags)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or word not in lines[0]:
            fail("%s: exit %d, stderr %r" % (flags, p.returncode, p.stderr))
        if os.listdir(bad):
            fail("%s left %s" % (flags, os.listdir(bad)))
    p = attn(exe, "run", ["--config", cfg, "--text", "the cat", "--attribute", "cat"])
    if p.returncode != 2 or "attn lens" not in p.stderr:
        fail("run --attribute: exit %d, %r" % (p.returncode, p.stderr))
    print("batch mode and 9 bad flags ok")


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"))
    rng = np.random.RandomState(31337)
    n = n_attr = 0
    for spec in specs:
        if attn_ref.Model.load(spec.config).cfg["lm_head"] == "none":
            p = attn(exe, "lens", ["--config", spec.config, "--ids", "1,2"])
            if p.returncode == 0 or "lm_head" not in p.stderr:
                fail("%s (no lm_head): exit %d, %r" % (spec.name, p.returncode, p.stderr))
            continue
        check_case(exe, spec, rng)
        n += 1
        n_attr += check_attribution(exe, spec, rng)
    if n < 4 or n_attr < 4:
        fail("only %d models with an lm_head, %d pre-norm" % (n, n_attr))
    check_batch_and_errors(exe, specs[0], tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
