"""attn patch against the float64 reference with the same intervention.

    /usr/bin/python3 test_patch.py ATTN_EXE

On random models of tests/reference/make_models.py with an lm_head (decoders,
a grouped-query decoder, encoders, encoder-decoders with their encoder sites)
and random token ids, with the pattern '*' (every head's context, every
position of every mlp.out and resid):
  - the reference (attn_ref.py with its EDIT hook, written here: the clean
    run's values recorded, then one head's context or one row of mlp.out or
    resid of the corrupted run replaced by the clean one) gives each unit's
    logit difference target - foil at the last position; attn's agrees
    within 1e-4 * max(1, |x|), and so do the clean and corrupt baselines;
  - some unit moves the score (so the patch is not a no-op by accident);
  - --patch-from clean --patch-into clean gives recovered 1 for every unit,
    --patch-from corrupt --patch-into corrupt gives 0 (within 1e-6);
  - --align left and right with inputs of different lengths, against the
    reference with the same pairing of positions;
  - on models/tiny-induction (trained to copy "k f q a k f q a"): patching
    the clean "k f q a k f q" into the corrupted "k f q b k f q" (target a,
    foil b), the best head's context (a layer 1 head: measured 0.56) recovers
    more than 0.5 of the logit difference, the two heads of layer 1 (two
    induction heads share the work: 0.56 + 0.31) more than 0.8 together, and
    each head of layer 0 less than 0.1 (measured 0.055 at most); the resid at
    the changed position (layer 0, pos 3) and at the last position (layer 1,
    pos 6) recover more than 0.95 (measured 1.001 and 1), each of the 12
    other positions less than 0.05 in absolute value (measured 4e-4 at most);
  - bad inputs (lengths, pattern, tokens, degenerate runs, flags) exit 2
    with one line and leave no output file.
Exit status 0 pass, 1 fail, 77 skip.
"""
import csv
import io
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dump"))
import dumptest  # noqa: E402  (exits 77 without numpy or torch; adds tests/reference to the path)
from dumptest import attn_ref, fail, make_models  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "heatmap"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import png  # noqa: E402  (tests/heatmap/png.py)
from test_ablate_sweep import diverging, same_csv  # noqa: E402  (docs/heatmaps.md, "Sweeps")

MASK_GROUND, MASK_LINE = (0x90,) * 3, (0xC8,) * 3  # docs/heatmaps.md: masked cells

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def attn(exe, args):
    return subprocess.run([exe, "patch"] + args, capture_output=True, text=True, timeout=300)


def parse_csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    return rows


def site_of(name):
    """'blocks.1.attn.context.h2' -> ('blocks.1.attn.context', 2); 'blocks.0.resid' -> (.., None)."""
    parts = name.split(".")
    if parts[-1].startswith("h") and parts[-2] == "context":
        return ".".join(parts[:-1]), int(parts[-1][1:])
    return name, None


def ref_scores(model, clean, corrupt, src, target, foil, rows, shift, from_run, into_run):
    """The reference's score of the clean and corrupt runs and of each unit row."""
    runs = {"clean": clean, "corrupt": corrupt}

    def score(out):
        lg = out.logits[-1]
        return lg[target] - (lg[foil] if foil is not None else 0.0)

    attn_ref.EDIT = None
    base = {k: score(model.run(v, src)) for k, v in runs.items()}
    rec = {}

    def record(name, value):
        rec[name] = [c.clone() for c in value] if isinstance(value, list) else value.clone()
        return value

    attn_ref.EDIT = record
    try:
        model.run(runs[from_run], src)
        out = []
        for r in rows:
            site, head = site_of(r["name"])
            pos = int(r["pos"]) if r["pos"] else None
            enc = site.startswith("encoder.")
            sh = 0 if enc else shift

            def edit(name, value, site=site, head=head, pos=pos, sh=sh):
                if name != site:
                    return value
                src_v = rec[name]
                if head is not None:
                    value = [c.clone() for c in value]
                    T, Tf = value[head].shape[0], src_v[head].shape[0]
                    for t in range(T):
                        if 0 <= t + sh < Tf:
                            value[head][t] = src_v[head][t + sh]
                    return value
                value = value.clone()
                value[pos] = src_v[pos + sh]
                return value

            attn_ref.EDIT = edit
            out.append(score(model.run(runs[into_run], src)))
    finally:
        attn_ref.EDIT = None
    return base, out


