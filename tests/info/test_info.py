#!/usr/bin/python3
"""attn info and attn tokenize against what Python reads itself.

info: the parameter count, the bytes per dtype and the tensor list are
computed here from the safetensors header (read with struct and json, not
through attn), for every bundled model, a copy of one with F16 and BF16
tensors, and the shared real model (stories260K imported, when present);
the config's sizes are compared with config.json (defaults applied here).
--json must parse with json.loads; the readable form must show the same.

tokenize: the ids are compared with a word tokenizer written here from the
rules of docs/model-format.md (whitespace separates words, each ASCII
punctuation character is a token, <...> vocabulary entries match whole,
lowercase, unk, bos/eos) and, for the llama2c tokenizer, with the
reference of tests/reference/llama2c_encode.py; --ids of the output decodes
back to a text that encodes to the same ids; CSV and JSON lines parse; batch
mode numbers the lines and skips bad ones; bad flags give one line, exit 2.

Usage: test_info.py ATTN_EXE SOURCE_ROOT
"""
import csv
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ATTN = sys.argv[1]
ROOT = sys.argv[2]
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama2c_encode  # noqa: E402
from checklist import Checklist  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "models", "stories260K")
BUNDLED = ["seed-attention", "tiny-decoder", "tiny-encoder", "tiny-translator"]
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

check = Checklist()


def run(args, stdin=None):
    p = subprocess.run([ATTN] + args, input=stdin, capture_output=True)
    return p.returncode, p.stdout, p.stderr


# ---- the safetensors header, read here ----

def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def expect_from_header(h):
    """Parameters, bytes per dtype and [(name, dtype, shape)] in file order
    (the order of the data offsets)."""
    items = sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0])
    params = 0
    per_dtype = {}
    tensors = []
    for name, e in items:
        numel = math.prod(e["shape"])
        params += numel
        per_dtype[e["dtype"]] = per_dtype.get(e["dtype"], 0) + numel * DTYPE_BYTES[e["dtype"]]
        tensors.append((name, e["dtype"], list(e["shape"])))
    return params, per_dtype, tensors


def short(n):
    """1234 -> 1.2K, 124439808 -> 124.4M: one decimal, the unit whose value
    stays below 1000 once rounded."""
    if n < 1000:
        return str(n)
    for i, unit in enumerate("KMBT"):
        v = n / 1000 ** (i + 1)
        if round(v, 1) < 1000 or unit == "T":
            return "%.1f%s" % (v, unit)


