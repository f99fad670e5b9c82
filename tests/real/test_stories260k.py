#!/usr/bin/python3
"""attn on the real trained stories260K model (llama2.c) against a float64 reference.

Usage: test_stories260k.py ATTN_EXE

Needs <repo>/../shared/models/stories260K/{stories260K.bin,tok512.bin}; exits
77 (skip) when they are absent.

1. `attn import llama2c` converts the checkpoint and tokenizer into a temp dir.
2. "Once upon a time" is tokenized by the independent Python encoder
   (tests/reference/llama2c_encode.py); attn's ids (generate --tokens) and
   pieces (context CSV token column) must match.
3. attn's attention maps (5 layers x 8 heads, abs 1e-5), final hidden states
   (abs 5e-5) and last-position logits (--top-k 512 --last --predictions,
   abs 1e-4) are compared with tests/real/stories260k_ref.py, which reads
   stories260K.bin directly in float64.
4. `attn generate --steps 64` from the prompt must equal the reference's
   greedy continuation token for token; its maps must match the reference.
5. Broken files: a checkpoint cut to 1000 bytes, cut inside the weights, a
   header claiming more layers / a wider model than the file holds, a
   tokenizer cut short: `attn import llama2c` exits 1 with one stderr line
   naming the file and leaves no DIR/config.json.
6. A non-ASCII prompt ("héllo 🙂", and raw invalid UTF-8) runs, its ids equal
   the Python encoder's and use byte-fallback ids 3..258, and the run matches
   the reference; generate from it runs too.
"""
import os
import shutil
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import realtest as rt  # noqa: E402

MODEL_DIR = os.path.join(rt.SHARED_MODELS, "stories260K")
CKPT = os.path.join(MODEL_DIR, "stories260K.bin")
TOKF = os.path.join(MODEL_DIR, "tok512.bin")
ENCODER = os.path.join(rt.REPO_ROOT, "tests", "reference", "llama2c_encode.py")

MAP_TOL = 1e-5
HIDDEN_TOL = 5e-5
LOGIT_TOL = 1e-4
PROMPT = "Once upon a time"
STEPS = 64


def attn_ids(f, attn, cfg, text, tmp, name):
    """The prompt's ids as attn tokenizes them: generate --steps 0 (or 1) --tokens."""
    tf = os.path.join(tmp, "prompt-tokens.csv")
    for steps in ("0", "1"):
        p = rt.run([attn, "generate", "--config", cfg, "--text", text, "--steps", steps,
                    "--tokens", tf])
        if p.returncode == 0:
            header, rows = rt.read_csv(tf)
            col = {c: i for i, c in enumerate(header)}
            ids = [int(r[col["token_id"]]) for r in rows if r]
            return ids if steps == "0" else ids[:-1]
    f.check(False, "%s: attn generate --tokens reports the prompt ids (%s)"
            % (name, rt.describe(p)))
    return None


