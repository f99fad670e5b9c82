#!/usr/bin/python3
"""One record per physical line in every CSV attn writes, and the same values back.

Usage: test_csv_lines.py ATTN_EXE SOURCE_ROOT (bundled | stories260K)

bundled: every model in models/, and "hostile", the weights of
models/tiny-decoder with a llama2.c tokenizer.bin written here whose pieces
hold every kind of byte a text column can meet (line breaks, tabs, CR, other
control bytes, DEL, backslashes, commas, quotes, leading and trailing blanks,
UTF-8, bytes that are not UTF-8).
stories260K: the llama2.c model of ../shared/models/stories260K (its start
token is the text "\\n<s>\\n"), imported with `attn import llama2c` into a
temporary folder; exit 77 (skip) when it is absent.

For each model, every CSV output: run --maps, --context, --top-k V
--predictions (every token of the vocabulary ranked after each position),
batch mode (--ids-input, two lines), run --text, and generate --maps and
--tokens; the inputs hold the special tokens (<unk>, <s>, </s>, <mask>, ... by
id). Each file, checked with the file's bytes and Python's csv module:
  - the number of physical lines is 1 + the number of records;
  - no control byte but the line ends, no DEL, and valid UTF-8;
  - every token field is exactly the escape of the vocabulary's text of its
    token id (tests/csv/csvtext.py, written from the documented rule), and
    unescaped gives that text back (by csvtext.py, and by codecs.escape_decode
    as README.md shows); the vocabulary is read here, from the bundled
    vocab.txt or the tokenizer.bin file, not from attn.
The same outputs with --raw-text: the csv module reads the raw texts back
exactly, the raw bytes are in the file, and the other columns equal the
escaped run's. --raw-text without a CSV output is a usage error (exit 2).
"""
import codecs
import csv
import io
import json
import os
import random
import re
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))
import csvtext  # noqa: E402
import realtest as rt  # noqa: E402  (Failures, run, describe)

SKIP = 77

MAPS_HEADER = ["input", "stack", "layer", "kind", "head", "query_pos", "query_token", "key_pos",
               "key_token", "weight"]
PRED_HEADER = ["input", "pos", "rank", "token_id", "token", "logit", "prob"]
TOKENS_HEADER = ["pos", "token_id", "token"]

# The pieces of the hostile tokenizer after <unk>, BOS and EOS (each unique, none empty).
HOSTILE = [b"\t", b"a\tb", b"\r", b"\r\n", b"x\r", b"\\", b"\\n", b"\\x41", b"\x1b[31m",
           b"\x7f", b"\x01", b"\x1f", b",", b'"', b'","', b" lead", b"trail ", b" ", b"  ",
           b"\t lead", b"caf\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xff", b"\xc3",
           b"\xc3(", b"\xed\xa0\x80", b"\xc0\x80", b"\xe2\x82", b"\xc2\x85", b"<0x0A>", b"<mask>",
           b"?", b"0", b"-1", b"end\n"]


# ---- vocabularies, read here ----

def word_vocab(path):
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [l[:-1] if l.endswith(b"\r") else l for l in lines]


def llama2c_vocab(path):
    data = open(path, "rb").read()
    pos, pieces = 4, []
    while pos < len(data):
        _, n = struct.unpack_from("<fi", data, pos)
        pieces.append(data[pos + 8:pos + 8 + n])
        pos += 8 + n
    return pieces


def write_llama2c_vocab(path, pieces):
    out = bytearray(struct.pack("<i", max(len(p) for p in pieces)))
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    open(path, "wb").write(bytes(out))