def close(a, b, tol=1e-4):
    return abs(a - b) <= tol * max(1.0, abs(b))


def check(exe, spec, rng, tmp, clean_len=None, align=None, from_run="clean", into_run="corrupt",
          heatmap=False):
    model = attn_ref.Model.load(spec.config)
    cfg = model.cfg
    V = cfg["vocab_size"]
    T = spec.seq_len
    clean = rng.randint(0, V, size=clean_len or T).tolist()
    corrupt = rng.randint(0, V, size=T).tolist()
    src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
    target, foil = rng.choice(V, size=2, replace=False).tolist()
    args = ["--config", spec.config, "--clean-ids", ",".join(map(str, clean)),
            "--corrupt-ids", ",".join(map(str, corrupt)), "--target", str(target),
            "--foil", str(foil), "--names", "*", "--patch-from", from_run,
            "--patch-into", into_run]
    if src:
        args += ["--source-ids", ",".join(map(str, src))]
    if align:
        args += ["--align", align]
    label = "%s %s->%s%s" % (spec.name, from_run, into_run, " --align " + align if align else "")
    p = attn(exe, args)
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return
    rows = parse_csv(p.stdout)
    if [r["name"] for r in rows[:2]] != ["clean", "corrupt"]:
        fail("%s: the first rows are not clean and corrupt" % label)
        return
    units = rows[2:]
    Tf = len(clean) if from_run == "clean" else len(corrupt)
    Ti = len(clean) if into_run == "clean" else len(corrupt)
    shift = Tf - Ti if align == "right" else 0
    base, ref = ref_scores(model, clean, corrupt, src, target, foil, units, shift, from_run, into_run)
    worst = 0.0
    for name, r in zip(("clean", "corrupt"), rows[:2]):
        if not close(float(r["logit_diff"]), base[name]):
            fail("%s: %s score %s, reference %.9g" % (label, name, r["logit_diff"], base[name]))
    for r, want in zip(units, ref):
        got = float(r["logit_diff"])
        worst = max(worst, abs(got - want) / max(1.0, abs(want)))
        if not close(got, want):
            fail("%s: %s pos %s: %.9g, reference %.9g" % (label, r["name"], r["pos"], got, want))
        rc = (want - base["corrupt"]) / (base["clean"] - base["corrupt"])
        if abs(float(r["recovered"]) - rc) > 1e-3 * max(1.0, abs(rc)):
            fail("%s: %s recovered %s, reference %.6g" % (label, r["name"], r["recovered"], rc))
    if from_run == into_run:
        want = 1.0 if from_run == "clean" else 0.0
        bad = [r for r in units if abs(float(r["recovered"]) - want) > 1e-6]
        if bad:
            fail("%s: %d units recover %s, not %g" % (label, len(bad), bad[0]["recovered"], want))
    else:
        moved = max(abs(float(r["recovered"])) for r in units)
        if moved < 1e-3:
            fail("%s: no unit moves the score (%.3g)" % (label, moved))
    if heatmap:
        check_heatmap(exe, args, rows, tmp, label)
    kinds = sorted(set(re.sub(r"^(encoder\.)?blocks\.\d+\.", "", site_of(r["name"])[0])
                       for r in units))
    print("%-50s %3d units (%s) within %.2g of the reference" % (label, len(units), ",".join(kinds), worst))


def family_of(name):
    """'encoder.blocks.1.attn.context.h2' -> 'encoder.blocks.attn.context' (its PNG's name)."""
    site = site_of(name)[0]
    return re.sub(r"blocks\.\d+\.", "blocks.", site)


