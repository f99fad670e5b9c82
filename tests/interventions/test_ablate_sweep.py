"""attn ablate (the head sweep) against whole ablated runs and the float64 reference.

    /usr/bin/python3 test_ablate_sweep.py ATTN_EXE

On the random models of tests/reference/make_models.py that have an lm_head
(a decoder, a grouped-query decoder, an encoder, two encoder-decoders), with
random token ids and a random target, in both modes, with --mlp:
  - the rows are the clean run, then (encoder-decoders) by encoder layer every
    encoder head and the encoder's MLP, then by layer every self-attention
    head, every cross-attention head (encoder-decoders), the MLP;
  - each row's logit is bit for bit the one of a whole run `attn run --ablate
    SPEC --dump logits` (the sweep reruns only the layers from the ablated one
    on, from the clean residual stream: this shows it changes nothing);
  - each row's logit and probability agree with the reference (attn_ref.py
    with the EDIT hook of test_ablate.py) within 1e-4 * max(1, |logit|) and
    2e-5, and the diffs are the row minus the clean row;
  - some ablation moves the logit by more than 1e-3 (the test can fail);
  - --heatmap draws each head's cell in the colour its logit_diff has on the
    diverging scale (blue -vmax, grey 0, red +vmax, vmax the largest |diff|),
    one panel per kind, and the CSV is the same with it;
  - with --mean-over FILE every row is bit for bit the whole run with the
    same means, which differ from the input's own;
  - bad uses exit 2 with one line and leave no output file.
Exit status 0 pass, 1 fail, 77 skip.
"""
import csv
import io
import os
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "dump"))
sys.path.insert(0, os.path.join(_HERE, "..", "heatmap"))
import dumptest  # noqa: E402  (exits 77 without numpy or torch)
from dumptest import attn_ref, fail, make_models  # noqa: E402,F401
from test_ablate import parse_spec, spec_edit  # noqa: E402

import numpy as np  # noqa: E402
import png  # noqa: E402  (tests/heatmap/png.py)

NEG, MID, POS = (33, 102, 172), (247, 247, 247), (178, 24, 43)  # docs/heatmaps.md, "Sweeps"


def diverging(v, vmax):
    t = max(-1.0, min(1.0, v / vmax))
    end = NEG if t < 0 else POS
    return tuple(int(np.floor(m + abs(t) * (e - m) + 0.5)) for m, e in zip(MID, end))


def same_csv(p, out, rows, label):
    """Did the run p succeed and write the CSV rows to out? False when it failed."""
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return False
    with open(out, newline="") as f:
        if list(csv.DictReader(f)) != rows:
            fail("%s: the CSV differs from the one without it" % label)
    return True


def check_heatmap(exe, common, target, mode, rows, tmp, label):
    path, out = os.path.join(tmp, "sweep.png"), os.path.join(tmp, "sweep.csv")
    p = run(exe, "ablate", common + ["--target", str(target), "--mlp", "--ablate-mode", mode,
                                     "--heatmap", path, "--out", out])
    if not same_csv(p, out, rows, label + " --heatmap"):
        return
    img = png.read(path)
    heads = [r for r in rows if r["kind"] in ("self", "cross", "encoder")]
    vmax = max(abs(float(r["logit_diff"])) for r in heads) or 1.0
    counts = img.colour_counts()
    missing = [r for r in heads if counts.get(diverging(float(r["logit_diff"]), vmax), 0) < 16]
    if missing:
        fail("%s --heatmap: no cell in the colour of %s" % (label, [(r["layer"], r["kind"], r["head"]) for r in missing]))
    for end in (NEG, POS):
        if counts.get(end, 0) == 0:
            fail("%s --heatmap: the colour bar lacks %s" % (label, end))

MODELS = ["gpt2", "llama", "transformer", "prenorm-encdec-rope", "encoder-pre-nofinal"]


def run(exe, cmd, args):
    return subprocess.run([exe, cmd] + args, capture_output=True, text=True, timeout=300)


def spec_of(row):
    layer, kind, head = row["layer"], row["kind"], row["head"]
    if kind in ("mlp", "encoder-mlp"):
        return ("encoder:" if kind == "encoder-mlp" else "") + "mlp:%s" % layer
    return {"cross": "cross:", "encoder": "encoder:"}.get(kind, "") + "%s.%s" % (layer, head)


