"""attn run --target, --top-k beside --ablate, and --mean-over, against the
float64 reference with the same hook.

    /usr/bin/python3 test_target.py ATTN_EXE

On the random models of tests/reference/make_models.py that have an lm_head
(a decoder, a grouped-query decoder, an encoder, two encoder-decoders), with
random token ids and a random target:
  - `--target T --predictions F`: one row per position with T's logit and
    probability (the reference's within 1e-4 * max(1, |logit|) and 2e-5) and
    its rank: the rank T's logit has in attn's own --dump logits under the
    documented order (larger first, equal logits by the lower id), and the
    reference's rank wherever no other logit is within 1e-4 of T's;
  - `--top-k 3 --target T --ablate SPEC --predictions F`: the columns gain
    clean_logit,clean_prob; each row's logit is bit for bit the one of a whole
    `attn run --ablate SPEC --dump logits`, its clean_logit the one of a plain
    `--dump logits`; both against the reference with and without the EDIT
    hook; the top 3 are the best three of the ablated logits, and T follows
    them only when it is not among them; some ablation moves a logit by more
    than 1e-3 (so that the clean and ablated columns are not the same by
    accident);
  - the readable listing (no --predictions) shows the same tokens, ranks and
    both probabilities;
  - `--ablate SPEC --mean-over FILE`: the means are of the model without
    ablation over every position of FILE's inputs (a reference hook records
    them); the context (--context) and the logits agree with the reference
    that puts those fixed means in, within 1e-4 * max(1, |x|), and differ
    from the per-input mean ablation by more than 1e-3;
  - bad uses exit 2 (a file that cannot be read: 1) with one line and leave
    no output file.
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
import dumptest  # noqa: E402  (exits 77 without numpy or torch)
from dumptest import attn_ref, fail, make_models  # noqa: E402,F401
from test_ablate import parse_spec, read_context, spec_edit  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

# model, spec for the ablation, spec for --mean-over
CASES = [
    ("gpt2", "1.0,mlp:0", "0.1,mlp:1"),
    ("llama", "0.*", "1.3"),
    ("encoder-pre-nofinal", "0.1", "mlp:0,1.*"),
    ("transformer", "cross:1.2,encoder:0.1", "encoder:1.0,cross:0.*"),
    ("prenorm-encdec-rope", "1.0", "encoder:mlp:0,1.1"),
]


def run(exe, args, stdin=None):
    return subprocess.run([exe, "run"] + args, input=stdin, capture_output=True, text=True,
                          timeout=300)


def ref_logits(model, ids, src, edit=None):
    attn_ref.EDIT = edit
    try:
        out = model.run(ids, src)
    finally:
        attn_ref.EDIT = None
    return out


def softmax(row):
    row = np.asarray(row, dtype=np.float64)
    p = np.exp(row - row.max())
    return p / p.sum()


def rank_of(row, t):
    """T's rank from 1: entries with a larger value, or an equal one and a lower id, before it."""
    v = row[t]
    return 1 + int(np.sum(row > v)) + int(np.sum(row[:t] == v))


def dump_logits(exe, common, extra, tmp, label):
    out = os.path.join(tmp, "logits-dump")
    p = run(exe, common + extra + ["--dump", "logits", "--out", out])
    if p.returncode != 0:
        fail("%s: --dump logits exit %d: %s" % (label, p.returncode, p.stderr))
        return None
    lg = np.load(os.path.join(out, "logits.npy"))
    for name in os.listdir(out):
        os.unlink(os.path.join(out, name))
    os.rmdir(out)
    return lg


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def within(a, b):
    return abs(a - b) <= 1e-4 * max(1.0, abs(b))


