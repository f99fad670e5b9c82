"""Generates docs/attention.md from real runs of attn on the shipped models.

    /usr/bin/python3 tools/make_attention_doc.py [--attn build/src/attn] [--out docs/attention.md]

Every block of program output in the guide is what the built attn printed
for the command shown above it (run from the repository root, with
COLUMNS=80 and no colour). The worked example's hand computation uses the
float64 numbers of tools/seed_attention.py, and this script stops with an
error when they disagree with attn's output, so the guide cannot show a
computation the program does not do. The translation the guide shows is
what `attn generate` printed on models/tiny-translator, and the script stops
when it is not the translation data/parallel.tsv gives (the lexicon's).
tests/explain/test_attention_doc.py regenerates the guide and fails when it
differs from the committed file, so also when the binary translates otherwise.

Models it uses: models/seed-attention (always), models/tiny-decoder,
models/tiny-encoder, models/tiny-translator (tools/train.py); a trained
model that is missing gets a note instead of its section.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # --root changes it
sys.path.insert(0, os.path.join(ROOT, "tools"))
import seed_attention  # noqa: E402

SEED = "models/seed-attention/config.json"
SENTENCE = seed_attention.SENTENCE


class Doc:
    def __init__(self, exe):
        self.exe = exe
        self.parts = []

    def text(self, s):
        self.parts.append(s.strip("\n") + "\n")

    def run(self, args):
        """attn ARGS from the repository root; returns standard output."""
        env = dict(os.environ, COLUMNS="80", NO_COLOR="1")
        p = subprocess.run([self.exe] + args, cwd=ROOT, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit("attn %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                          p.stderr.strip()))
        return p.stdout

    def command(self, args, output):
        shown = " ".join(shell_quote(a) for a in args)
        self.parts.append("```\n$ attn %s\n%s```\n" % (shown, output))


def shell_quote(a):
    if re.fullmatch(r"[A-Za-z0-9_./=:,-]+", a):
        return a
    return '"%s"' % a.replace('"', '\\"')


def section(out, heading):
    """The numbered section of explain's output whose heading contains `heading`,
    up to the next numbered section or part."""
    lines = out.split("\n")
    start = None
    for i, line in enumerate(lines):
        if start is None and re.match(r"^\d+\. ", line) and heading in line:
            start = i
        elif start is not None and (re.match(r"^\d+\. ", line) or line.startswith("== ")):
            return "\n".join(lines[start:i]).rstrip("\n") + "\n"
    if start is None:
        raise SystemExit("no section %r in the output" % heading)
    return "\n".join(lines[start:]).rstrip("\n") + "\n"


def block(out, name, k=0):
    """The k-th matrix called `name` (title line to blank line)."""
    lines = out.split("\n")
    seen = 0
    for i, line in enumerate(lines):
        if line.startswith("   %s [" % name):
            if seen == k:
                j = i
                while j < len(lines) and lines[j]:
                    j += 1
                return "\n".join(lines[i:j]) + "\n"
            seen += 1
    raise SystemExit("no matrix %r in the output" % name)


def matrix(out, name, k=0):
    """The numbers of a printed matrix (row sums dropped)."""
    rows = []
    for line in block(out, name, k).split("\n")[1:]:
        if not line or not line[:14].strip():
            continue
        nums = [float(x.rstrip("*")) for x in line[14:].split()]
        rows.append(nums)
    return np.array(rows)


def agree(what, printed, exact, digits=3):
    """Printed (rounded) numbers must be the float64 ones rounded."""
    exact = np.asarray(exact, dtype=np.float64)
    printed = printed[:, :exact.shape[1]] if printed.ndim == 2 else printed
    if printed.shape != exact.shape or np.abs(printed - exact).max() > 0.5 * 10 ** -digits + 1e-9:
        raise SystemExit("the worked example disagrees with attn on %s:\nattn:\n%s\nfloat64:\n%s"
                         % (what, printed, exact))


def f3(x):
    s = "%.3f" % x
    return "0.000" if s == "-0.000" else s


def vec(v):
    return "(" + ", ".join(f3(x) for x in v) + ")"


def have(model):
    return os.path.exists(os.path.join(ROOT, "models", model, "config.json"))


def missing(doc, model):
    doc.text("""