def check_heatmap(exe, args, rows, tmp, label, masked=False):
    """--heatmap DIR: the CSV unchanged, one PNG per family of sites, each
    unit's cell in the colour of its recovered on the diverging scale of its
    family (vmax its largest |recovered|); masked: unpatched cells hatched."""
    d, out = os.path.join(tmp, "patch-heatmaps"), os.path.join(tmp, "patch.csv")
    p = attn(exe, args + ["--heatmap", d, "--out", out])
    if not same_csv(p, out, rows, label + " --heatmap"):
        return
    families = {}
    for r in rows[2:]:
        families.setdefault(family_of(r["name"]), []).append(float(r["recovered"]))
    files = sorted(os.listdir(d))
    if files != sorted(f + ".png" for f in families):
        fail("%s --heatmap: files %s, expected %s" % (label, files, sorted(families)))
        return
    for fam, values in families.items():
        img = png.read(os.path.join(d, fam + ".png"))
        counts = img.colour_counts()
        vmax = max(abs(v) for v in values) or 1.0
        missing = [v for v in values if counts.get(diverging(v, vmax), 0) < 16]
        if missing:
            fail("%s --heatmap %s: no cell in the colour of recovered %s" % (label, fam, missing[:3]))
        if masked and (counts.get(MASK_GROUND, 0) < 16 or counts.get(MASK_LINE, 0) < 4):
            fail("%s --heatmap %s: the cells not patched are not hatched" % (label, fam))
    for f in files:
        os.unlink(os.path.join(d, f))
    os.rmdir(d)
    os.unlink(out)
    print("%-50s --heatmap: %d PNGs (%s), every unit's colour" % (label, len(files), ", ".join(sorted(families))))


def check_induction(exe):
    cfg = os.path.join(ROOT, "models", "tiny-induction")
    base = ["--config", cfg, "--clean", "k f q a k f q", "--corrupt", "k f q b k f q",
            "--target", "a", "--foil", "b"]
    p = attn(exe, base + ["--names", "blocks.*.attn.context"])
    if p.returncode != 0:
        fail("tiny-induction heads: exit %d: %s" % (p.returncode, p.stderr))
        return
    heads = [(float(r["recovered"]), r["name"]) for r in parse_csv(p.stdout)[2:]]
    heads.sort(reverse=True)
    best = heads[0]
    layer0 = [r for r, n in heads if n.startswith("blocks.0.")]
    layer1 = [r for r, n in heads if n.startswith("blocks.1.")]
    if best[0] <= 0.5 or not best[1].startswith("blocks.1.") or max(abs(r) for r in layer0) >= 0.1 \
            or sum(layer1) <= 0.8:
        fail("tiny-induction heads: %s" % heads)
    print("tiny-induction: %s recovers %.3f, layer 1's heads %.3f together, layer 0's at most %.3f"
          % (best[1], best[0], sum(layer1), max(abs(r) for r in layer0)))
    p = attn(exe, base + ["--names", "blocks.*.resid"])
    rows = parse_csv(p.stdout)[2:]
    hits = {(r["name"], int(r["pos"])): float(r["recovered"]) for r in rows}
    strong = {("blocks.0.resid", 3), ("blocks.1.resid", 6)}
    for k, v in hits.items():
        if (k in strong and v <= 0.95) or (k not in strong and abs(v) >= 0.05):
            fail("tiny-induction resid %s: recovered %.4g" % (k, v))
    print("tiny-induction: resid at 0/pos 3 recovers %.4f, at 1/pos 6 %.4f, the others at most %.2g"
          % (hits[("blocks.0.resid", 3)], hits[("blocks.1.resid", 6)],
             max(abs(v) for k, v in hits.items() if k not in strong)))