def check_target(exe, spec, model, ids, src, target, tmp):
    common = ["--config", spec.config, "--ids", dumptest.ids_arg(ids)]
    if src:
        common += ["--source-ids", dumptest.ids_arg(src)]
    label = "%s --target %d" % (spec.name, target)
    pred = os.path.join(tmp, "pred.csv")
    p = run(exe, common + ["--target", str(target), "--predictions", pred])
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return
    rows = read_rows(pred)
    lg = dump_logits(exe, common, [], tmp, label)
    ref = ref_logits(model, ids, src).logits
    if lg is None:
        return
    if [int(r["pos"]) for r in rows] != list(range(len(ids))) or \
            any(int(r["token_id"]) != target for r in rows):
        fail("%s: rows %s" % (label, [(r["pos"], r["token_id"]) for r in rows]))
        return
    ties = 0
    for r in rows:
        pos = int(r["pos"])
        if np.float32(r["logit"]) != lg[pos, target]:
            fail("%s pos %d: logit %s is not the dump's %r" % (label, pos, r["logit"], lg[pos, target]))
        if not within(float(r["logit"]), ref[pos, target]) or \
                abs(float(r["prob"]) - softmax(ref[pos])[target]) > 2e-5:
            fail("%s pos %d: logit %s prob %s, reference %r %r" % (label, pos, r["logit"], r["prob"],
                                                                  ref[pos, target], softmax(ref[pos])[target]))
        if int(r["rank"]) != rank_of(lg[pos], target):
            fail("%s pos %d: rank %s, the dump's logits give %d" % (label, pos, r["rank"], rank_of(lg[pos], target)))
        near = np.abs(ref[pos] - ref[pos, target]) < 1e-4
        if int(np.sum(near)) == 1:
            if int(r["rank"]) != rank_of(ref[pos], target):
                fail("%s pos %d: rank %s, the reference's %d" % (label, pos, r["rank"], rank_of(ref[pos], target)))
        else:
            ties += 1
    print("%-44s %d positions: logit, prob and rank as the reference (%d near ties)"
          % (label, len(rows), ties))


def check_ablated(exe, spec, model, ids, src, target, spec_text, tmp):
    common = ["--config", spec.config, "--ids", dumptest.ids_arg(ids)]
    if src:
        common += ["--source-ids", dumptest.ids_arg(src)]
    label = "%s --top-k 3 --target %d --ablate %s" % (spec.name, target, spec_text)
    pred = os.path.join(tmp, "pred.csv")
    flags = ["--top-k", "3", "--target", str(target), "--ablate", spec_text]
    p = run(exe, common + flags + ["--predictions", pred])
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return
    with open(pred, newline="", encoding="utf-8") as f:
        header = f.readline().strip()
    want_header = "input,pos,rank,token_id,token,logit,prob,clean_logit,clean_prob"
    if header != want_header:
        fail("%s: header %r" % (label, header))
        return
    rows = read_rows(pred)
    clean = dump_logits(exe, common, [], tmp, label)
    ablated = dump_logits(exe, common, ["--ablate", spec_text], tmp, label)
    ref_clean = ref_logits(model, ids, src).logits
    ref_abl = ref_logits(model, ids, src, spec_edit(parse_spec(spec_text), "zero")).logits
    if clean is None or ablated is None:
        return
    moved = float(np.max(np.abs(ref_abl - ref_clean)))
    if moved <= 1e-3:
        fail("%s: the ablation moves the reference's logits by only %.3g" % (label, moved))
    by_pos = {}
    for r in rows:
        by_pos.setdefault(int(r["pos"]), []).append(r)
    if sorted(by_pos) != list(range(len(ids))):
        fail("%s: positions %s" % (label, sorted(by_pos)))
        return
    worst = 0.0
    for pos, rs in by_pos.items():
        order = sorted(range(ablated.shape[1]), key=lambda i: (-ablated[pos, i], i))
        want = order[:3] + ([] if target in order[:3] else [target])
        if [int(r["token_id"]) for r in rs] != want:
            fail("%s pos %d: tokens %s, expected %s" % (label, pos, [r["token_id"] for r in rs], want))
            continue
        for r in rs:
            t = int(r["token_id"])
            if int(r["rank"]) != order.index(t) + 1:
                fail("%s pos %d token %d: rank %s, expected %d" % (label, pos, t, r["rank"], order.index(t) + 1))
            if np.float32(r["logit"]) != ablated[pos, t] or np.float32(r["clean_logit"]) != clean[pos, t]:
                fail("%s pos %d token %d: logit %s / clean %s, the dumps %r / %r"
                     % (label, pos, t, r["logit"], r["clean_logit"], ablated[pos, t], clean[pos, t]))
            for col, pcol, ref in (("logit", "prob", ref_abl), ("clean_logit", "clean_prob", ref_clean)):
                worst = max(worst, abs(float(r[col]) - ref[pos, t]) / max(1.0, abs(ref[pos, t])))
                if abs(float(r[pcol]) - softmax(ref[pos])[t]) > 2e-5:
                    fail("%s pos %d token %d: %s %s, reference %r" % (label, pos, t, pcol, r[pcol], softmax(ref[pos])[t]))
    if worst > 1e-4:
        fail("%s: logits against the reference within %.3g" % (label, worst))
    # the readable listing: the same tokens, ranks and both probabilities
    q = run(exe, common + flags + ["--context", os.path.join(tmp, "ctx.csv")])
    listed = [ln.split() for ln in q.stdout.splitlines() if "clean: prob" in ln]
    want = [(r["rank"], r["token_id"], "%.6f" % float(r["prob"]) if float(r["prob"]) >= 1e-3 else "%.2e" % float(r["prob"]))
            for pos in sorted(by_pos) for r in by_pos[pos]]
    got = [(w[0], w[w.index("id") + 1], w[w.index("prob") + 1]) for w in listed]
    if q.returncode != 0 or got != want:
        fail("%s: the listing gives %s, expected %s (exit %d %s)" % (label, got[:4], want[:4], q.returncode, q.stderr))
    print("%-44s %d rows: ablated and clean logits = the dumps bit for bit, reference within %.2g "
          "(the ablation moves them by %.3g); the listing agrees" % (label, len(rows), worst, moved))