> `models/%s` is not in this checkout yet. Build it with
> `/usr/bin/python3 tools/train.py %s`, then regenerate this guide with
> `/usr/bin/python3 tools/make_attention_doc.py`.
""" % (model, model))


# ---------------------------------------------------------------------------

def intro(doc):
    doc.text("""
# Attention, step by step

This guide follows one sentence, "%s", through the parts of a
transformer that decide which words look at which: self-attention, several
heads, the causal mask of a decoder, and cross-attention between two
sentences. Every block of output below is what `attn` printed for the
command above it, on the models in `models/`; the guide is generated by
`tools/make_attention_doc.py` and a test regenerates it, so it cannot drift
from the program.

Two commands do the work:

- `attn explain` prints every step of one attention head on one input,
  with the shape of each matrix and the tokens on its rows and columns.
  The values are captured while the model runs; a few are recomputed for
  display from them and the weights (the raw scores QKᵀ, the embedding and
  position rows, Q and K before rotation under RoPE). `--layer L` and `--head H` pick the head,
  `--digits N` the decimals, `--width N` or `$COLUMNS` the line width (wider
  matrices keep their first and last columns around a `…`), `--full` turns
  abbreviation off.
- `attn run` without `--maps` / `--context` prints every head's map as a
  grid, shaded as a heatmap on a colour terminal (`--color=auto|always|never`;
  `auto` honours `NO_COLOR`).
""" % SENTENCE)


def seed_section(doc):
    ex = seed_attention.worked_example()
    args = ["explain", "--config", SEED, "--text", SENTENCE]
    out = doc.run(args)
    doc.text("""
## 1. Self-attention on a model you can check by hand

`models/seed-attention` is made by hand (`tools/seed_attention.py`): one
block, `d_model` 4, two heads of 2 dimensions, no MLP (`"mlp": "none"`), no
positions, and weights that are small whole numbers. Each word is a vector
of four features, d0 = article, d1 = thing, d2 = action, d3 = place (its
`README.md` explains the choice). Here is all of head 0:
""")
    doc.command(args, out)

    # the hand computation, for the query "the" (row 0)
    q = ex["Q0"][0]
    k = ex["K0"]
    qk = ex["QK0"][0]
    s = ex["S0"][0]
    w = ex["weights0"][0]
    c = ex["C0"][0]
    e = np.exp(s)
    agree("Q (head 0)", matrix(out, "Q"), ex["Q0"])
    agree("K (head 0)", matrix(out, "K"), ex["K0"])
    agree("V (head 0)", matrix(out, "V"), ex["V0"])
    agree("QKᵀ (head 0)", matrix(out, "QKᵀ"), ex["QK0"])
    agree("S (head 0)", matrix(out, "S"), ex["S0"])
    agree("weights (head 0)", matrix(out, "weights"), ex["weights0"])
    agree("C (head 0)", matrix(out, "C"), ex["C0"])
    agree("concat", matrix(out, "concat"), ex["concat"])
    agree("out", matrix(out, "out"), ex["out"])
    words = seed_attention.words()
    # the claims the text makes about these numbers
    if not (np.argmax(w) == 1 and 0.4 < w[5] / w[1] < 0.6 and
            np.array_equal(ex["weights0"][0], ex["weights0"][4])):
        raise SystemExit("the seed example no longer says what the guide claims (head 0)")
    bullets = [
        "**Query.** X[0] = (1, 0, 0, 0). Wq's columns for head 0 are (1, 0, 1, 0) and "
        "(0, 1, 0, 0), so q = %s: \"the\" is an article and asks for a thing." % vec(q),
        "**Keys.** Wk makes k = (2 d1, 2 d0): \"sun\" has k = %s, \"east\" %s, the two "
        "\"the\" %s, \"rises\" and \"in\" %s." % (vec(k[1]), vec(k[5]), vec(k[0]), vec(k[2])),
        "**Raw scores** q · k: %s. Only the first number of q is not 0, so each score is the "
        "key's first number." % ", ".join("%s %s" % (words[j], f3(qk[j]))
                                          for j in range(len(words))),
        "**Scaling** by 1/√2 = %.4f: %s." % (1 / math.sqrt(2), ", ".join(f3(x) for x in s)),
        "**Softmax**: e^s = %s; their sum is %.3f; dividing gives the weights %s. They add up "
        "to 1, and \"sun\" (%s) gets the most: the article looks at its noun. \"east\" (%s), "
        "only half a thing in this model, gets half the score and about half the weight of "
        "\"sun\". The two \"the\" rows are the same numbers: with no positions, attention "
        "cannot tell them apart." % (", ".join(f3(x) for x in e), e.sum(),
                                     ", ".join(f3(x) for x in w), f3(w[1]), f3(w[5])),
        "**Context**: C[0] = Σ weight_j · v_j with v = (d0, d1): %s · (1, 0) for each of "
        "the two \"the\" + %s · (0, 1) for \"sun\" + %s · (0, 0.5) for \"east\" = %s, the "
        "row `0 the` of C above." % (f3(w[0]), f3(w[1]), f3(w[5]), vec(c)),
    ]
    doc.text("### Checking row 0 (\"the\") by hand\n\n" + "\n".join(
        textwrap.fill(b, width=76, initial_indent="- ", subsequent_indent="  ")
        for b in bullets) + """