def check_errors(exe, specs, tmp):
    by = {s.name: s for s in specs}
    ind = os.path.join(ROOT, "models", "tiny-induction")
    ok = ["--clean", "k f q a k f q", "--corrupt", "k f q b k f q", "--target", "a", "--foil", "b"]
    rows = [
        (ind, ["--clean", "k f q a k", "--corrupt", "k f q b k f q", "--target", "a",
               "--names", "*"], "5 tokens"),
        (ind, ok + ["--names", "blocks.9.*"], "matches nothing"),
        (ind, ok + ["--names", "blocks.0.attn.context,"], "empty name"),
        (ind, ok + ["--names", "blocks/0"], "letters"),
        (ind, ["--clean", "k f q a", "--corrupt", "k f q b", "--target", "zz", "--names", "*"],
         "--target 'zz'"),
        (ind, ["--clean", "k f q a", "--corrupt", "k f q b", "--target", "a", "--foil", "99",
               "--names", "*"], "--foil '99'"),
        (ind, ["--clean", "k f q a", "--corrupt", "k f q a", "--target", "a", "--names", "*"],
         "same logit difference"),
        (ind, ok + ["--names", "*", "--align", "middle"], "left or right"),
        (ind, ok + ["--names", "*", "--patch-into", "dirty"], "clean or corrupt"),
        (ind, ok[:-2] + ["--foil", "a", "--names", "*"], "target itself"),
        (ind, ok, "--names"),
        (ind, ok[2:] + ["--names", "*"], "--clean"),
        (ind, ok + ["--names", "*", "--heatmap", "-"], "--heatmap"),
        (ind, ok + ["--names", "*", "--heatmap", ind], "--heatmap"),
        (by["mqa-gelu-tanh"].config, ["--clean-ids", "1,2", "--corrupt-ids", "2,1", "--target", "1",
                                      "--names", "*"], "lm_head"),
        (by["transformer"].config, ["--clean-ids", "1,2", "--corrupt-ids", "2,1", "--target", "1",
                                    "--names", "*"], "--source"),
    ]
    out = os.path.join(tmp, "bad.csv")
    for config, flags, word in rows:
        p = attn(exe, ["--config", config, "--out", out] + flags)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or word not in lines[0]:
            fail("%s: exit %d, stderr %r (expected 2 and one line with %r)"
                 % (flags, p.returncode, p.stderr, word))
        if os.path.exists(out):
            fail("%s left %s" % (flags, out))
            os.unlink(out)
    print("%d bad inputs exit 2 with one line, nothing left" % len(rows))


def body(exe, tmp):
    names = ["gpt2", "llama", "transformer", "prenorm-encdec-rope", "encoder-pre-nofinal",
             "encoder-attn-only", "mqa-gelu-tanh"]
    specs = make_models.build_all(os.path.join(tmp, "models"), names)
    by = {s.name: s for s in specs}
    rng = np.random.RandomState(2022)
    for name in names[:-1]:
        check(exe, by[name], rng, tmp, heatmap=True)
        check(exe, by[name], rng, tmp, from_run="clean", into_run="clean")
        check(exe, by[name], rng, tmp, from_run="corrupt", into_run="corrupt")
    check(exe, by["gpt2"], rng, tmp, from_run="corrupt", into_run="clean")
    check(exe, by["gpt2"], rng, tmp, clean_len=by["gpt2"].seq_len + 2, align="right")
    check(exe, by["llama"], rng, tmp, clean_len=by["llama"].seq_len - 2, align="left")
    check(exe, by["transformer"], rng, tmp, clean_len=by["transformer"].seq_len + 1, align="right")
    check_induction(exe)
    ind = ["--config", os.path.join(ROOT, "models", "tiny-induction"), "--clean", "k f q a k f q",
           "--corrupt", "k f q b k f q", "--target", "a", "--foil", "b"]
    for names in ("blocks.1.attn.context.h1", "blocks.1.resid,blocks.0.mlp.out"):
        p = attn(exe, ind + ["--names", names])
        if p.returncode != 0:
            fail("tiny-induction --names %s: exit %d: %s" % (names, p.returncode, p.stderr))
            continue
        check_heatmap(exe, ind + ["--names", names], parse_csv(p.stdout), tmp,
                      "tiny-induction --names " + names, masked=True)
    check_errors(exe, specs, tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