def mean_hooks(spec_text):
    """A recording hook (sums of every context head and MLP output over the
    positions) and a factory of the hook that puts the means in."""
    sums = {}

    def record(name, value):
        if name.endswith(".context"):
            t = torch.stack([c.sum(dim=0) for c in value])  # [H, head_dim]
            n = value[0].shape[0]
        elif name.endswith(".mlp.out"):
            t, n = value.sum(dim=0), value.shape[0]
        else:
            return value
        s, m = sums.get(name, (0, 0))
        sums[name] = (s + t, m + n)
        return value

    def fixed():
        def knock(name, t, head):
            s, n = sums[name]
            mean = s / n
            row = mean if head is None else mean[head]
            return row.unsqueeze(0).expand_as(t).clone()
        return spec_edit(parse_spec(spec_text), "mean", knock)
    return record, fixed


def check_mean_over(exe, spec, model, rng, spec_text, tmp):
    cfg = model.cfg
    V = cfg["vocab_size"]
    batch = [(rng.randint(0, V, size=n).tolist(),
              rng.randint(0, V, size=spec.src_len + 1).tolist() if spec.src_len else None)
             for n in (spec.seq_len, spec.seq_len - 2, spec.seq_len - 1)]
    path = os.path.join(tmp, "batch.txt")
    with open(path, "w") as f:
        for ids, src in batch:
            f.write((dumptest.ids_arg(src) + "\t" if src else "") + dumptest.ids_arg(ids) + "\n")
    record, fixed = mean_hooks(spec_text)
    for ids, src in batch:
        ref_logits(model, ids, src, record)
    ids = rng.randint(0, V, size=spec.seq_len).tolist()
    src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
    ref = ref_logits(model, ids, src, fixed())
    own = ref_logits(model, ids, src, spec_edit(parse_spec(spec_text), "mean"))
    label = "%s --ablate %s --mean-over (3 inputs)" % (spec.name, spec_text)
    # the input is --ids, so FILE's lines are ids too
    common = ["--config", spec.config, "--ids", dumptest.ids_arg(ids),
              "--ablate", spec_text, "--mean-over", path]
    if src:
        common += ["--source-ids", dumptest.ids_arg(src)]
    ctx = os.path.join(tmp, "ctx.csv")
    p = run(exe, common + ["--context", ctx])
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (label, p.returncode, p.stderr))
        return
    got = read_context(ctx)
    d = float(np.max(np.abs(got - ref.hidden) / np.maximum(1.0, np.abs(ref.hidden))))
    lg = dump_logits(exe, common, [], tmp, label)
    dl = float(np.max(np.abs(lg - ref.logits) / np.maximum(1.0, np.abs(ref.logits)))) if lg is not None else 1
    apart = float(np.max(np.abs(ref.hidden - own.hidden)))
    if d > 1e-4 or dl > 1e-4:
        fail("%s: context within %.3g, logits within %.3g of the reference" % (label, d, dl))
    if apart <= 1e-3:
        fail("%s: the batch means change the output by only %.3g from the input's own" % (label, apart))
    print("%-44s context within %.2g, logits within %.2g (own-input means: %.3g away)"
          % (label, d, dl, apart))