`tools/seed_attention.py example` prints all of these in float64; the
generator of this guide checks that they round to what attn printed.
""")

    # the same numbers from vectors
    args2 = ["explain", "--config", SEED, "--embeddings", "data/seed-embeddings.csv"]
    out2 = doc.run(args2)
    for name in ("X", "Q", "K", "V", "QKᵀ", "S", "weights", "C", "concat", "out"):
        if not np.array_equal(matrix(out, name), matrix(out2, name)):
            raise SystemExit("--embeddings and --text disagree on %s" % name)
    with open(os.path.join(ROOT, "data", "seed-embeddings.csv")) as f:
        csv = f.read()
    doc.text("""
### The same example from vectors

Attention works on vectors, not words. `--embeddings FILE` (for `attn run`
and `attn explain`) feeds vectors to the first block directly: a CSV file
with one row of `d_model` numbers per position (lines starting with `#` and
one header row of names are skipped), or a `.npy` array of shape
`[T, d_model]` (float32 or float64, C order). There is no embedding lookup,
no scaling and no position added; rows are labelled by their position.
`data/seed-embeddings.csv` holds the vectors of the sentence written by hand:

```
%s```

They are the rows of the model's `tok_embed`, so every number is the same as
above; only the labels change:
""" % csv)
    doc.command(args2, section(out2, "Tokens") + "\n" + section(out2, "Softmax"))


def heads_section(doc):
    ex = seed_attention.worked_example()
    args = ["explain", "--config", SEED, "--text", SENTENCE, "--head", "1"]
    out = doc.run(args)
    agree("weights (head 1)", matrix(out, "weights"), ex["weights1"])
    agree("C (head 1)", matrix(out, "C"), ex["C1"])
    w1 = ex["weights1"]
    if not (np.argmax(w1[2]) == 5 and np.argmax(w1[3]) == 5 and np.argmax(w1[1]) == 2 and
            np.allclose(w1[0], 1 / 6)):
        raise SystemExit("the seed example no longer says what the guide claims (head 1)")
    doc.text("""
## 2. Several heads

A head is one set of Wq, Wk, Wv. Head 1 of the seed model asks another
question: verbs and place words (q0 = d2 + d3) look for places (k0 = d1 +
d3), things (q1 = d1) look for actions (k1 = 2 d2). Its weights:
""")
    doc.command(args, section(out, "Softmax"))
    doc.text("""
"rises" and "in" look most at "east", "sun" at "rises". "the" asks nothing
(its query is (0, 0)), so all its scores are 0 and its weights are uniform,
1/6 each.

Each head produces its own context matrix C of `head_dim` columns. The
heads' contexts are concatenated side by side, in head order, and the output
projection Wo maps the result back to `d_model` (here Wo is the identity, so
`out` is the concatenation itself):
""")
    doc.command(args, section(out, "Heads"))
    args2 = ["run", "--config", SEED, "--text", SENTENCE]
    doc.text("""
`attn run` shows the maps of every head at once:
""")
    doc.command(args2, doc.run(args2))


def causal_section(doc):
    doc.text("""
## 3. The causal mask

