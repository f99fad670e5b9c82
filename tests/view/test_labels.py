#!/usr/bin/python3
"""Token labels read well (issue 13 item 2):

    /usr/bin/python3 test_labels.py ATTN_EXE SOURCE_ROOT

- a tiny gpt2-tokenized decoder (hand-made byte-level vocab.json and
  merges.txt, random weights): in the terminal view of `attn run --text` a
  label's leading spaces are shown as '·' (" cat" is "·cat"), never as
  blanks; in the maps CSV the same labels keep the space and are quoted as
  RFC 4180 says (a field with a leading space is in double quotes), and read
  back by Python's csv module they are the decoded pieces;
- the bundled word-tokenized tiny-decoder: its labels have no spaces, so the
  view shows no '·' in a label and the CSV quotes none of them;
- stories260K (llama2c, ../shared/models, when present): its pieces start
  with a space too (" upon"), shown as '·upon' in the view and kept in the CSV.

Exit status: 0 pass, 1 fail.
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "tokenizer"))
from bpe_files import byte_alphabet  # noqa: E402

FAILS = []


def check(ok, what):
    if not ok:
        FAILS.append(what)
        print("FAIL:", what)
    return ok


def gpt2_model(tmp):
    import attn_format
    import make_models
    alpha = byte_alphabet()
    vocab = [alpha[b] for b in range(256)]
    merges = []
    for word in (" cat", " sat", " the", " mat"):
        cur = alpha[ord(word[0])]
        for ch in word[1:]:
            merges.append((cur, alpha[ord(ch)]))
            cur = cur + alpha[ord(ch)]
            if cur not in vocab:
                vocab.append(cur)
    merges = list(dict.fromkeys(merges))
    folder = os.path.join(tmp, "gpt2")
    os.makedirs(folder)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join("%s %s\n" % m for m in merges))
    cfg = dict(architecture="decoder", vocab_size=len(vocab), d_model=16, n_heads=2, d_ff=32,
               n_layers=1, max_seq_len=64, positional="learned", norm="layernorm",
               norm_position="pre", mlp="gelu", bias=True, lm_head="tied",
               tokenizer={"type": "gpt2", "vocab": "vocab.json", "merges": "merges.txt"})
    return attn_format.write_model(folder, cfg, make_models.random_tensors(cfg, 5))


def run(exe, args):
    return subprocess.run([exe] + args, capture_output=True, timeout=300,
                          env=dict(os.environ, COLUMNS="100", NO_COLOR="1"))


def labels_of(exe, cfg, text):
    """(view, raw CSV, the key_token labels read back in order of the first map's row 0..)"""
    v = run(exe, ["run", "--config", cfg, "--text", text, "--layers", "0", "--heads", "0"])
    check(v.returncode == 0, "view of %s: %s" % (cfg, v.stderr.decode(errors="replace")))
    m = run(exe, ["run", "--config", cfg, "--text", text, "--maps", "-"])
    check(m.returncode == 0, "maps of %s: %s" % (cfg, m.stderr.decode(errors="replace")))
    raw = m.stdout.decode("utf-8")
    tokens = {}
    for row in csv.DictReader(io.StringIO(raw)):
        tokens[int(row["key_pos"])] = row["key_token"]
    return v.stdout.decode("utf-8"), raw, [tokens[k] for k in sorted(tokens)]


def spaced(exe, what, cfg, text, want_pieces):
    view, raw, pieces = labels_of(exe, cfg, text)
    for p in want_pieces:
        check(p in pieces, "%s: CSV labels %r lack %r" % (what, pieces[:12], p))
    lead = [(i, p) for i, p in enumerate(pieces) if p.startswith(" ") and p.strip()]
    check(lead, "%s: no label with a leading space in %r" % (what, pieces[:12]))
    for i, p in lead:
        check('"%s"' % p.replace('"', '""') in raw, "%s: %r not quoted in the CSV" % (what, p))
        shown = "·" * (len(p) - len(p.lstrip(" "))) + p.lstrip(" ")
        # the input's token line "  tokens (N positions): 0:t 1:h 2:e 3:·cat"
        check(" %d:%s" % (i, shown) in view, "%s: %r not shown as %r in the view" % (what, p, shown))
        check(" %d:%s" % (i, p) not in view, "%s: %r shown with its blank" % (what, p))
    lead = [p for _, p in lead]
    print("%s: %d labels, %d with a leading space, e.g. %r shown as %r" %
          (what, len(pieces), len(lead), lead[0] if lead else None,
           ("·" + lead[0][1:]) if lead else None))


def main(argv):
    exe, root = argv[1], argv[2]
    with tempfile.TemporaryDirectory(prefix="attn-labels-") as tmp:
        cfg = gpt2_model(tmp)
        spaced(exe, "gpt2", cfg, "the cat sat on the mat", [" cat", " sat", " the", " mat"])
        # a word model: no label has a space, the CSV quotes none, the view shows no '·'
        word = os.path.join(root, "models", "tiny-decoder", "config.json")
        view, raw, pieces = labels_of(exe, word, "the cat sat on the mat")
        check(pieces and not any(" " in p for p in pieces), "word labels %r" % pieces)
        check('"' not in raw, "the word model's CSV quotes a label")
        body = view.replace("  · hidden", "")
        check(not any(("·" + p) in body for p in pieces), "word view shows '·' before a label")
        print("word: %d labels, none with a space, none quoted" % len(pieces))
        d = os.path.join(root, "..", "shared", "models", "stories260K")
        ckpt, tok = os.path.join(d, "stories260K.bin"), os.path.join(d, "tok512.bin")
        if os.path.exists(ckpt) and os.path.exists(tok):
            out = os.path.join(tmp, "stories260K")
            p = run(exe, ["import", "llama2c", "--checkpoint", ckpt, "--tokenizer", tok,
                          "--out", out])
            if check(p.returncode == 0, "attn import: %s" % p.stderr):
                spaced(exe, "llama2c", os.path.join(out, "config.json"),
                       "Once upon a time", [" upon"])
        else:
            print("stories260K not found: the llama2c part is left out")
    print("%d failures" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