def compare_run(f, attn, cfg, text, ref, model, pieces, ids, tmp, name, logits=True):
    """attn run --maps --context (+ --predictions) on text vs the reference on ids."""
    maps_f, ctx_f = os.path.join(tmp, "maps.csv"), os.path.join(tmp, "ctx.csv")
    p = rt.run([attn, "run", "--config", cfg, "--text", text, "--maps", maps_f,
                "--context", ctx_f])
    if not f.check(p.returncode == 0, "%s: attn run --maps --context (%s)"
                   % (name, rt.describe(p))):
        return
    out = ref.forward(model, ids)
    T = len(ids)
    toks, hid = rt.read_context(ctx_f)
    want = [pieces[i].decode("utf-8", "surrogateescape") for i in ids]
    f.check(toks == want, "%s: context token column = the reference ids' pieces %s (attn: %s)"
            % (name, [w for w in want], toks))
    maps, _ = rt.read_maps(maps_f)
    worst, where, missing = 0.0, None, 0
    L, H = out["maps"].shape[:2]
    for l in range(L):
        for h in range(H):
            got = maps.get(("decoder", l, "self", h))
            if got is None:
                missing += 1
                continue
            full = np.zeros((T, T))
            full[:min(T, got.shape[0]), :min(T, got.shape[1])] = got[:T, :T]
            if got.shape[0] != T:
                worst, where = float("inf"), (l, h, "rows %d != %d" % (got.shape[0], T))
                continue
            d = rt.max_abs(full, out["maps"][l, h].numpy())
            if d > worst:
                worst, where = d, (l, h)
    f.check(missing == 0 and len(maps) == L * H,
            "%s: %d maps in the CSV, %d expected (%d missing)" % (name, len(maps), L * H, missing))
    f.check(worst <= MAP_TOL, "%s: attention weights %d layers x %d heads x %dx%d, max |diff| = "
            "%.3g at (layer, head) %s (tol %g)" % (name, L, H, T, T, worst, where, MAP_TOL))
    d = rt.max_abs(hid, out["hidden"].numpy())
    f.check(d <= HIDDEN_TOL, "%s: final hidden states %s, max |diff| = %.3g (tol %g; max |ref| "
            "%.3g)" % (name, list(hid.shape), d, HIDDEN_TOL, float(out["hidden"].abs().max())))
    if not logits:
        return
    V = model.vocab
    pred_f = os.path.join(tmp, "pred.csv")
    p = rt.run([attn, "run", "--config", cfg, "--text", text, "--top-k", str(V), "--last",
                "--predictions", pred_f])
    if not f.check(p.returncode == 0, "%s: attn run --top-k %d --last --predictions (%s)"
                   % (name, V, rt.describe(p))):
        return
    header, rows = rt.read_csv(pred_f)
    col = {c: i for i, c in enumerate(header)}
    got = np.full(V, np.nan)
    positions = set()
    try:
        for r in rows:
            if r:
                positions.add(int(r[col["pos"]]))
                got[int(r[col["token_id"]])] = float(r[col["logit"]])
    except (KeyError, ValueError) as e:
        f.check(False, "%s: predictions CSV readable (header %s: %s)" % (name, header, e))
        return
    f.check(positions == {T - 1}, "%s: --last gives position %d only (got %s)"
            % (name, T - 1, sorted(positions)))
    ref_l = out["logits"][-1].numpy()
    n = int((~np.isnan(got)).sum())
    d = rt.max_abs(np.nan_to_num(got, nan=np.inf), ref_l)
    f.check(n == V and d <= LOGIT_TOL, "%s: last-position logits (%d of %d), max |diff| = %.3g "
            "(tol %g)" % (name, n, V, d, LOGIT_TOL))
    # rank 1 is the reference's argmax
    r1 = [r for r in rows if r and r[col["rank"]] in ("1", "0")]
    best = ref.argmax_lowest(out["logits"][-1])
    first = min(r1, key=lambda r: int(r[col["rank"]])) if r1 else None
    f.check(first is not None and int(first[col["token_id"]]) == best,
            "%s: top-ranked prediction %s == reference argmax %d"
            % (name, first[col["token_id"]] if first else None, best))