A decoder (GPT, Llama) predicts each word from the words before it, so a
query may not look at later positions. After scaling, the scores above the
diagonal (key after query) are set to −∞; softmax turns them into weights of
exactly 0, and each row still sums to 1.
""")
    if not have("tiny-decoder"):
        missing(doc, "tiny-decoder")
        return
    cfg = "models/tiny-decoder/config.json"
    args = ["explain", "--config", cfg, "--text", "The cat sits on the mat", "--head", "1"]
    out = doc.run(args)
    doc.text("""
`models/tiny-decoder` is a small decoder trained on `data/corpus.txt`
(`tools/train.py`). Its `d_model` is too wide for the screen, so vectors show
their first and last columns around a `…`; the score matrices are small:
""")
    doc.command(args, section(out, "Scaled") + "\n" + section(out, "Causal mask") + "\n" +
                section(out, "Softmax"))
    args2 = ["run", "--config", cfg, "--text", "The cat sits on the mat"]
    out2 = doc.run(args2)
    first = out2.split("\n\n")
    doc.text("""
In `attn run`'s view a `·` marks a weight the mask set to 0 (the first of
the model's maps):
""")
    doc.command(args2, first[0] + "\n\n" + first[1] + "\n")


def encoder_section(doc):
    doc.text("""
## 4. A trained encoder

An encoder (BERT) has no mask: every word attends to every word, before and
after it.
""")
    if not have("tiny-encoder"):
        missing(doc, "tiny-encoder")
        return
    cfg = "models/tiny-encoder/config.json"
    args = ["run", "--config", cfg, "--text", SENTENCE]
    out = doc.run(args)
    blocks = out.split("\n\n")
    maps = [b for b in blocks if b.startswith("encoder layer ")]

    def sharpness(b):  # the mean over rows of the largest weight
        rows = [[float(x.rstrip("*")) for x in line[13:].split()]
                for line in b.split("\n")[3:] if line.strip()]
        return float(np.mean([max(r) for r in rows]))

    pick = max(maps, key=sharpness)
    doc.text("""
`models/tiny-encoder` was trained on the same corpus to fill in hidden words
(`tools/train.py`). `attn run` prints all %d of its maps; here are the first
and the sharpest (the one whose rows put the most weight on one key, on
average), `%s`:
""" % (len(maps), pick.split("\n")[0]))
    shown = blocks[0] + "\n\n" + maps[0] + "\n"
    if pick is not maps[0]:
        shown += "\n" + pick + "\n"
    doc.command(args, shown)


def cross_section(doc):
    doc.text("""
## 5. Cross-attention

