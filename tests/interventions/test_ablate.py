"""attn run --ablate against the float64 reference with the same intervention.

    /usr/bin/python3 test_ablate.py ATTN_EXE

On random models of tests/reference/make_models.py (a decoder, a grouped-query
decoder with head_dim != d_model / n_heads, an encoder, encoder-decoders) and
random token ids, for head, layer, MLP, cross-attention and encoder specs in
both modes:
  - the reference (attn_ref.py with its EDIT hook, written here: a head's
    context set to 0 or to its mean over the input's positions before the o
    projection, an MLP's output likewise) gives the final hidden state and
    the maps of every layer; attn's --context agrees within 1e-4 * max(1, |x|)
    and its --maps within 2e-5;
  - each ablation changes the output (by more than 1e-3 somewhere), so that
    the comparison is not with the plain model by accident;
  - bad specs and modes exit 2 with one line naming the valid range.
Exit status 0 pass, 1 fail, 77 skip.
"""
import csv
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dump"))
import dumptest  # noqa: E402  (exits 77 without numpy or torch; adds tests/reference to the path)
from dumptest import attn_ref, fail, failures, make_models  # noqa: E402,F401

import numpy as np  # noqa: E402
import torch  # noqa: E402


def attn(exe, args):
    return subprocess.run([exe, "run"] + args, capture_output=True, text=True, timeout=300)


def spec_edit(specs, mode, knock_at=None):
    """The EDIT hook for specs [(source, mlp, kind, layer, head or None)].
    knock_at(name, t, head) (head None for an MLP), when given, is what an
    ablated value becomes instead of 0 or its mean over the positions."""
    def knock(t, name=None, head=None):
        if knock_at:
            return knock_at(name, t, head)
        return torch.zeros_like(t) if mode == "zero" else t.mean(dim=0, keepdim=True).expand_as(t).clone()

    def edit(name, value):
        parts = name.split(".")
        source = parts[0] == "encoder"
        if source:
            parts = parts[1:]
        layer = int(parts[1])
        for s_source, s_mlp, s_kind, s_layer, s_head in specs:
            if s_source != source or s_layer != layer:
                continue
            if name.endswith(".mlp.out"):
                if s_mlp:
                    value = knock(value, name)
            elif not s_mlp and parts[2] == ("cross" if s_kind == "cross" else "attn"):
                value = [knock(c, name, h) if s_head is None or h == s_head else c
                         for h, c in enumerate(value)]
        return value
    return edit


def parse_spec(text):
    out = []
    for s in text.split(","):
        source = s.startswith("encoder:")
        if source:
            s = s[len("encoder:"):]
        if s.startswith("mlp:"):
            out.append((source, True, "self", int(s[4:]), None))
            continue
        kind = "self"
        if s.startswith("cross:"):
            kind, s = "cross", s[len("cross:"):]
        layer, head = s.split(".")
        out.append((source, False, kind, int(layer), None if head == "*" else int(head)))
    return out


def read_context(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(x) for x in r[3:]] for r in rows])