def compare_generate(f, attn, cfg, text, ref, model, pieces, prompt_ids, steps, tmp, name):
    tf, mf = os.path.join(tmp, "gen-tokens.csv"), os.path.join(tmp, "gen-maps.csv")
    p = rt.run([attn, "generate", "--config", cfg, "--text", text, "--steps", str(steps),
                "--tokens", tf, "--maps", mf])
    if not f.check(p.returncode == 0, "%s: attn generate --steps %d --tokens --maps (%s)"
                   % (name, steps, rt.describe(p))):
        return
    want = ref.greedy(model, prompt_ids, steps)
    header, rows = rt.read_csv(tf)
    col = {c: i for i, c in enumerate(header)}
    rows = [r for r in rows if r]
    got = [int(r[col["token_id"]]) for r in rows]
    pos = [int(r[col["pos"]]) for r in rows]
    f.check(pos == list(range(len(got))), "%s: --tokens has positions 0..%d in order"
            % (name, len(got) - 1))
    f.check(got[:len(prompt_ids)] == prompt_ids, "%s: --tokens starts with the prompt ids %s"
            % (name, prompt_ids))
    cont = got[len(prompt_ids):]
    first_bad = next((i for i in range(max(len(cont), len(want)))
                      if i >= len(cont) or i >= len(want) or cont[i] != want[i]), None)
    f.check(cont == want, "%s: %d generated ids == reference greedy continuation (first "
            "difference at step %s)" % (name, len(cont), first_bad))
    text_want = ref.decode(pieces, want, prev=prompt_ids[-1])
    stdout = p.stdout.decode("utf-8", "replace")
    f.check(text_want in stdout, "%s: stdout contains the reference continuation %r"
            % (name, text_want[:80] + "..."))
    print("   reference: %r" % ref.decode(pieces, prompt_ids[1:] + want, prev=prompt_ids[0]))
    # maps written while generating (with the cache) == reference maps of the sequence
    maps, _ = rt.read_maps(mf)
    seq = prompt_ids + want
    if not maps:
        f.check(False, "%s: generate --maps wrote maps" % name)
        return
    T = max(m.shape[0] for m in maps.values())
    out = ref.forward(model, seq[:T])
    L, H = out["maps"].shape[:2]
    worst, where = 0.0, None
    for l in range(L):
        for h in range(H):
            got_m = maps.get(("decoder", l, "self", h))
            if got_m is None or got_m.shape[0] != T:
                worst, where = float("inf"), (l, h, "missing or short")
                continue
            full = np.zeros((T, T))
            full[:, :min(T, got_m.shape[1])] = got_m[:, :T]
            d = rt.max_abs(full, out["maps"][l, h].numpy())
            if d > worst:
                worst, where = d, (l, h)
    f.check(T >= len(seq) - 1 and worst <= MAP_TOL,
            "%s: generate --maps covers %d of %d positions, max |diff| = %.3g at %s (tol %g)"
            % (name, T, len(seq), worst, where, MAP_TOL))


def check_import_refused(f, attn, name, ckpt, tok, tmp):
    out = os.path.join(tmp, "bad-" + name.replace(" ", "-"))
    p = rt.run([attn, "import", "llama2c", "--checkpoint", ckpt, "--tokenizer", tok, "--out", out])
    err = p.stderr.decode("utf-8", "replace").rstrip("\n").split("\n")
    named = ckpt if "tokenizer" not in name else tok
    left = sorted(os.listdir(out)) if os.path.isdir(out) else []
    f.check(p.returncode == 1 and len(err) == 1 and named in err[0] and not left,
            "import refuses %s: exit 1, one stderr line naming %s, no file left in DIR "
            "(left: %s) (%s)" % (name, os.path.basename(named), left, rt.describe(p)))


