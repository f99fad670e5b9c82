"""`attn explain` on the shipped models against an independent float64
computation (tests/explain/ref64.py, written from the contract).

    /usr/bin/python3 test_explain_models.py ATTN_EXE SOURCE_ROOT

For one head of each model in models/ (seed-attention: both heads;
tiny-decoder, tiny-encoder, tiny-translator when they exist: the last layer
and head, and for the translator the cross-attention head too, and the
encoder), runs `attn explain --full --digits 6` and compares every matrix
it prints with the reference: X (or E + P), A, Q, K, V, QKᵀ, S, S_masked,
weights (and the printed row sums), C, concat, out, the encoder memory M,
and the weight slices Wq, Wk, Wv, Wo and biases with the file's tensors.
Also checks that the strongest key marked '*' is the row's maximum.

Exit status: 0 pass, 1 fail, 77 skip (no numpy, no executable).
"""
import os
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy not available to %s" % sys.executable)
    sys.exit(77)

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import explain_parse  # noqa: E402
import ref64  # noqa: E402

ABS = 2e-6   # printed with 6 decimals: 5e-7 rounding, plus float32 vs float64
REL = 2e-4


class Checker:
    def __init__(self):
        self.failures = []
        self.checked = 0

    def close(self, what, got, want, rel=REL):
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            self.failures.append("%s: shape %s, reference %s" % (what, got.shape, want.shape))
            return
        fin = np.isfinite(want)
        if not np.array_equal(np.isfinite(got), fin) or \
                not np.array_equal(got[~fin], want[~fin]):
            self.failures.append("%s: infinite entries differ" % what)
            return
        err = np.abs(got[fin] - want[fin])
        tol = ABS + rel * np.maximum(1.0, np.abs(want[fin]))
        self.checked += got.size
        if (err > tol).any():
            i = int(np.argmax(err - tol))
            self.failures.append("%s: off by %.3g at flat index %d (attn %.9g, reference %.9g)"
                                 % (what, err[i], i, got[fin][i], want[fin][i]))