class Model:
    def __init__(self, name, config, vocab):
        self.name, self.config, self.vocab = name, config, vocab
        cfg = json.load(open(config))
        self.arch, self.lm_head = cfg["architecture"], cfg.get("lm_head", "none")
        self.V, self.max_len, self.D = cfg["vocab_size"], cfg["max_seq_len"], cfg["d_model"]
        self.ctx_header = ["input", "pos", "token"] + ["d%d" % i for i in range(self.D)]
        assert len(vocab) == self.V, "%s: %d vocabulary entries, vocab_size %d" % (
            name, len(vocab), self.V)
        # the inputs' must-haves: pieces that need an escape or RFC 4180 quotes, then
        # special tokens written <...> (of llama2.c's 256 byte pieces <0xNN>, two)
        def ids(pattern):
            return [i for i, t in enumerate(vocab) if re.search(pattern, t)]
        esc = [i for i, t in enumerate(vocab) if csvtext.escape(t).encode() != t]
        want = esc + ids(rb'[,"]') + ids(rb"^ | $")[:4] + ids(rb"^<[^<>]+>$")
        want = [i for i in want if not re.fullmatch(rb"<0x[0-9A-F]{2}>", vocab[i])]
        want += ids(rb"^<0x[0-9A-F]{2}>$")[10:12]
        self.special = sorted(set(want), key=want.index)[:28]


def random_ids(rng, model, n, must):
    """n ids: the ones in must, then random ones, shuffled."""
    ids = list(must[:n]) + [rng.randrange(model.V) for _ in range(max(0, n - len(must)))]
    rng.shuffle(ids)
    return ids


# ---- reading one CSV ----

def read(f, path, header, raw):
    """The rows of path (header checked) and its bytes; None when it does not read."""
    data = open(path, "rb").read()
    name = os.path.basename(path)
    if not f.check(data.endswith(b"\n"), "%s: ends with a line end" % name):
        return None, data
    text = data.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    ok = bool(rows) and rows[0] == header
    what = "" if ok else " %r, expected %r" % (rows[:1], header)
    if not f.check(ok, "%s: header%s" % (name, what)):
        return None, data
    if not raw:
        lines = data.count(b"\n")
        f.check(lines == len(rows), "%s: %d physical lines = 1 + %d records"
                % (name, lines, len(rows) - 1))
        bad = sorted({b for b in data if (b < 0x20 and b != 0x0a) or b == 0x7f})
        f.check(not bad, "%s: no control byte but the line ends (found %s)"
                % (name, ["0x%02x" % b for b in bad]))
        try:
            data.decode("utf-8")
            valid = True
        except UnicodeDecodeError as e:
            valid = str(e)
        f.check(valid is True, "%s: valid UTF-8 (%s)" % (name, valid))
    return rows[1:], data


def check_tokens(f, name, rows, fields, raw):
    """fields(row) -> [(column, expected bytes)]: every token field is the escape
    of its expected text and unescapes to it (raw: is the text)."""
    bad, count = [], 0
    for r in rows:
        for col, want in fields(r):
            count += 1
            got = r[col]
            if raw:
                ok = got == want.decode("utf-8", "surrogateescape")
            else:
                try:
                    ok = got == csvtext.escape(want) and csvtext.unescape(got) == want
                except ValueError:
                    ok = False
                # the way back README.md shows
                ok = ok and codecs.escape_decode(got.encode())[0] == want
            if not ok and len(bad) < 5:
                bad.append((got, want))
    f.check(count > 0 and not bad, "%s: %d token fields = the vocabulary's texts (%s)%s"
            % (name, count, "raw" if raw else "escaped", ", wrong: %r" % bad if bad else ""))


def maps_fields(model, main, source):
    """main[input], source[input]: the id lists of each input."""
    def fields(r):
        inp, stack, kind, qp, kp = int(r[0]), r[1], r[3], int(r[5]), int(r[7])
        enc = model.arch == "encoder-decoder" and stack == "encoder"
        q = source[inp] if enc else main[inp]
        k = source[inp] if enc or kind == "cross" else main[inp]
        return [(6, model.vocab[q[qp]]), (8, model.vocab[k[kp]])]
    return fields


def context_fields(model, main):
    return lambda r: [(2, model.vocab[main[int(r[0])][int(r[1])]])]


def id_fields(model, id_col, tok_col):
    return lambda r: [(tok_col, model.vocab[int(r[id_col])])]


def non_token(rows, token_cols):
    return [[v for i, v in enumerate(r) if i not in token_cols] for r in rows]