def read_maps(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    out = {}
    for r in rows:
        out.setdefault((r[1], int(r[2]), r[3], int(r[4])), {})[(int(r[5]), int(r[7]))] = float(r[9])
    return out


def check(exe, spec, specs_text, mode, tmp, rng):
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    ids = rng.randint(0, cfg["vocab_size"], size=spec.seq_len).tolist()
    src = rng.randint(0, cfg["vocab_size"], size=spec.src_len).tolist() if spec.src_len else None
    plain = model.run(ids, src)
    attn_ref.EDIT = spec_edit(parse_spec(specs_text), mode)
    try:
        ref = model.run(ids, src)
    finally:
        attn_ref.EDIT = None
    label = "%s --ablate %s --ablate-mode %s" % (spec.name, specs_text, mode)
    change = float(np.max(np.abs(ref.hidden - plain.hidden)))
    if change <= 1e-3:
        fail("%s: the reference changes the output by only %.3g" % (label, change))
    ctx, maps = os.path.join(tmp, "ctx.csv"), os.path.join(tmp, "maps.csv")
    args = ["--config", spec.config, "--ids", ",".join(map(str, ids)), "--context", ctx,
            "--maps", maps, "--ablate", specs_text, "--ablate-mode", mode]
    if src:
        args += ["--source-ids", ",".join(map(str, src))]
    p = attn(exe, args)
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return
    got = read_context(ctx)
    d = float(np.max(np.abs(got - ref.hidden) / np.maximum(1.0, np.abs(ref.hidden))))
    if d > 1e-4:
        fail("%s: context differs by %.3g (the plain model's by %.3g)" % (label, d, change))
    gm = read_maps(maps)
    worst = 0.0
    for key, w in ref.maps.items():
        cells = gm.get(key, {})
        for (q, k), v in cells.items():
            worst = max(worst, abs(v - w[q, k]))
    if worst > 2e-5 or set(gm) != set(ref.maps):
        fail("%s: maps differ by %.3g (%d maps, expected %d)" % (label, worst, len(gm), len(ref.maps)))
    print("%-58s context within %.2g, maps within %.2g (ablation moved it by %.3g)"
          % (label, d, worst, change))


def check_errors(exe, specs, tmp):
    by = {s.name: s for s in specs}
    rows = [
        ("gpt2", ["--ablate", "2.0"], "layers 0-1"),
        ("gpt2", ["--ablate", "1.4"], "heads 0-3"),
        ("gpt2", ["--ablate", "mlp:5"], "layers 0-1"),
        ("gpt2", ["--ablate", "1"], "LAYER.HEAD"),
        ("gpt2", ["--ablate", "x.1"], "layer number"),
        ("gpt2", ["--ablate", "1.0,"], "--ablate"),
        ("gpt2", ["--ablate", "cross:1.0"], "encoder-decoder"),
        ("gpt2", ["--ablate", "encoder:0.0"], "encoder-decoder"),
        ("gpt2", ["--ablate", "1.1x"], "unexpected"),
        ("gpt2", ["--ablate-mode", "mean"], "--ablate"),
        ("gpt2", ["--ablate", "1.0", "--ablate-mode", "half"], "zero or mean"),
        ("transformer", ["--ablate", "encoder:9.0"], "encoder has layers"),
        ("transformer", ["--ablate", "encoder:cross:0.0"], "decoder"),
        ("attn-only-nopos", ["--ablate", "mlp:0"], "no MLP"),
    ]
    out = os.path.join(tmp, "bad.csv")

    def run_one(args):
        spec = by[args[0]]
        extra = ["--source-ids", "1,2"] if spec.src_len else []
        return attn(exe, ["--config", spec.config, "--ids", "1,2,3", "--maps", out] + args[1:] + extra)
    dumptest.check_usage_errors(run_one, [(n, [n] + f, w) for n, f, w in rows], out)
    print("%d bad specs exit 2 with one line, nothing left" % len(rows))


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"))
    by = {s.name: s for s in specs}
    rng = np.random.RandomState(5150)
    cases = [
        ("gpt2", "1.0"), ("gpt2", "0.*"), ("gpt2", "mlp:0,1.2"), ("gpt2", "0.1,0.3,mlp:1"),
        ("llama", "0.4"), ("llama", "1.*,mlp:0"), ("llama-theta500k", "2.5"),
        ("bert", "0.2"), ("bert", "mlp:1,1.0"),
        ("transformer", "cross:1.2"), ("transformer", "encoder:0.1,1.0"),
        ("transformer", "encoder:mlp:1,cross:0.*"),
        ("prenorm-encdec-rope", "encoder:0.3,cross:1.1"),
    ]
    for name, s in cases:
        for mode in ("zero", "mean"):
            check(exe, by[name], s, mode, tmp, rng)
    check_errors(exe, specs, tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