An encoder-decoder (the original Transformer) reads a source sentence with
its encoder, then generates the target with a decoder whose blocks have a
second attention sub-layer: cross-attention. Its queries come from the
decoder (the target words), its keys and values from the encoder's output
(the source words), so its map is [target positions, source positions] and
has no mask. `attn explain` shows the decoder's self-attention head and
then the cross-attention head of the same layer; `--kind cross` shows only
the latter, `--stack encoder` the encoder's self-attention.
""")
    if not have("tiny-translator"):
        missing(doc, "tiny-translator")
        return
    cfg = "models/tiny-translator/config.json"
    src = "the sun rises in the east ."
    # the reference translation and word alignment of data/parallel.tsv (the
    # lexicon's words in Tiral order): source word s is translated by target word t
    ref = align = None
    with open(os.path.join(ROOT, "data", "parallel.tsv"), encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) == 4 and cols[1] == src:
                ref = cols[2]
                align = [tuple(int(x) for x in a.split("-")) for a in cols[3].split()]
                break
    if ref is None:
        raise SystemExit("data/parallel.tsv has no pair for %r" % src)
    import json
    with open(os.path.join(ROOT, cfg)) as f:
        mc = json.load(f)
    bos = 1 if mc.get("tokenizer", {}).get("bos") else 0
    # what the model translates: greedy generation from <s> (the decoder's
    # start token, no --text needed) until it generates </s>, the config's
    # end-of-sequence token, which is not printed; --steps only bounds it
    steps = 20
    gen_args = ["generate", "--config", cfg, "--source", src, "--steps", str(steps)]
    generated = doc.run(gen_args)
    words = generated.split()
    if " ".join(words) != ref or len(words) >= steps:
        raise SystemExit("the translator translates %r as %r, not as data/parallel.tsv's %r"
                         % (src, generated.strip(), ref))
    tgt = " ".join(words)
    # which cross-attention head follows the alignment best: the query that
    # predicts target word t (row t with <s> in front) looks most at its source word
    best = None
    for layer in range(mc["n_layers"]):
        for head in range(mc["n_heads"]):
            a = ["explain", "--config", cfg, "--source", src, "--text", tgt, "--kind", "cross",
                 "--layer", str(layer), "--head", str(head)]
            o = doc.run(a)
            w = matrix(o, "weights")
            hits = sum(1 for s_, t in align if 0 <= t + bos - 1 < w.shape[0] and
                       int(np.argmax(w[t + bos - 1])) == s_ + bos)
            if best is None or hits > best[0]:
                best = (hits, layer, head, a, o)
    hits, layer, head, args, out = best
    doc.text(textwrap.fill(
        "`models/tiny-translator` translates the toy English of `data/` into Tiral, a made-up "
        "language (`data/README.md`). `attn generate` translates \"%s\": the decoder starts "
        "from `<s>` and appends its most likely next word at each step, reading the source "
        "through cross-attention:" % src, width=76))
    doc.command(gen_args, generated)
    doc.text(textwrap.fill(
        "That is the translation of `data/parallel.tsv`, word for word (%s). Then the model "
        "generated `</s>`, the end of the sentence: its config names it as the end-of-sequence "
        "token (`\"eos\"`), so generation stopped there, at step %d of the %d that `--steps` "
        "allows, without printing it. Feeding the translation back with "
        "`--text` shows the maps of that run (teacher forcing). Both sides get a `<s>` in "
        "front. The decoder reads the target shifted right: the query at row t is the position "
        "that predicts the next target word (row 0, `<s>`, predicts \"%s\"). Of the model's %d "
        "cross-attention heads, layer %d head %d follows the word alignment of "
        "`data/parallel.tsv` best: for %d of the %d target words, the row that predicts the "
        "word looks most at the source word it translates. (The model's training guided its "
        "last decoder layer's cross-attention towards that alignment; "
        "`models/tiny-translator/README.md` says how, and why.)"
        % (gloss(src, tgt, align), len(tgt.split()) + 1, steps, tgt.split()[0],
           mc["n_layers"] * mc["n_heads"], layer, head, hits, len(align)), width=76))
    doc.command(args, section(out, "Tokens") + "\n" + section(out, "Softmax"))
    doc.text("""
Without `--kind cross` the same command first explains that layer's causal
self-attention over the target, then this head.
""")


def gloss(src, tgt, align):
    """ "gabeni" = sun, "fobu" = the, ... in target order, from the alignment."""
    s, t = src.split(), tgt.split()
    of = {ti: si for si, ti in align}
    seen, out = set(), []
    for i, w in enumerate(t):
        if w != s[of[i]] and w not in seen:
            seen.add(w)
            out.append('"%s" = %s' % (w, s[of[i]]))
    return ", ".join(out)


def outro(doc):
    doc.text("""
## 6. Further

- `attn run --maps maps.csv` writes every weight of every layer and head as
  CSV for pandas, R or gnuplot (`README.md` has the columns).
- `attn explain --layer L --head H` explains any head; on a wide model add
  `--full` (and maybe `--digits 6`) to see every number.
- `"mlp": "none"` in a config makes attention-only blocks, like the seed
  model: no MLP sub-layer and no MLP tensors.
""")


def generate(exe):
    doc = Doc(exe)
    intro(doc)
    seed_section(doc)
    heads_section(doc)
    causal_section(doc)
    encoder_section(doc)
    cross_section(doc)
    outro(doc)
    text = "\n".join(doc.parts)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text.rstrip("\n") + "\n"


def main(argv):
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attn", default=os.path.join(ROOT, "build", "src", "attn"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "attention.md"))
    ap.add_argument("--root", default=ROOT,
                    help="the folder with models/ and data/ to run in (default: this checkout)")
    args = ap.parse_args(argv)
    ROOT = os.path.abspath(args.root)
    text = generate(os.path.abspath(args.attn))
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