def check_pair(f, name, esc, raw, token_cols):
    """The raw run has the same records as the escaped one, but for the token columns."""
    if esc is None or raw is None:
        return
    f.check(len(esc) == len(raw) and non_token(esc, token_cols) == non_token(raw, token_cols),
            "%s: --raw-text: the same %d records, other columns equal" % (name, len(esc)))


def raw_bytes_present(f, name, data, model, ids):
    """Each id's piece that needs an escape is in the raw file as it is."""
    need = [model.vocab[i] for i in set(ids) if csvtext.escape(model.vocab[i]).encode() !=
            model.vocab[i] and b"\"" not in model.vocab[i]]
    missing = [p for p in need if p not in data]
    f.check(not missing, "%s: --raw-text keeps the raw bytes of %d pieces%s"
            % (name, len(need), (", missing %r" % missing) if missing else ""))


# ---- the runs of one model ----

def run_csvs(f, attn, model, tmp, rng):
    encdec = model.arch == "encoder-decoder"
    n = min(model.max_len, max(8, len(model.special) + 4))
    main = random_ids(rng, model, n, model.special)
    source = random_ids(rng, model, min(model.max_len, 7), list(reversed(model.special)))
    src_args = ["--source-ids", ",".join(map(str, source))] if encdec else []
    has_head = model.lm_head != "none"
    results = {}
    for raw in (False, True):
        tag = "%s%s" % (model.name, "-raw" if raw else "")
        flag = ["--raw-text"] if raw else []
        m, c, p = (os.path.join(tmp, "%s-%s.csv" % (tag, k)) for k in ("maps", "ctx", "pred"))
        cmd = [attn, "run", "--config", model.config, "--ids", ",".join(map(str, main)),
               "--maps", m, "--context", c] + src_args + flag
        if has_head:
            cmd += ["--top-k", str(model.V), "--predictions", p]
        proc = rt.run(cmd)
        if not f.check(proc.returncode == 0, "%s: run --maps --context%s %s"
                       % (tag, " --predictions" if has_head else "", rt.describe(proc))):
            continue
        rows, data = read(f, m, MAPS_HEADER, raw)
        if rows is not None:
            check_tokens(f, tag + " maps", rows, maps_fields(model, [main], [source]), raw)
            if raw:
                raw_bytes_present(f, tag + " maps", data, model, main + source)
        results[("maps", raw)] = rows
        rows, _ = read(f, c, model.ctx_header, raw)
        if rows is not None:
            check_tokens(f, tag + " context", rows, context_fields(model, [main]), raw)
        results[("ctx", raw)] = rows
        if has_head:
            rows, _ = read(f, p, PRED_HEADER, raw)
            if rows is not None:
                f.check(len(rows) == len(main) * model.V,
                        "%s predictions: %d rows = %d positions x V %d"
                        % (tag, len(rows), len(main), model.V))
                f.check({int(r[3]) for r in rows} == set(range(model.V)),
                        "%s predictions: every token id of the vocabulary appears" % tag)
                check_tokens(f, tag + " predictions", rows, id_fields(model, 3, 4), raw)
            results[("pred", raw)] = rows
    check_pair(f, model.name + " maps", results.get(("maps", False)),
               results.get(("maps", True)), {6, 8})
    check_pair(f, model.name + " context", results.get(("ctx", False)),
               results.get(("ctx", True)), {2})
    check_pair(f, model.name + " predictions", results.get(("pred", False)),
               results.get(("pred", True)), {4})

    # batch mode: two id lines (SOURCE<TAB>TARGET for an encoder-decoder)
    lines = [main, list(reversed(main))]
    srcs = [source, source[::-1]]
    text = "".join((",".join(map(str, s)) + "\t" if encdec else "") + ",".join(map(str, l)) + "\n"
                   for s, l in zip(srcs, lines))
    m = os.path.join(tmp, model.name + "-batch-maps.csv")
    c = os.path.join(tmp, model.name + "-batch-ctx.csv")
    proc = rt.run([attn, "run", "--config", model.config, "--ids-input", "--maps", m,
                   "--context", c], stdin=text.encode())
    if f.check(proc.returncode == 0, "%s: batch --ids-input --maps --context %s"
               % (model.name, rt.describe(proc))):
        rows, _ = read(f, m, MAPS_HEADER, False)
        if rows is not None:
            f.check({r[0] for r in rows} == {"0", "1"}, "%s batch maps: inputs 0 and 1"
                    % model.name)
            check_tokens(f, model.name + " batch maps", rows, maps_fields(model, lines, srcs),
                         False)
        rows, _ = read(f, c, model.ctx_header, False)
        if rows is not None:
            check_tokens(f, model.name + " batch context", rows, context_fields(model, lines),
                         False)

    # text: the tokenizer's own ids (start tokens and all); every field a vocabulary text
    words = [w.decode("utf-8", "replace") for w in model.vocab if re.fullmatch(rb"[a-z]+", w)]
    prompt = " ".join(words[:3]) if words else "Once upon a time"
    t_src = ["--source", prompt] if encdec else []
    m = os.path.join(tmp, model.name + "-text-maps.csv")
    proc = rt.run([attn, "run", "--config", model.config, "--text", prompt, "--maps", m] + t_src)
    if f.check(proc.returncode == 0, "%s: run --text %r --maps %s"
               % (model.name, prompt, rt.describe(proc))):
        rows, _ = read(f, m, MAPS_HEADER, False)
        if rows is not None:
            known = {csvtext.escape(t) for t in model.vocab}
            odd = [r[c] for r in rows for c in (6, 8) if r[c] not in known]
            f.check(not odd, "%s text maps: every token field is an escaped vocabulary text%s"
                    % (model.name, " (not: %r)" % odd[:5] if odd else ""))

    if model.arch != "encoder" and has_head:
        run_generate(f, attn, model, tmp, main, source, src_args)