def same_as_whole(exe, args, dumps, target, logit, label):
    """Is the sweep's logit bit for bit the target's last logit of a whole
    `attn run ARGS --dump logits`? False (after a failure) when the run fails."""
    q = run(exe, "run", args + ["--dump", "logits", "--out", dumps])
    if q.returncode != 0:
        fail("%s: attn run exit %d: %s" % (label, q.returncode, q.stderr))
        return False
    whole = np.load(os.path.join(dumps, "logits.npy"))[-1, target]
    if np.float32(logit) != whole:
        fail("%s: the sweep's logit %r is not the whole run's %r" % (label, logit, whole))
    for name in os.listdir(dumps):
        os.unlink(os.path.join(dumps, name))
    os.rmdir(dumps)
    return True


def ref_score(model, ids, src, target, edit):
    attn_ref.EDIT = edit
    try:
        out = model.run(ids, src)
    finally:
        attn_ref.EDIT = None
    lg = out.logits[-1].astype(np.float64)
    p = np.exp(lg - lg.max())
    return lg[target], p[target] / p.sum()


def check_model(exe, spec, mode, tmp, rng):
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    ids = rng.randint(0, cfg["vocab_size"], size=spec.seq_len).tolist()
    src = rng.randint(0, cfg["vocab_size"], size=spec.src_len).tolist() if spec.src_len else None
    target = int(rng.randint(0, cfg["vocab_size"]))
    common = ["--config", spec.config, "--ids", ",".join(map(str, ids))]
    if src:
        common += ["--source-ids", ",".join(map(str, src))]
    label = "%s (%s)" % (spec.name, mode)
    p = run(exe, "ablate", common + ["--target", str(target), "--mlp", "--ablate-mode", mode])
    if p.returncode != 0:
        fail("%s: attn ablate exit %d: %s" % (label, p.returncode, p.stderr))
        return
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    L, H = cfg["n_layers"], cfg["n_heads"]
    cross = cfg["architecture"] == "encoder-decoder"
    order = [("", "clean", "")]
    for layer in range(cfg.get("n_encoder_layers", 0) if cross else 0):
        order += [(str(layer), "encoder", str(h)) for h in range(H)]
        order += [(str(layer), "encoder-mlp", "")]
    for layer in range(L):
        order += [(str(layer), "self", str(h)) for h in range(H)]
        order += [(str(layer), "cross", str(h)) for h in range(H)] if cross else []
        order += [(str(layer), "mlp", "")]
    got_order = [(r["layer"], r["kind"], r["head"]) for r in rows]
    if got_order != order:
        fail("%s: rows %s, expected %s" % (label, got_order, order))
        return
    clean = rows[0]
    worst_ref = worst_p = moved = 0.0
    dumps = os.path.join(tmp, "dumps")
    for r in rows:
        logit, prob = float(r["logit"]), float(r["prob"])
        if r["kind"] == "clean":
            want_l, want_p = ref_score(model, ids, src, target, None)
        else:
            s = spec_of(r)
            want_l, want_p = ref_score(model, ids, src, target, spec_edit(parse_spec(s), mode))
            # the whole ablated run, bit for bit
            if not same_as_whole(exe, common + ["--ablate", s, "--ablate-mode", mode], dumps,
                                 target, logit, "%s %s" % (label, s)):
                continue
            for col, base in (("logit", "logit_diff"), ("prob", "prob_diff")):
                d = float(r[col]) - float(clean[col])
                if abs(float(r[base]) - d) > 1e-6 * max(1.0, abs(d)):
                    fail("%s %s: %s %s is not %s minus the clean one (%r)" % (label, s, base, r[base], col, d))
            moved = max(moved, abs(logit - float(clean["logit"])))
        worst_ref = max(worst_ref, abs(logit - want_l) / max(1.0, abs(want_l)))
        worst_p = max(worst_p, abs(prob - want_p))
    if worst_ref > 1e-4 or worst_p > 2e-5:
        fail("%s: against the reference: logits within %.3g, probabilities within %.3g" % (label, worst_ref, worst_p))
    if moved <= 1e-3:
        fail("%s: no ablation moves the logit by more than %.3g" % (label, moved))
    check_heatmap(exe, common, target, mode, rows, tmp, label)
    print("%-32s %3d rows = whole ablated runs bit for bit; reference: logits within %.2g, "
          "probabilities within %.2g (largest move %.3g)" % (label, len(rows), worst_ref, worst_p, moved))


