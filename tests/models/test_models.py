#!/usr/bin/python3
"""Acceptance tests of the trained toy models in models/ (run by meson).

    /usr/bin/python3 tests/models/test_models.py [PATH/TO/attn] [CHECK ...]

Without PATH/TO/attn: $ATTN_EXE, else the most recently built build*/src/attn
of this repository, else attn on PATH.

CHECK is any of: maps, causal, alignment, senses, accuracy, examples, vocabulary
(default: all).

  maps       attn's attention maps equal the float64 forward of the training
             script (tools/forward64.py) within 2e-5, for a few sentences per
             model ("The cat sits on the mat" on the decoder, "The sun rises
             in the east" on the encoder, held-out pairs on the translator);
             attn's context (final hidden state) within 1e-4.
  causal     the decoder's map of "The cat sits on the mat" has nothing
             above the diagonal.
  alignment  tiny-translator: for each target word of held-out pairs, the
             source word with the largest cross-attention weight (attn's maps,
             decoder layer ALIGN_LAYER, weights averaged over the heads) is the
             one data/parallel.tsv aligns it to, for at least 80% of words.
             Teacher forcing: the decoder input is "<s> t0 t1 ...", so query
             position j predicts target word j (its query token is the word
             before it). Source position 0 is "<s>" and counts as a miss.
             (Layer 1's cross-attention was trained with a guided-alignment
             loss on the training pairs; these pairs are held out.)
  senses     tiny-encoder: attn's context vectors of "bank" in held-out
             sentences: mean cosine similarity within the river sense and within
             the money sense are both larger than across the senses (printed).
  accuracy   tiny-decoder: held-out next-word accuracy (float64 forward of the
             shipped files) is at least 3x the accuracy of always predicting
             the most frequent held-out word.
  examples   the example sentences of the documentation (EXAMPLES), run through
             attn: tiny-translator's greedy translation (attn generate from
             the decoder's start token <s>, no --text, --steps well above the
             length) is exactly the one data/parallel.tsv gives (the lexicon's
             words in Tiral order), and generation stops there, at </s>
             (neither printed nor listed); tiny-decoder's next word after
             the sentence without its last word is one that the corpus has
             after those words, and its greedy continuation reaches "." using
             only word pairs of the corpus; tiny-encoder fills a <mask> at the
             last word and at every "bank" with a word that the grammar of
             tools/corpus.py allows there (the <mask> given as an id, and
             written in --text), and of the 5 training sentences
             of data/senses.tsv whose "bank" context vectors are nearest (cosine)
             to the one of the example's "bank", most have its sense (the
             cosine to each sense's mean vector is printed too).
  vocabulary every word of every --text / --source of a command on a tiny-*
             model in README.md, docs/*.md, models/*/README.md and
             data/README.md is in that model's vocabulary (no <unk>).

Exit status: 0 pass, 1 fail, 77 skip (no attn executable given or found).
"""
import csv
import glob
import io
import os
import re
import shutil
import subprocess
import sys

try:
    import numpy as np