def check_errors(exe, specs, tmp):
    by = {s.name: s for s in specs}
    out = os.path.join(tmp, "bad.csv")
    empty, bad = os.path.join(tmp, "empty.txt"), os.path.join(tmp, "bad.txt")
    open(empty, "w").close()
    with open(bad, "w") as f:
        f.write("1,2\n1,999\n")
    rows = [
        ("gpt2", ["--target", "nosuchword"], "--target"),
        ("gpt2", ["--target", "50"], "--target"),
        ("gpt2", ["--last"], "--top-k K or --target"),
        ("attn-only-nopos", ["--target", "1"], "lm_head"),
        ("gpt2", ["--target", "1"] + ["--mean-over", empty], "--ablate"),
        ("gpt2", ["--target", "1"] + ["--ablate", "1.0", "--ablate-mode", "zero", "--mean-over", empty], "zero"),
        ("gpt2", ["--target", "1"] + ["--ablate", "1.0", "--mean-over", empty], "no inputs"),
        ("gpt2", ["--target", "1"] + ["--ablate", "1.0", "--mean-over", bad], "line 2"),
        ("gpt2", ["--target", "1"] + ["--ablate", "1.0", "--mean-over", ""], "--mean-over"),
    ]
    dumptest.check_usage_errors(
        lambda args: run(exe, ["--config", by[args[0]].config, "--ids", "1,2,3", "--predictions", out]
                         + args[1:]),
        [(n, [n] + f, w) for n, f, w in rows], out)
    for cmd, word in (("stats", "attn run"), ("lens", "--attribute")):
        p = subprocess.run([exe, cmd, "--config", by["gpt2"].config, "--ids", "1,2", "--target", "1"],
                           capture_output=True, text=True)
        if p.returncode != 2 or len(p.stderr.strip().splitlines()) != 1 or word not in p.stderr:
            fail("attn %s --target: exit %d, %r" % (cmd, p.returncode, p.stderr))
    p = run(exe, ["--config", by["gpt2"].config, "--ids", "1,2", "--ablate", "1.0",
                  "--mean-over", os.path.join(tmp, "missing.txt"), "--predictions", out, "--target", "1"])
    if p.returncode != 1 or len(p.stderr.strip().splitlines()) != 1 or "missing.txt" not in p.stderr \
            or os.path.exists(out):
        fail("--mean-over of a missing file: exit %d, %r" % (p.returncode, p.stderr))
    print("%d bad uses exit 2 with one line, nothing left; a missing --mean-over file exits 1"
          % (len(rows) + 2))


def body(exe, tmp):
    specs = make_models.build_all(os.path.join(tmp, "models"))
    by = {s.name: s for s in specs}
    rng = np.random.RandomState(8080)
    for name, spec_text, mean_spec in CASES:
        spec = by[name]
        model = attn_ref.Model.load(spec.config)
        V = model.cfg["vocab_size"]
        ids = rng.randint(0, V, size=spec.seq_len).tolist()
        src = rng.randint(0, V, size=spec.src_len).tolist() if spec.src_len else None
        target = int(rng.randint(0, V))
        check_target(exe, spec, model, ids, src, target, tmp)
        check_ablated(exe, spec, model, ids, src, target, spec_text, tmp)
        check_mean_over(exe, spec, model, rng, mean_spec, tmp)
    check_errors(exe, specs, tmp)


if __name__ == "__main__":
    sys.exit(dumptest.main(sys.argv, __doc__, body))