def check_mean_over(exe, spec, tmp, rng):
    """--mean-over FILE: every row bit for bit a whole `attn run --ablate SPEC
    --mean-over FILE` (whose means test_target.py checks against the
    reference), and some row differs from the sweep with the input's own means."""
    V = spec.cfg["vocab_size"]
    path = os.path.join(tmp, "batch.txt")
    with open(path, "w") as f:
        for n in (spec.seq_len - 1, spec.seq_len - 3):
            src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
            f.write((dumptest.ids_arg(src) + "\t" if src else "") +
                    dumptest.ids_arg(rng.randint(0, V, size=n).tolist()) + "\n")
    ids = rng.randint(0, V, size=spec.seq_len).tolist()
    common = ["--config", spec.config, "--ids", dumptest.ids_arg(ids)]
    if spec.src_len:
        common += ["--source-ids", dumptest.ids_arg(rng.randint(0, V, size=spec.src_len).tolist())]
    target = int(rng.randint(0, V))
    label = "%s --mean-over" % spec.name
    p = run(exe, "ablate", common + ["--target", str(target), "--mlp", "--mean-over", path])
    own = run(exe, "ablate", common + ["--target", str(target), "--mlp", "--ablate-mode", "mean"])
    if p.returncode != 0 or own.returncode != 0:
        fail("%s: exit %d / %d: %s %s" % (label, p.returncode, own.returncode, p.stderr, own.stderr))
        return
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    apart = max(abs(float(a["logit"]) - float(b["logit"]))
                for a, b in zip(rows, csv.DictReader(io.StringIO(own.stdout))))
    if apart <= 1e-3:
        fail("%s: the batch means change no logit by more than %.3g" % (label, apart))
    dumps = os.path.join(tmp, "dumps")
    for r in rows[1:]:
        s = spec_of(r)
        if not same_as_whole(exe, common + ["--ablate", s, "--mean-over", path], dumps, target,
                             float(r["logit"]), "%s %s" % (label, s)):
            return
    print("%-32s %3d rows = whole runs with the same means bit for bit (own means: %.3g away)"
          % (label, len(rows) - 1, apart))


def check_errors(exe, specs, tmp):
    by = {s.name: s for s in specs}
    out = os.path.join(tmp, "bad.csv")
    rows = [
        ("gpt2", ["--target", "nosuchword"], "--target"),
        ("gpt2", [], "--target"),
        ("gpt2", ["--target", "1", "--ablate-mode", "half"], "zero or mean"),
        ("encoder-attn-only", ["--target", "1", "--mlp"], "--mlp"),
        ("bert", ["--target", "1"], "lm_head"),
        ("transformer", ["--target", "1"], "--source"),
        ("gpt2", ["--target", "1", "--text", "a"], "exclude"),
        ("gpt2", ["--target", "1", "--heatmap", "-"], "--heatmap"),
        ("gpt2", ["--target", "1", "--mean-over", "x", "--ablate-mode", "zero"], "zero"),
        ("gpt2", ["--target", "1", "--mean-over", ""], "--mean-over"),
    ]
    dumptest.check_usage_errors(
        lambda args: run(exe, "ablate", ["--config", by[args[0]].config, "--ids", "1,2,3", "--out", out] + args[1:]),
        [(n, [n] + f, w) for n, f, w in rows], out)
    print("%d bad uses exit 2 with one line, nothing left" % len(rows))


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"))
    by = {s.name: s for s in specs}
    rng = np.random.RandomState(4242)
    for name in MODELS:
        for mode in ("zero", "mean"):
            check_model(exe, by[name], mode, tmp, rng)
    for name in ("gpt2", "transformer"):
        check_mean_over(exe, by[name], tmp, rng)
    check_errors(exe, specs, tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