def explain(exe, args):
    p = subprocess.run([exe, "explain", "--full", "--digits", "6"] + args, capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise SystemExit("attn explain %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                              p.stderr))
    return p.stdout


def check_part(ck, name, part, model, r, stack, layer, kind, head):
    cfg = model.cfg
    H, KV, hd = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    g = head // (H // KV)
    st = r.attn[(stack, layer, kind)]
    m = part["m"]
    tag = "%s %s layer %d %s head %d" % (name, stack, layer, kind, head)
    prefix = "%s.%d.%s" % ("encoder.blocks" if stack == "encoder" and
                           cfg["architecture"] == "encoder-decoder" else "blocks",
                           layer, "cross" if kind == "cross" else "attn")
    if "X" in m:
        want = r.embed[stack] if layer == 0 else r.block_in[(stack, layer)]
        ck.close(tag + " X", m["X"], want)
        if "E" in m and "P" in m and not cfg["embed_norm"]:
            ck.close(tag + " E + P", m["E"] + m["P"], want, rel=1e-5)
    if "A" in m:
        ck.close(tag + " A", m["A"], st["A"])
    elif kind == "self":
        if cfg["norm_position"] == "pre":
            ck.failures.append(tag + ": pre-norm but no A printed")
    if kind == "cross":
        ck.close(tag + " M", m["M"], r.memory)
    ck.close(tag + " Q", m["Q"], st["Q"][head])
    ck.close(tag + " K", m["K"], st["K"][g])
    ck.close(tag + " V", m["V"], st["V"][g])
    ck.close(tag + " QKᵀ", m["QKᵀ"], st["QK"][head])
    ck.close(tag + " S", m["S"], st["S"][head])
    causal = kind == "self" and stack == "decoder"
    if causal:
        masked = st["S"][head].copy()
        masked[np.triu(np.ones(masked.shape, dtype=bool), 1)] = -np.inf
        ck.close(tag + " S_masked", m["S_masked"], masked)
    elif "S_masked" in m:
        ck.failures.append(tag + ": a mask printed for a bidirectional head")
    ck.close(tag + " weights", m["weights"], st["weights"][head])
    ck.close(tag + " row sums", part["sums"]["weights"], np.ones(m["weights"].shape[0]))
    for i, row in enumerate(m["weights"]):
        lab = part["labels"]["weights"]  # noqa: F841 (kept for messages)
        if not (row == row.max()).any():
            ck.failures.append(tag + ": row %d has no maximum?" % i)
    ck.close(tag + " C", m["C"], st["C"][head])
    if H > 1:
        ck.close(tag + " concat", m["concat"], st["concat"])
    ck.close(tag + " out", m["out"], st["out"])
    # the weight slices, transposed: [D, hd] and [H*hd, D]
    w = model.w
    ck.close(tag + " Wq", m["Wq"], w[prefix + ".q.weight"][head * hd:(head + 1) * hd].T, rel=0)
    ck.close(tag + " Wk", m["Wk"], w[prefix + ".k.weight"][g * hd:(g + 1) * hd].T, rel=0)
    ck.close(tag + " Wv", m["Wv"], w[prefix + ".v.weight"][g * hd:(g + 1) * hd].T, rel=0)
    ck.close(tag + " Wo", m["Wo"], w[prefix + ".o.weight"].T, rel=0)
    if cfg["bias"]:
        ck.close(tag + " bq", m["bq"], w[prefix + ".q.bias"][None, head * hd:(head + 1) * hd],
                 rel=0)
        ck.close(tag + " bo", m["bo"], w[prefix + ".o.bias"][None, :], rel=0)


def check_stars(ck, tag, text):
    """Every '*' in a weights block marks the largest number of its row."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("   weights ["):
            continue
        j = i + 1
        while j < len(lines) and lines[j]:
            row = lines[j]
            j += 1
            if not row[:14].strip():
                continue
            cells = row[14:].split()[:-1]  # the last is the row sum
            vals = [float(c.rstrip("*")) for c in cells]
            starred = [k for k, c in enumerate(cells) if c.endswith("*")]
            ck.checked += 1
            if len(starred) != 1 or vals[starred[0]] != max(vals):
                ck.failures.append("%s: the '*' of row %r is not on its maximum" % (tag, row))


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    exe, root = argv[1], argv[2]
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not executable" % exe)
        return 77
    ck = Checker()
    models = os.path.join(root, "models")

    # seed-attention: both heads, from text and from the embeddings file
    cfgp = os.path.join(models, "seed-attention", "config.json")
    seed = ref64.Model(cfgp)
    text = "The sun rises in the east"
    r = seed.run(seed.encode(text))
    for head in (0, 1):
        out = explain(exe, ["--config", cfgp, "--text", text, "--head", str(head)])
        parts = explain_parse.parse(out)
        check_part(ck, "seed-attention", parts[0], seed, r, "encoder", 0, "self", head)
        check_stars(ck, "seed-attention", out)

    ran = ["seed-attention"]
    cases = [
        ("tiny-decoder", "The cat sits on the mat", None),
        ("tiny-encoder", "The sun rises in the east", None),
        ("tiny-translator", "gabeni fobu mega fobu rozutu moguze .",
         "the sun rises in the east ."),
    ]
    for name, text, source in cases:
        cfgp = os.path.join(models, name, "config.json")
        if not os.path.exists(cfgp):
            print("note: %s is not there (yet); not checked" % cfgp)
            continue
        model = ref64.Model(cfgp)
        c = model.cfg
        layer, head = c["n_layers"] - 1, c["n_heads"] - 1
        ids = model.encode(text)
        if source is None:
            r = model.run(ids)
            stack = "encoder" if c["architecture"] == "encoder" else "decoder"
            out = explain(exe, ["--config", cfgp, "--text", text, "--layer", str(layer),
                                "--head", str(head)])
            parts = explain_parse.parse(out)
            check_part(ck, name, parts[0], model, r, stack, layer, "self", head)
        else:
            r = model.run(ids, source_ids=model.encode(source))
            out = explain(exe, ["--config", cfgp, "--text", text, "--source", source,
                                "--layer", str(layer), "--head", str(head)])
            parts = explain_parse.parse(out)
            check_part(ck, name, parts[0], model, r, "decoder", layer, "self", head)
            check_part(ck, name, parts[1], model, r, "decoder", layer, "cross", head)
            out = explain(exe, ["--config", cfgp, "--source", source, "--stack", "encoder",
                                "--layer", str(c["n_encoder_layers"] - 1), "--head", "0"])
            parts = explain_parse.parse(out)
            check_part(ck, name, parts[0], model, r, "encoder", c["n_encoder_layers"] - 1,
                       "self", 0)
        check_stars(ck, name, out)
        ran.append(name)

    for f in ck.failures[:30]:
        print("FAIL:", f)
    print("%s: %d numbers checked, %d failures" % (", ".join(ran), ck.checked, len(ck.failures)))
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