def run_generate(f, attn, model, tmp, main, source, src_args):
    steps = 6
    prompt = main[:max(1, min(len(main), model.max_len - steps - 1))]
    results = {}
    for raw in (False, True):
        tag = "%s%s generate" % (model.name, "-raw" if raw else "")
        m = os.path.join(tmp, "%s-gen-maps%s.csv" % (model.name, "-raw" if raw else ""))
        t = os.path.join(tmp, "%s-gen-tokens%s.csv" % (model.name, "-raw" if raw else ""))
        proc = rt.run([attn, "generate", "--config", model.config, "--ids",
                    ",".join(map(str, prompt)), "--steps", str(steps), "--maps", m, "--tokens", t]
                   + src_args + (["--raw-text"] if raw else []))
        if not f.check(proc.returncode == 0, "%s --maps --tokens %s" % (tag, rt.describe(proc))):
            continue
        rows, data = read(f, t, TOKENS_HEADER, raw)
        if rows is None:
            continue
        seq = [int(r[1]) for r in rows]
        f.check(seq[:len(prompt)] == prompt and [int(r[0]) for r in rows] == list(range(len(seq))),
                "%s tokens: positions 0..%d, the prompt first" % (tag, len(seq) - 1))
        check_tokens(f, tag + " tokens", rows, id_fields(model, 1, 2), raw)
        if raw:
            raw_bytes_present(f, tag + " tokens", data, model, seq)
        results[("tokens", raw)] = rows
        rows, _ = read(f, m, MAPS_HEADER, raw)
        if rows is not None:
            check_tokens(f, tag + " maps", rows, maps_fields(model, [seq], [source]), raw)
        results[("maps", raw)] = rows
    check_pair(f, model.name + " generate tokens", results.get(("tokens", False)),
               results.get(("tokens", True)), {2})
    check_pair(f, model.name + " generate maps", results.get(("maps", False)),
               results.get(("maps", True)), {6, 8})