def main(argv):
    if len(argv) != 2:
        print("usage: test_stories260k.py ATTN_EXE")
        return 2
    attn = argv[1]
    if not (os.path.exists(CKPT) and os.path.exists(TOKF)):
        print("skip: %s or %s is absent (CI puts shared/ beside the clone)" % (CKPT, TOKF))
        return rt.SKIP
    if not os.path.exists(ENCODER):
        print("FAIL: the independent encoder %s is missing" % ENCODER)
        return 1
    sys.path.insert(0, os.path.dirname(ENCODER))
    import llama2c_encode as enc  # noqa: E402
    import stories260k_ref as ref  # noqa: E402

    f = rt.Failures()
    model = ref.load_checkpoint(CKPT)
    pieces = ref.read_pieces(TOKF)
    tok = enc.load(TOKF)
    tmp = tempfile.mkdtemp(prefix="attn-stories260k-")
    try:
        out = os.path.join(tmp, "model")
        p = rt.run([attn, "import", "llama2c", "--checkpoint", CKPT, "--tokenizer", TOKF,
                    "--out", out])
        cfg = os.path.join(out, "config.json")
        if not f.check(p.returncode == 0 and os.path.exists(cfg),
                       "attn import llama2c writes %s (%s)" % (cfg, rt.describe(p))):
            return f.exit()

        # tokenization of the prompt
        want = enc.encode(tok, PROMPT.encode())
        got = attn_ids(f, attn, cfg, PROMPT, tmp, "prompt")
        f.check(got == want, "ids of %r: attn %s == Python encoder %s" % (PROMPT, got, want))
        compare_run(f, attn, cfg, PROMPT, ref, model, pieces, want, tmp, "prompt")
        compare_generate(f, attn, cfg, PROMPT, ref, model, pieces, want, STEPS, tmp, "prompt")
        gen = ref.greedy(model, want, STEPS)
        story = ref.decode(pieces, want[1:] + gen, prev=want[0])
        f.check(story.startswith("Once upon a time, there was a little girl named Lily"),
                "reference sanity: greedy story starts like llama2.c's doc (%r)" % story[:60])

        # non-ASCII text: byte fallback
        for text in ("héllo 🙂", "日本語 naïve\tcafé ☃"):
            want_u = enc.encode(tok, text.encode())
            got_u = attn_ids(f, attn, cfg, text, tmp, repr(text))
            fallback = [i for i in want_u if 3 <= i <= 258]
            f.check(bool(fallback), "%r: the encoder uses byte-fallback ids %s" % (text, fallback))
            f.check(got_u == want_u, "ids of %r: attn %s == Python encoder %s"
                    % (text, got_u, want_u))
            compare_run(f, attn, cfg, text, ref, model, pieces, want_u, tmp, repr(text),
                        logits=False)
            compare_generate(f, attn, cfg, text, ref, model, pieces, want_u, 8, tmp, repr(text))
        # invalid UTF-8 bytes on standard input (argv cannot carry every byte)
        raw = b"ok \xff\xfe cut \xc3"
        want_b = enc.encode(tok, raw)
        p = rt.run([attn, "run", "--config", cfg, "--context", os.path.join(tmp, "b.csv")],
                   stdin=raw + b"\n")
        if f.check(p.returncode == 0, "invalid UTF-8 on stdin runs (%s)" % rt.describe(p)):
            toks, hid = rt.read_context(os.path.join(tmp, "b.csv"))
            wp = [pieces[i].decode("utf-8", "surrogateescape") for i in want_b]
            f.check(toks == wp, "invalid UTF-8: pieces %s == encoder's %s" % (toks, wp))
            d = rt.max_abs(hid, ref.forward(model, want_b)["hidden"].numpy())
            f.check(d <= HIDDEN_TOL, "invalid UTF-8: hidden states max |diff| = %.3g" % d)

        # broken files
        with open(CKPT, "rb") as fh:
            ck = fh.read()
        with open(TOKF, "rb") as fh:
            tk = fh.read()
        bad = {}

        def write(name, data):
            path = os.path.join(tmp, name)
            with open(path, "wb") as fh:
                fh.write(data)
            return path

        hdr = list(struct.unpack("<7i", ck[:28]))
        more_layers = hdr[:]
        more_layers[2] += 1
        wider = hdr[:]
        wider[0] *= 2
        bad["checkpoint cut to 1000 bytes"] = (write("cut1000.bin", ck[:1000]), TOKF)
        bad["checkpoint cut inside the weights"] = (write("cutmid.bin", ck[:len(ck) // 2 + 2]),
                                                    TOKF)
        bad["checkpoint cut inside the header"] = (write("cut20.bin", ck[:20]), TOKF)
        bad["header with one more layer"] = (write("layers.bin", struct.pack("<7i", *more_layers)
                                                   + ck[28:]), TOKF)
        bad["header with twice the width"] = (write("wide.bin", struct.pack("<7i", *wider)
                                                    + ck[28:]), TOKF)
        zero_heads = hdr[:]
        zero_heads[3] = 0
        bad["header with 0 heads"] = (write("heads0.bin", struct.pack("<7i", *zero_heads)
                                            + ck[28:]), TOKF)
        bad["tokenizer cut short"] = (CKPT, write("tokcut.bin", tk[:3001]))
        bad["tokenizer missing its last 3 bytes"] = (CKPT, write("tokcut2.bin", tk[:len(tk) - 3]))
        for name, (c, t) in bad.items():
            check_import_refused(f, attn, name, c, t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f.exit()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