def check_info(config_path, label):
    cfg_file = config_path if os.path.isfile(config_path) else os.path.join(config_path,
                                                                            "config.json")
    cfg = json.load(open(cfg_file))
    folder = os.path.dirname(cfg_file)
    h = header(os.path.join(folder, cfg["weights"]))
    params, per_dtype, tensors = expect_from_header(h)
    rc, out, err = run(["info", "--config", config_path, "--json"])
    check(rc == 0 and not err, "%s: info --json exit %d %s" % (label, rc, err))
    if rc:
        return
    j = json.loads(out)
    check(j["parameters"] == params,
          "%s: parameters %s, header sum %d" % (label, j["parameters"], params))
    check(j["parameters_short"] == short(params),
          "%s: short %s, expected %s" % (label, j["parameters_short"], short(params)))
    check(j["weights_bytes"] == per_dtype,
          "%s: weights_bytes %s, expected %s" % (label, j["weights_bytes"], per_dtype))
    check(j["weights_bytes_total"] == sum(per_dtype.values()), "%s: total bytes" % label)
    got = [(t["name"], t["dtype"], t["shape"]) for t in j["tensors"]]
    check(got == tensors, "%s: tensor list differs from the header" % label)
    for t in j["tensors"]:
        check(t["elements"] == math.prod(t["shape"]) and
              t["bytes"] == t["elements"] * DTYPE_BYTES[t["dtype"]], "%s: %s sizes" % (label, t))
    # the config's sizes, with the defaults of docs/model-format.md
    want = {k: cfg[k] for k in ("architecture", "vocab_size", "d_model", "n_heads", "d_ff",
                                "max_seq_len", "n_layers", "positional", "norm", "mlp",
                                "bias", "lm_head") if k in cfg}
    want["n_kv_heads"] = cfg.get("n_kv_heads", cfg["n_heads"])
    want["head_dim"] = cfg.get("head_dim", cfg["d_model"] // cfg["n_heads"])
    want["n_encoder_layers"] = cfg.get("n_encoder_layers", 0)
    want["norm_position"] = cfg.get("norm_position", "pre")
    for k, v in want.items():
        check(j.get(k) == v, "%s: %s is %r, config says %r" % (label, k, j.get(k), v))
    tok = cfg["tokenizer"]
    check(j["tokenizer"]["type"] == tok["type"], "%s: tokenizer type" % label)
    if tok["type"] == "word":
        n = len(open(os.path.join(folder, tok["vocab"]), encoding="utf-8").read().split("\n"))
        n -= open(os.path.join(folder, tok["vocab"]), "rb").read().endswith(b"\n")
        check(j["tokenizer"]["vocab_size"] == n,
              "%s: tokenizer size %s, vocab has %d" % (label, j["tokenizer"]["vocab_size"], n))
    else:
        check(j["tokenizer"]["vocab_size"] == cfg["vocab_size"], "%s: llama2c size" % label)
    # the readable form shows the same numbers and every tensor
    rc, out, err = run(["info", "--config", config_path])
    text = out.decode()
    check(rc == 0, "%s: info exit %d" % (label, rc))
    check("%d (%s)" % (params, short(params)) in text, "%s: readable parameters" % label)
    for name, dt, shape in tensors:
        row = [ln.split() for ln in text.splitlines() if ln.split()[:1] == [name]]
        check(len(row) == 1 and row[0][1] == dt and
              row[0][-1] == str(math.prod(shape)), "%s: readable row of %s" % (label, name))
    for dt, b in per_dtype.items():
        check(any(ln.split()[:2] == [dt, str(b)] for ln in text.splitlines()),
              "%s: readable bytes of %s" % (label, dt))


# ---- a copy of tiny-decoder with F16 and BF16 tensors ----

def f32_to_bf16(x):
    return [struct.unpack("<I", struct.pack("<f", v))[0] >> 16 for v in x]


def write_mixed(src, dst):
    """tiny-decoder with tok_embed as F16 and every bias as BF16 (truncated
    values: what matters here is the header)."""
    shutil.copytree(src, dst)
    h = header(os.path.join(src, "model.safetensors"))
    raw = open(os.path.join(src, "model.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    base = 8 + n
    out_h, blobs, off = {}, [], 0
    for name, e in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, end = e["data_offsets"]
        vals = struct.unpack("<%df" % ((end - b) // 4), raw[base + b:base + end])
        if name == "tok_embed":
            dt, data = "F16", struct.pack("<%de" % len(vals), *vals)
        elif name.endswith(".bias"):
            dt, data = "BF16", struct.pack("<%dH" % len(vals), *f32_to_bf16(vals))
        else:
            dt, data = "F32", raw[base + b:base + end]
        out_h[name] = {"dtype": dt, "shape": e["shape"], "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hj = json.dumps(out_h).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


# ---- tokenize ----

def word_encode(folder, cfg, text):
    """The word tokenizer's rules (docs/model-format.md), written here."""
    tok = cfg["tokenizer"]
    vocab = open(os.path.join(folder, tok["vocab"]), encoding="utf-8").read().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    index = {w: i for i, w in enumerate(vocab)}
    special = sorted((w for w in vocab if len(w) > 2 and w[0] == "<" and w[-1] == ">" and
                      not any(c in "<>" or c.isspace() for c in w[1:-1])), key=len, reverse=True)
    pieces, word, i = [], "", 0

    def flush():
        nonlocal word
        if word:
            pieces.append(("w", word))
        word = ""
    while i < len(text):
        sp = next((s for s in special if text.startswith(s, i)), None)
        if sp:
            flush()
            pieces.append(("s", sp))
            i += len(sp)
            continue
        c = text[i]
        if c in " \t\n\v\f\r":
            flush()
        elif c in PUNCT:
            flush()
            pieces.append(("w", c))
        else:
            word += c
        i += 1
    flush()
    ids = []
    for kind, p in pieces:
        if kind == "w" and tok.get("lowercase"):
            p = p.lower()
        ids.append(index.get(p, index[tok["unk"]]))
    if tok.get("bos"):
        ids.insert(0, index[tok["bos"]])
    if tok.get("eos") and tok.get("add_eos", True):
        ids.append(index[tok["eos"]])
    return ids


TEXTS = ["the cat sat on the mat", "The Dog, it RAN!", "a  <mask> of  words.", "zzqx unknown",
         "x", "(the) [account] {boat}"]


def check_tokenize_word(name):
    folder = os.path.join(ROOT, "models", name)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    for text in TEXTS:
        want = word_encode(folder, cfg, text)
        rc, out, err = run(["tokenize", "--config", folder, "--text", text, "--format", "jsonl"])
        check(rc == 0, "%s %r: exit %d %s" % (name, text, rc, err))
        j = json.loads(out)
        check(j["ids"] == want, "%s %r: ids %s, reference %s" % (name, text, j["ids"], want))
        check(j["text"] == text and j["input"] == 0, "%s %r: text/input" % (name, text))
        check_roundtrip(folder, name, j["ids"])
        # CSV: the same ids and tokens, one row per position
        rc, out, err = run(["tokenize", "--config", folder, "--text", text, "--format", "csv"])
        rows = list(csv.reader(io.StringIO(out.decode())))
        check(rows[0] == ["input", "pos", "id", "token"], "%s: CSV header %s" % (name, rows[0]))
        check([int(r[2]) for r in rows[1:]] == want and
              [int(r[1]) for r in rows[1:]] == list(range(len(want))) and
              [r[3] for r in rows[1:]] == j["tokens"], "%s %r: CSV rows" % (name, text))
        # readable: one row per token, pos id token
        rc, out, err = run(["tokenize", "--config", folder, "--text", text])
        lines = out.decode().splitlines()
        check(lines[0] == "%d token%s" % (len(want), "" if len(want) == 1 else "s") and
              [int(ln.split()[1]) for ln in lines[2:]] == want, "%s %r: readable" % (name, text))


def check_roundtrip(folder, label, ids):
    """--ids decodes; the decoded text encodes back to the same ids."""
    arg = ",".join(map(str, ids))
    rc, out, err = run(["tokenize", "--config", folder, "--ids", arg])
    check(rc == 0, "%s: --ids %s exit %d %s" % (label, arg, rc, err))
    text = out.decode("utf-8", "surrogateescape")
    check(text.endswith("\n"), "%s: decoded text ends its line" % label)
    text = text[:-1]
    rc, out, err = run(["tokenize", "--config", folder, "--text", text, "--format", "jsonl"])
    back = json.loads(out)["ids"] if rc == 0 else None
    if "<unk>" not in text:
        check(back == ids, "%s: %s decodes to %r, which encodes to %s" % (label, arg, text, back))
    rc, out, err = run(["tokenize", "--config", folder, "--ids", arg, "--format", "jsonl"])
    j = json.loads(out)
    check(j["ids"] == ids and j["text"] == text, "%s: --ids jsonl %s" % (label, j))


def check_tokenize_llama2c(folder):
    tok = llama2c_encode.load(os.path.join(folder, "tokenizer.bin"))
    for text in ["Once upon a time", "Hello, World!", "tabs\tand spaces  here", "café 🙂", ""]:
        want = llama2c_encode.encode(tok, text.encode())
        rc, out, err = run(["tokenize", "--config", folder, "--text", text, "--format", "jsonl"])
        got = json.loads(out)["ids"] if rc == 0 else None
        check(got == want, "llama2c %r: ids %s, reference %s" % (text, got, want))
        if want:
            check_roundtrip(folder, "llama2c %r" % text, want)


def check_batch(folder):
    lines = b"the cat\nthe \x00dog\nand the dog\n" + b"x" * (1 << 20 + 1) + b"\nlast one"
    rc, out, err = run(["tokenize", "--config", folder, "--format", "jsonl"], stdin=lines)
    objs = [json.loads(ln) for ln in out.decode().splitlines()]
    check(rc == 1, "batch with bad lines: exit %d" % rc)
    check([o["input"] for o in objs] == [0, 2, 4], "batch inputs %s" % [o["input"] for o in objs])
    errs = err.decode().splitlines()
    check(len(errs) == 2 and "line 2" in errs[0] and "line 4" in errs[1], "batch errors %s" % errs)
    # csv: the input column is the line's index
    rc, out, err = run(["tokenize", "--config", folder, "--format", "csv"],
                       stdin=b"the cat\n\nthe dog\r\n")
    rows = list(csv.reader(io.StringIO(out.decode())))
    check(rc == 0 and [r[0] for r in rows[1:]] == ["0", "0", "2", "2"], "batch CSV %s" % rows)
    # --ids-input: each line is ids
    rc, out, err = run(["tokenize", "--config", folder, "--ids-input", "--format", "jsonl"],
                       stdin=b"3,17\n1,zz\n42\n")
    objs = [json.loads(ln) for ln in out.decode().splitlines()]
    check(rc == 1 and [o["ids"] for o in objs] == [[3, 17], [42]] and
          "line 2" in err.decode(), "batch --ids-input: %d %s %s" % (rc, objs, err))


def check_usage_errors():
    m = os.path.join(ROOT, "models", "tiny-decoder")
    cases = [
        ["tokenize"],
        ["tokenize", "--config", m, "--text", "a", "--ids", "1"],
        ["tokenize", "--config", m, "--ids", "1,x"],
        ["tokenize", "--config", m, "--ids", "100000"],
        ["tokenize", "--config", m, "--ids", "-1"],
        ["tokenize", "--config", m, "--text", "a", "--format", "xml"],
        ["tokenize", "--config", m, "--text", "a", "--ids-input"],
        ["tokenize", "--config", m, "--text", "a", "--bogus"],
        ["tokenize", "--config", m, "--text", "a", "extra"],
        ["tokenize", "--config", m, "--text"],
        ["info"],
        ["info", "--config", m, "--bogus"],
        ["info", "--config", m, "extra"],
        ["info", "--config", m, "--config", m],
    ]
    for args in cases:
        rc, out, err = run(args, stdin=b"")
        lines = err.decode().splitlines()
        check(rc == 2 and out == b"" and len(lines) == 1 and lines[0].startswith("attn: "),
              "%s: exit %d, stdout %r, stderr %r" % (args[1:], rc, out[:80], err))
    rc, out, err = run(["info", "--config", os.path.join(ROOT, "no-such-model")])
    check(rc == 1 and out == b"" and len(err.decode().splitlines()) == 1, "info: missing model")


def main():
    for name in BUNDLED:
        check_info(os.path.join(ROOT, "models", name), name)
        check_info(os.path.join(ROOT, "models", name, "config.json"), name + " (file)")
        check_tokenize_word(name)
    with tempfile.TemporaryDirectory() as tmp:
        mixed = os.path.join(tmp, "mixed")
        write_mixed(os.path.join(ROOT, "models", "tiny-decoder"), mixed)
        check_info(mixed, "mixed dtypes")
        j = json.loads(run(["info", "--config", mixed, "--json"])[1])
        check(set(j["weights_bytes"]) == {"F32", "F16", "BF16"}, "mixed: three dtypes listed")
        check_batch(os.path.join(ROOT, "models", "tiny-decoder"))
        if os.path.exists(os.path.join(SHARED, "stories260K.bin")):
            real = os.path.join(tmp, "stories260K")
            rc, out, err = run(["import", "llama2c", "--checkpoint",
                                os.path.join(SHARED, "stories260K.bin"), "--tokenizer",
                                os.path.join(SHARED, "tok512.bin"), "--out", real])
            check(rc == 0, "import stories260K: %s" % err)
            check_info(real, "stories260K")
            check_tokenize_llama2c(real)
        else:
            print("skip: %s is absent" % SHARED)
    check_usage_errors()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