def embeddings_labels(f, attn, model, tmp, rng):
    """Vectors as input: the labels are the positions, plain numbers."""
    path = os.path.join(tmp, "emb.csv")
    with open(path, "w") as out:
        for _ in range(5):
            out.write(",".join("%.6f" % rng.uniform(-1, 1) for _ in range(model.D)) + "\n")
    c = os.path.join(tmp, "emb-ctx.csv")
    proc = rt.run([attn, "run", "--config", model.config, "--embeddings", path, "--context", c])
    if f.check(proc.returncode == 0, "%s: run --embeddings --context %s"
               % (model.name, rt.describe(proc))):
        rows, _ = read(f, c, model.ctx_header, False)
        if rows is not None:
            f.check([r[2] for r in rows] == [str(i) for i in range(5)],
                    "%s embeddings context: the token column holds the positions 0..4" % model.name)


def raw_flag_refused(f, attn, model):
    for cmd in (["run", "--ids", "1,2", "--raw-text"],
                ["generate", "--ids", "1", "--steps", "1", "--raw-text"]):
        if cmd[0] == "generate" and (model.arch == "encoder" or model.lm_head == "none"):
            continue
        proc = rt.run([attn, cmd[0], "--config", model.config] + cmd[1:])
        err = proc.stderr.decode("utf-8", "replace")
        f.check(proc.returncode == 2 and err.startswith("attn: --raw-text needs a CSV output")
                and err.count("\n") == 1 and not proc.stdout,
                "%s: attn %s --raw-text without a CSV output: usage error (%s)"
                % (model.name, cmd[0], rt.describe(proc)))


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("bundled", "stories260K"):
        print(__doc__)
        return 2
    attn, root, group = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    f = rt.Failures()
    rng = random.Random(20261202)
    tmp = tempfile.mkdtemp(prefix="attn-csv-lines-")
    try:
        models = []
        if group == "bundled":
            for name in sorted(os.listdir(os.path.join(root, "models"))):
                d = os.path.join(root, "models", name)
                if os.path.isfile(os.path.join(d, "config.json")):
                    models.append(Model(name, os.path.join(d, "config.json"),
                                        word_vocab(os.path.join(d, "vocab.txt"))))
            # the hostile vocabulary on tiny-decoder's weights
            src = os.path.join(root, "models", "tiny-decoder")
            hd = os.path.join(tmp, "hostile")
            os.mkdir(hd)
            shutil.copy(os.path.join(src, "model.safetensors"), hd)
            cfg = json.load(open(os.path.join(src, "config.json")))
            pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + HOSTILE
            pieces += [b"w%d" % i for i in range(cfg["vocab_size"] - len(pieces))]
            write_llama2c_vocab(os.path.join(hd, "tokenizer.bin"), pieces)
            cfg["tokenizer"] = {"type": "llama2c", "path": "tokenizer.bin"}
            json.dump(cfg, open(os.path.join(hd, "config.json"), "w"))
            models.append(Model("hostile", os.path.join(hd, "config.json"), pieces))
        else:
            sd = os.path.join(root, "..", "shared", "models", "stories260K")
            ckpt, tokf = os.path.join(sd, "stories260K.bin"), os.path.join(sd, "tok512.bin")
            if not (os.path.isfile(ckpt) and os.path.isfile(tokf)):
                print("skip: %s or %s is absent (put shared/ beside the clone)" % (ckpt, tokf))
                return SKIP
            out = os.path.join(tmp, "stories260K")
            proc = rt.run([attn, "import", "llama2c", "--checkpoint", ckpt, "--tokenizer", tokf,
                        "--out", out])
            if not f.check(proc.returncode == 0, "attn import llama2c %s" % rt.describe(proc)):
                return f.exit()
            models.append(Model("stories260K", os.path.join(out, "config.json"),
                                llama2c_vocab(tokf)))
        for model in models:
            print("== %s (%s, %d special tokens)" % (model.name, model.arch, len(model.special)))
            run_csvs(f, attn, model, tmp, rng)
            raw_flag_refused(f, attn, model)
        if group == "bundled":
            embeddings_labels(f, attn, next(m for m in models if m.name == "tiny-decoder"), tmp,
                              rng)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f.exit()


if __name__ == "__main__":
    sys.exit(main())