except ImportError:  # the checks need numpy; without it they cannot run
    print("skip: numpy is not installed for %s" % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import corpus as grammar  # noqa: E402
import forward64  # noqa: E402

MODELS = os.path.join(ROOT, "models")
DATA = os.path.join(ROOT, "data")
TOL_MAPS = 2e-5
TOL_CONTEXT = 1e-4
ALIGN_LAYER = 1          # decoder layer whose cross-attention is the alignment
ALIGN_PAIRS = 120        # held-out pairs scored

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def config(name):
    return os.path.join(MODELS, name, "config.json")


def attn(exe, args, stdin=None):
    p = subprocess.run([exe, "run"] + args, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("attn %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


def read_maps(text):
    """{(input, stack, layer, kind): {(head, q, k): weight}} and tokens per (input, stack, kind)."""
    maps, tokens = {}, {}
    rows = csv.reader(io.StringIO(text))
    header = next(rows)
    assert header == ["input", "stack", "layer", "kind", "head", "query_pos", "query_token",
                      "key_pos", "key_token", "weight"], header
    for r in rows:
        inp, stack, layer, kind, head, qp, qt, kp, kt, w = r
        key = (int(inp), stack, int(layer), kind)
        maps.setdefault(key, {})[(int(head), int(qp), int(kp))] = float(w)
        tokens.setdefault((int(inp), stack, kind, "q"), {})[int(qp)] = qt
        tokens.setdefault((int(inp), stack, kind, "k"), {})[int(kp)] = kt
    return maps, tokens


def read_context(text):
    """{input: (tokens, [T, D] array)}"""
    rows = csv.reader(io.StringIO(text))
    header = next(rows)
    assert header[:3] == ["input", "pos", "token"], header
    out = {}
    for r in rows:
        toks, vecs = out.setdefault(int(r[0]), ([], []))
        assert int(r[1]) == len(toks)
        toks.append(r[2])
        vecs.append([float(x) for x in r[3:]])
    return {k: (t, np.array(v)) for k, (t, v) in out.items()}


def dense(entries, H, T, Tk):
    a = np.zeros((H, T, Tk))
    for (h, q, k), w in entries.items():
        a[h, q, k] = w
    return a


def compare_maps(exe, name, text, source=None):
    m = forward64.Model(config(name))
    ref = m.run(text, source)
    args = ["--config", config(name), "--text", text]
    if source is not None:
        args += ["--source", source]
    maps, tokens = read_maps(attn(exe, args + ["--maps", "-"]))
    H = m.cfg["n_heads"]
    worst = 0.0
    ok = set(k[1:] for k in maps) == set(ref.weights)
    for (stack, layer, kind), w in ref.weights.items():
        got = maps.get((0, stack, layer, kind))
        if got is None:
            ok = False
            continue
        worst = max(worst, float(np.abs(dense(got, H, w.shape[1], w.shape[2]) - w).max()))
    want_q = ref.tokens
    got_q = tokens.get((0, "encoder" if m.cfg["architecture"] == "encoder" else "decoder", "self", "q"), {})
    ok = ok and [got_q.get(i) for i in range(len(want_q))] == want_q
    check(ok and worst <= TOL_MAPS, "%s maps of %r%s: max |attn - float64| = %.3g (layers, kinds, tokens %s)"
          % (name, text, "" if source is None else " <- %r" % source, worst, "match" if ok else "DIFFER"))
    ctx = read_context(attn(exe, args + ["--context", "-"]))
    toks, vec = ctx[0]
    diff = float(np.abs(vec - ref.hidden).max()) if vec.shape == ref.hidden.shape else float("inf")
    check(diff <= TOL_CONTEXT and toks == ref.tokens,
          "%s context of %r: max |attn - float64| = %.3g" % (name, text, diff))
    return maps


def test_maps(exe):
    for text in ["The cat sits on the mat", "The sun rises in the east.",
                 "the girl reads her book in the morning ."]:
        compare_maps(exe, "tiny-decoder", text)
    for text in ["The sun rises in the east", "the man borrows some money from the bank .",
                 "the fisherman sits on the bank of the river ."]:
        compare_maps(exe, "tiny-encoder", text)
    pairs = heldout_pairs()[:3]
    for src, tgt, _ in pairs:
        compare_maps(exe, "tiny-translator", tgt, src)


def test_causal(exe):
    text = "The cat sits on the mat"
    maps, _ = read_maps(attn(exe, ["--config", config("tiny-decoder"), "--text", text, "--maps", "-"]))
    above = [(k, hq) for k, e in maps.items() for hq, w in e.items() if hq[2] > hq[1] and w != 0.0]
    rows_sum = [abs(sum(w for (h, q, kk), w in e.items() if h == hh and q == qq) - 1.0)
                for e in maps.values() for hh in range(4) for qq in range(6)]
    check(not above and max(rows_sum) < 1e-5,
          "tiny-decoder map of %r is causal: %d nonzero weights above the diagonal, rows sum to 1 within %.2g"
          % (text, len(above), max(rows_sum)))


def heldout_pairs():
    out = []
    with open(os.path.join(DATA, "parallel.tsv")) as f:
        next(f)
        for line in f:
            split, src, tgt, align = line.rstrip("\n").split("\t")
            if split == "test":
                out.append((src, tgt, [tuple(map(int, a.split("-"))) for a in align.split()]))
    return out


def test_alignment(exe):
    pairs = heldout_pairs()[:ALIGN_PAIRS]
    stdin = "".join("%s\t%s\n" % (s, t) for s, t, _ in pairs)
    maps, tokens = read_maps(attn(exe, ["--config", config("tiny-translator"), "--maps", "-"], stdin))
    H = forward64.Model(config("tiny-translator")).cfg["n_heads"]
    hit = total = 0
    for i, (src, tgt, align) in enumerate(pairs):
        src_of = {t: s for s, t in align}
        n_t, n_s = len(tgt.split()), len(src.split())
        w = dense(maps[(i, "decoder", ALIGN_LAYER, "cross")], H, n_t + 1, n_s + 1).mean(0)
        for t in range(n_t):   # query position t predicts target word t
            hit += int(np.argmax(w[t])) == src_of[t] + 1
            total += 1
    acc = hit / total
    check(acc >= 0.8, "tiny-translator alignment on %d held-out pairs (%d target words): "
          "strongest source word (layer %d cross-attention, mean over heads) is the aligned one for %.1f%%"
          % (len(pairs), total, ALIGN_LAYER, 100 * acc))


def test_senses(exe):
    sents = []
    with open(os.path.join(DATA, "senses.tsv")) as f:
        next(f)
        for line in f:
            split, sent, pos, sense = line.rstrip("\n").split("\t")
            if split == "test":
                sents.append((sent, int(pos), sense))
    stdin = "".join(s + "\n" for s, _, _ in sents)
    ctx = read_context(attn(exe, ["--config", config("tiny-encoder"), "--context", "-"], stdin))
    vecs = {"river": [], "money": []}
    for i, (sent, pos, sense) in enumerate(sents):
        toks, v = ctx[i]
        assert toks[pos] == "bank", (sent, toks)
        vecs[sense].append(v[pos] / np.linalg.norm(v[pos]))
    r, m = np.array(vecs["river"]), np.array(vecs["money"])

    def mean_cos(a, b, same):
        c = a @ b.T
        if same:
            n = len(a)
            return (c.sum() - np.trace(c)) / (n * n - n)
        return c.mean()

    rr, mm, rm = mean_cos(r, r, True), mean_cos(m, m, True), mean_cos(r, m, False)
    print("      'bank' in %d river and %d money held-out sentences (tiny-encoder context):" % (len(r), len(m)))
    print("      mean cosine river-river %.4f, money-money %.4f, river-money %.4f" % (rr, mm, rm))
    # nearest-centroid sense of each vector (leave-one-out centroid of its own sense)
    correct = 0
    for own, other in ((r, m), (m, r)):
        for k in range(len(own)):
            c_own = (own.sum(0) - own[k]) / (len(own) - 1)
            correct += own[k] @ c_own / np.linalg.norm(c_own) > own[k] @ other.mean(0) / np.linalg.norm(other.mean(0))
    print("      nearest sense centroid right for %d of %d" % (correct, len(r) + len(m)))
    check(rr > rm and mm > rm, "tiny-encoder 'bank' senses: within-sense cosine (%.3f, %.3f) > across (%.3f)"
          % (rr, mm, rm))


def test_accuracy(exe):
    m = forward64.Model(config("tiny-decoder"))
    ok = n = 0
    freq = {}
    with open(os.path.join(DATA, "corpus.txt")) as f:
        for line in f:
            split, text = line.rstrip("\n").split("\t")
            if split != "test":
                continue
            r = m.run(text)
            pred = r.logits.argmax(-1)
            for p, y in zip(pred[:-1], r.ids[1:]):
                ok += int(p) == y
                n += 1
                freq[y] = freq.get(y, 0) + 1
    top = max(freq, key=lambda k: (freq[k], -k))
    acc, base = ok / n, freq[top] / n
    check(acc >= 3 * base, "tiny-decoder held-out next-word accuracy %.4f over %d predictions; "
          "always %r: %.4f; ratio %.2f (need >= 3)" % (acc, n, m.vocab[top], base, acc / base))


# The example sentences of README.md, docs/*.md, models/*/README.md and
# data/README.md (with the full stop the corpus sentences end with), and for
# the encoder the words masked in them: position -> the words the grammar of
# tools/corpus.py allows there.
_WHO = set(grammar.ANIMAL_NAMES + grammar.PEOPLE_NAMES)
EXAMPLES = {
    "the sun rises in the east .": {5: {"east"}},
    "the cat sits on the mat .": {5: set(grammar.FRAMES["sits"][1])},
    "the cat sees the dog .": {4: _WHO - {"cat"}},
    "the moon shines at night .": {4: {"night"}},
    "the girl reads her book .": {4: set(grammar.FRAMES["reads"][1])},
    "the fisherman sits on the bank of the river .": {5: {"bank"}, 8: set(grammar.WATERS)},
    "the duck swims to the lake bank .": {6: {"bank"}},
    "the grass grows on the muddy bank .": {6: {"bank"}},
    "the man borrows some money from the bank .": {7: {"bank"}},
    "the teacher opens an account at the bank .": {7: {"bank"}},
    "the clerk at the bank counts the coins .": {4: {"bank"}, 7: set(grammar.COUNTED)},
}


def corpus_sentences():
    with open(os.path.join(DATA, "corpus.txt")) as f:
        return [line.rstrip("\n").split("\t")[1].split() for line in f]


def attn_cmd(exe, cmd, args):
    p = subprocess.run([exe, cmd] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("attn %s %s failed (%d): %s" % (cmd, " ".join(args), p.returncode,
                                                            p.stderr.strip()))
    return p.stdout


def generated_tokens(exe, args):
    """attn generate ARGS --tokens -: the tokens of every position."""
    rows = list(csv.reader(io.StringIO(attn_cmd(exe, "generate", args + ["--tokens", "-"]))))
    assert rows[0] == ["pos", "token_id", "token"], rows[0]
    return [r[2] for r in rows[1:]]


def read_vocab(name):
    with open(os.path.join(MODELS, name, "vocab.txt")) as f:
        return [line.rstrip("\n") for line in f]


def test_examples(exe):
    corpus = corpus_sentences()
    targets = {}
    with open(os.path.join(DATA, "parallel.tsv")) as f:
        next(f)
        for line in f:
            _, src, tgt, _ = line.rstrip("\n").split("\t")
            targets[src] = tgt
    # the translator: from <s> alone, exactly the reference translation, then it stops at
    # </s> (not listed) although --steps allows far more
    for sent in EXAMPLES:
        ref = targets.get(sent)
        if ref is None:
            check(False, "tiny-translator: %r is not in data/parallel.tsv" % sent)
            continue
        steps = len(ref.split()) + 10
        toks = generated_tokens(exe, ["--config", config("tiny-translator"), "--source", sent,
                                      "--steps", str(steps)])
        got = " ".join(toks[1:])
        check(toks[:1] == ["<s>"] and got == ref,
              "tiny-translator: %r -> %r (reference %r; from %r, %d of --steps %d generated)"
              % (sent, got, ref, toks[:1], len(toks) - 1, steps))
    # the decoder: the next word and a greedy continuation the corpus supports
    pairs = set((a, b) for s in corpus for a, b in zip(s, s[1:]))
    for sent in EXAMPLES:
        words = sent.split()
        prompt = words[:-2]
        allowed = set(s[len(prompt)] for s in corpus if s[:len(prompt)] == prompt and len(s) > len(prompt))
        toks = generated_tokens(exe, ["--config", config("tiny-decoder"), "--text", " ".join(prompt),
                                      "--steps", "12"])
        cont = toks[len(prompt):]
        if "." in cont:
            cont = cont[:cont.index(".") + 1]
        whole = prompt + cont
        bad = [(a, b) for a, b in zip(whole, whole[1:]) if (a, b) not in pairs]
        check(cont and cont[0] in allowed and cont[-1] == "." and not bad,
              "tiny-decoder: %r -> %r (next word in the corpus: %s; word pairs not in the corpus: %s)"
              % (" ".join(prompt), " ".join(cont), ", ".join(sorted(allowed)) or "none",
                 ", ".join("%s %s" % p for p in bad) or "none"))
    # the encoder: masked words
    vocab = read_vocab("tiny-encoder")
    ix = {w: i for i, w in enumerate(vocab)}
    for sent, masks in EXAMPLES.items():
        words = sent.split()
        for pos, allowed in sorted(masks.items()):
            assert words[pos] in allowed, (sent, pos, allowed)
            ids = [ix.get(w, 0) for w in words]
            ids[pos] = ix["<mask>"]
            out = attn_cmd(exe, "run", ["--config", config("tiny-encoder"), "--ids",
                                        ",".join(map(str, ids)), "--top-k", "1", "--predictions", "-"])
            rows = [r for r in csv.reader(io.StringIO(out))][1:]
            pred = [r[4] for r in rows if int(r[1]) == pos and r[2] == "1"][0]
            masked = " ".join(words[:pos] + ["<mask>"] + words[pos + 1:])
            check(pred in allowed, "tiny-encoder: %s -> %r (the grammar allows %s)"
                  % (masked, pred, ", ".join(sorted(allowed))))
            # the same with the <mask> written in the text: one token, the same prediction
            out = attn_cmd(exe, "run", ["--config", config("tiny-encoder"), "--text", masked,
                                        "--top-k", "1", "--predictions", "-"])
            rows = [r for r in csv.reader(io.StringIO(out))][1:]
            by_text = [(r[1], r[4]) for r in rows]
            check(len(rows) == len(words) and by_text[pos] == (str(pos), pred),
                  "tiny-encoder: --text %r: %d positions, at %d %r (with --ids: %r)"
                  % (masked, len(rows), pos, by_text[pos][1] if pos < len(rows) else None, pred))
    # the encoder: the sense of "bank"
    rows = []
    with open(os.path.join(DATA, "senses.tsv")) as f:
        next(f)
        for line in f:
            split, sent, pos, sense = line.rstrip("\n").split("\t")
            rows.append((split, sent, int(pos), sense))
    train = [r for r in rows if r[0] == "train"]
    examples = [r for r in rows if r[1] in EXAMPLES]
    sents = [r[1] for r in train + examples]
    ctx = read_context(attn(exe, ["--config", config("tiny-encoder"), "--context", "-"],
                            "".join(s + "\n" for s in sents)))

    KNN = 5  # the sense of "bank" by its nearest neighbours, as in WSD with contextual vectors

    def unit(k, pos):
        v = ctx[k][1][pos]
        return v / np.linalg.norm(v)

    T = np.array([unit(i, p) for i, (_, _, p, _) in enumerate(train)])
    senses = np.array([sn for _, _, _, sn in train])
    for j, (_, sent, pos, sense) in enumerate(examples):
        mine = unit(len(train) + j, pos)
        other = "money" if sense == "river" else "river"
        keep = np.array([s != sent for _, s, _, _ in train])  # the example's own sentence left out
        sims = T[keep] @ mine
        near = senses[keep][np.argsort(-sims, kind="stable")[:KNN]]
        votes = int((near == sense).sum())
        cos = {}
        for name in ("river", "money"):
            c = T[keep & (senses == name)].mean(0)
            cos[name] = float(mine @ c / np.linalg.norm(c))
        check(votes > KNN // 2, "tiny-encoder: 'bank' in %r (%s): %d of its %d nearest training "
              "'bank' vectors are %s (mean vectors: cosine %.3f to %s, %.3f to %s)"
              % (sent, sense, votes, KNN, sense, cos[sense], sense, cos[other], other))


def test_vocabulary(exe):
    files = [os.path.join(ROOT, "README.md"), os.path.join(DATA, "README.md")]
    for d in (os.path.join(ROOT, "docs"),) + tuple(os.path.join(MODELS, m) for m in sorted(os.listdir(MODELS))):
        if os.path.isdir(d):
            files += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".md"))
    seen = 0
    for path in files:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = re.sub(r"\\\n\s*", " ", f.read())  # join continued command lines
        for line in text.split("\n"):
            m = re.search(r"--config models/(tiny-[a-z]+)/config\.json", line)
            if not m:
                continue
            vocab = set(read_vocab(m.group(1)))
            special = forward64.special_tokens(vocab)
            for flag, value in re.findall(r'--(text|source) "([^"]*)"', line):
                seen += 1
                unknown = [w for w in forward64.split_words(value, special=special) if w not in vocab]
                check(not unknown, "%s: %s --%s %r: %s" % (
                    os.path.relpath(path, ROOT), m.group(1), flag, value,
                    "unknown words: " + ", ".join(unknown) if unknown else "every word known"))
    check(seen > 0, "found %d example commands on the tiny models" % seen)


TESTS = {"maps": test_maps, "causal": test_causal, "alignment": test_alignment,
         "senses": test_senses, "accuracy": test_accuracy, "examples": test_examples,
         "vocabulary": test_vocabulary}


def find_exe(args):
    """The attn binary and the checks to run. The first argument is the binary
    unless it names a check; without it: $ATTN_EXE, else the most recently
    built build*/src/attn of this repository, else attn on PATH."""
    if args and args[0] not in TESTS:
        return args[0], args[1:]
    exe = os.environ.get("ATTN_EXE")
    if not exe:
        built = [p for p in glob.glob(os.path.join(ROOT, "build*", "src", "attn"))
                 if os.access(p, os.X_OK)]
        exe = max(built, key=os.path.getmtime) if built else shutil.which("attn")
    if exe:
        print("attn: %s" % exe)
    return exe, args


def main():
    exe, names = find_exe(sys.argv[1:])
    if not exe or not os.access(exe, os.X_OK):
        print("skip: no attn executable: give its path as the first argument, set ATTN_EXE, "
              "build it in %s/build (meson setup build && ninja -C build) or put attn on PATH"
              % ROOT)
        return 77
    names = names or list(TESTS)
    for name in names:
        try:
            TESTS[name](exe)
        except Exception as e:  # a crash of one check is a failure, the others still run
            check(False, "%s: %s: %s" % (name, type(e).__name__, e))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
