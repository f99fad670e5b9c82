#!/usr/bin/python3
"""tools/convert_hf.py copies GPT-2's tokenizer files next to the converted
model, so that it runs from text at once (issue 13 item 3).

    /usr/bin/python3 test_convert_tokenizer.py ATTN

A synthetic Hugging Face GPT-2 folder (config.json, model.safetensors with
random weights under Hugging Face's names, a byte-level vocab.json of the 256
byte tokens and 8 merged ones, merges.txt, and the same as a tokenizer.json):
  1. SRC_DIR with vocab.json + merges.txt: they are copied, tokenizer type
     gpt2; `attn tokenize --text` gives the ids worked out by hand from the
     merge ranks, `attn run --text` runs;
  2. SRC_DIR with only tokenizer.json: copied, type hf, the same ids;
  3. --tokenizer-json / --vocab + --merges name the files explicitly;
     --no-tokenizer writes none; --merges without a vocab.json is refused;
  4. a synthetic Hugging Face Llama folder with a Llama-style tokenizer.json
     (the 256 <0xNN> tokens, 5 merges): copied, type hf, the ids worked out by
     hand (BOS first), `attn run --text` runs;
  5. malformed vocab.json, merges.txt and tokenizer.json files: attn tokenize
     and attn run exit 1 with one line that names the file and the place.
Exit status: 0 pass, 1 fail.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, HERE)
import attn_format  # noqa: E402
from bpe_files import byte_alphabet, tokenizer_json  # noqa: E402

CONVERT = os.path.join(ROOT, "tools", "convert_hf.py")
FAILS = []
EXTRA = ["he", "ll", "hell", " w", "hello", "bc", "aa", "aaaa"]
MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), (" ", "w"), ("hell", "o"), ("b", "c"),
          ("a", "a"), ("aa", "aa")]
# by hand: "hello" -> he ll (ranks 0, 1) -> hell (2) -> hello (4) = 260;
# " world" -> " w" (3) = 259 then o r l d; "abc" -> a bc (5) = 261
TEXT = "hello world abc"
WANT = [260, 259, ord("o"), ord("r"), ord("l"), ord("d"), ord(" "), ord("a"), 261]


def check(ok, what):
    if not ok:
        FAILS.append(what)
        print("FAIL:", what)
    return ok


def spell(a, s):
    return "".join(a[b] for b in s.encode())


def hf_folder(d):
    os.makedirs(d)
    a = byte_alphabet()
    vocab = {a[b]: b for b in range(256)}
    for i, t in enumerate(EXTRA):
        vocab[spell(a, t)] = 256 + i
    merges = ["%s %s" % (spell(a, x), spell(a, y)) for x, y in MERGES]
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tj = tokenizer_json(vocab, merges)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    V, D, P, F = 264, 16, 32, 64
    hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V,
          "n_positions": P, "n_embd": D, "n_layer": 1, "n_head": 2, "n_inner": None,
          "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf, f)
    g = np.random.default_rng(7)
    r = lambda *s: g.standard_normal(s) * 0.3  # noqa: E731
    sd = {"transformer.wte.weight": r(V, D), "transformer.wpe.weight": r(P, D),
          "transformer.ln_f.weight": 1 + r(D), "transformer.ln_f.bias": r(D)}
    p = "transformer.h.0."
    sd.update({p + "ln_1.weight": 1 + r(D), p + "ln_1.bias": r(D),
               p + "attn.c_attn.weight": r(D, 3 * D), p + "attn.c_attn.bias": r(3 * D),
               p + "attn.c_proj.weight": r(D, D), p + "attn.c_proj.bias": r(D),
               p + "ln_2.weight": 1 + r(D), p + "ln_2.bias": r(D),
               p + "mlp.c_fc.weight": r(D, F), p + "mlp.c_fc.bias": r(F),
               p + "mlp.c_proj.weight": r(F, D), p + "mlp.c_proj.bias": r(D)})
    attn_format.write_safetensors(os.path.join(d, "model.safetensors"), sd)
    return d


M = "\u2581"
# Llama: <unk> <s> </s>, the 256 bytes, then these; merges by rank
LL_EXTRA = [M, "a", "b", "c", M + "a", "ab", M + "ab", "bc"]
LL_MERGES = [M + " a", "b c", "a b", M + "a b"]
# by hand: "ab abc" -> "▁ab▁abc": ▁+a twice (rank 0), then b+c (1) at the end,
# then ▁a+b (3) at the start: ▁ab ▁a bc; BOS first
LL_TEXT = "ab abc"
LL_WANT = [1, 265, 263, 266]


def llama_folder(d):
    os.makedirs(d)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for t in LL_EXTRA:
        vocab[t] = len(vocab)
    special = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
          "normalizer": {"type": "Sequence", "normalizers": [
              {"type": "Prepend", "prepend": M},
              {"type": "Replace", "pattern": {"String": " "}, "content": M}]},
          "pre_tokenizer": None,
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [], "special_tokens": {
                                 "<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
          "decoder": {"type": "Sequence", "decoders": [
              {"type": "Replace", "pattern": {"String": M}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"},
              {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
          "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                    "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                    "merges": LL_MERGES}}
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    V, D, F, H, KV, hd = len(vocab), 16, 32, 2, 1, 8
    hf = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": V,
          "hidden_size": D, "intermediate_size": F, "num_attention_heads": H,
          "num_key_value_heads": KV, "num_hidden_layers": 1, "max_position_embeddings": 32,
          "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf, f)
    g = np.random.default_rng(8)
    r = lambda *s: g.standard_normal(s) * 0.3  # noqa: E731
    p = "model.layers.0."
    sd = {"model.embed_tokens.weight": r(V, D), "model.norm.weight": 1 + r(D),
          "lm_head.weight": r(V, D),
          p + "input_layernorm.weight": 1 + r(D), p + "post_attention_layernorm.weight": 1 + r(D),
          p + "self_attn.q_proj.weight": r(H * hd, D), p + "self_attn.k_proj.weight": r(KV * hd, D),
          p + "self_attn.v_proj.weight": r(KV * hd, D), p + "self_attn.o_proj.weight": r(D, H * hd),
          p + "mlp.gate_proj.weight": r(F, D), p + "mlp.up_proj.weight": r(F, D),
          p + "mlp.down_proj.weight": r(D, F)}
    attn_format.write_safetensors(os.path.join(d, "model.safetensors"), sd)
    return d


def llama_case(attn, src, out):
    r = convert([src, "--out", out])
    if not check(r.returncode == 0, "llama: convert_hf: %s" % r.stderr):
        return
    want = {"type": "hf", "path": "tokenizer.json"}
    check(tokenizer_of(out) == want, "llama: tokenizer %s" % tokenizer_of(out))
    config = os.path.join(out, "config.json")
    r = subprocess.run([attn, "tokenize", "--config", config, "--format", "jsonl", "--text",
                        LL_TEXT], capture_output=True, text=True)
    ids = json.loads(r.stdout)["ids"] if r.returncode == 0 else r.stderr
    check(ids == LL_WANT, "llama: ids %s, by hand %s" % (ids, LL_WANT))
    r = subprocess.run([attn, "run", "--config", config, "--text", LL_TEXT, "--maps", "-"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and ",<s>," in r.stdout and ",\" ab\"," in r.stdout,
          "llama: attn run --text: exit %d %s" % (r.returncode, r.stderr))
    print("llama SRC_DIR with tokenizer.json: tokenizer hf, ids %s" % ids)


def convert(args):
    return subprocess.run(["/usr/bin/python3", CONVERT] + args, capture_output=True, text=True,
                          timeout=300)


def ids_of(attn, out):
    r = subprocess.run([attn, "tokenize", "--config", os.path.join(out, "config.json"),
                        "--format", "jsonl", "--text", TEXT], capture_output=True, text=True)
    if not check(r.returncode == 0, "attn tokenize on %s: %s" % (out, r.stderr)):
        return None
    return json.loads(r.stdout)["ids"]


def tokenizer_of(out):
    with open(os.path.join(out, "config.json")) as f:
        return json.load(f).get("tokenizer")


def case(attn, what, args, out, want_tok, files):
    r = convert(args + ["--out", out])
    if not check(r.returncode == 0, "%s: convert_hf: %s" % (what, r.stderr)):
        return
    check(tokenizer_of(out) == want_tok, "%s: tokenizer %s" % (what, tokenizer_of(out)))
    for n in files:
        check(os.path.exists(os.path.join(out, n)), "%s: %s not copied" % (what, n))
    ids = ids_of(attn, out)
    check(ids == WANT, "%s: ids %s, by hand %s" % (what, ids, WANT))
    r = subprocess.run([attn, "run", "--config", os.path.join(out, "config.json"), "--text",
                        TEXT, "--maps", "-"], capture_output=True, text=True)
    check(r.returncode == 0 and '" world"' not in r.stdout and ",\" w\"," in r.stdout,
          "%s: attn run --text: exit %d %s" % (what, r.returncode, r.stderr))
    print("%s: tokenizer %s, ids %s" % (what, want_tok["type"], ids))


def malformed(attn, gpt2_model, hf_model, tmp):
    """A malformed vocab.json, merges.txt or tokenizer.json in a converted
    model: attn tokenize and attn run exit 1 with one line naming the file
    and the place, and write nothing."""
    cases = [
        (gpt2_model, "vocab.json", '{"a": 0,\n "b": }\n', ["vocab.json", "line 2"]),
        (gpt2_model, "vocab.json", '{"!": "x"}', ["vocab.json", '"!"', "integer id"]),
        (gpt2_model, "merges.txt", "#version: 0.2\n\u0120 w\nhe\n", ["merges.txt", "line 3"]),
        (gpt2_model, "merges.txt", "#version: 0.2\nzz q\n", ["merges.txt", "line 2", '"zz"']),
        (hf_model, "tokenizer.json", '{"model": {"type": "BPE",\n\n ]', ["tokenizer.json", "line 3"]),
        (hf_model, "tokenizer.json", None, ["tokenizer.json", "Whitespace"]),
    ]
    for i, (model, name, text, want) in enumerate(cases):
        d = os.path.join(tmp, "malformed-%d" % i)
        shutil.copytree(model, d)
        path = os.path.join(d, name)
        if text is None:  # a pre-tokenizer attn does not have
            with open(path, encoding="utf-8") as f:
                tj = json.load(f)
            tj["pre_tokenizer"] = {"type": "Whitespace"}
            text = json.dumps(tj, ensure_ascii=False)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        cfg = os.path.join(d, "config.json")
        for args in (["tokenize", "--config", cfg, "--text", TEXT],
                     ["run", "--config", cfg, "--text", TEXT, "--maps", os.path.join(d, "m.csv")]):
            r = subprocess.run([attn] + args, capture_output=True, text=True)
            lines = r.stderr.splitlines()
            check(r.returncode == 1 and len(lines) == 1 and all(w in r.stderr for w in want)
                  and r.stdout == "" and not os.path.exists(os.path.join(d, "m.csv")),
                  "malformed %s (case %d), attn %s: exit %d, %r (want one line with %s)"
                  % (name, i, args[0], r.returncode, r.stderr, want))
    print("malformed vocab.json, merges.txt, tokenizer.json: exit 1, one line naming the place")


def main(argv):
    attn = argv[1]
    gpt2 = {"type": "gpt2", "vocab": "vocab.json", "merges": "merges.txt"}
    hf = {"type": "hf", "path": "tokenizer.json"}
    with tempfile.TemporaryDirectory(prefix="attn-convert-tok-") as tmp:
        src = hf_folder(os.path.join(tmp, "gpt2-hf"))
        case(attn, "SRC_DIR with vocab.json + merges.txt", [src], os.path.join(tmp, "a"), gpt2,
             ["vocab.json", "merges.txt"])
        only = os.path.join(tmp, "only-json")
        shutil.copytree(src, only)
        os.remove(os.path.join(only, "vocab.json"))
        os.remove(os.path.join(only, "merges.txt"))
        case(attn, "SRC_DIR with tokenizer.json", [only], os.path.join(tmp, "b"), hf,
             ["tokenizer.json"])
        case(attn, "--tokenizer-json", [src, "--tokenizer-json", os.path.join(src, "tokenizer.json")],
             os.path.join(tmp, "c"), hf, ["tokenizer.json"])
        case(attn, "--vocab --merges", [src, "--vocab", os.path.join(src, "vocab.json"), "--merges",
                                        os.path.join(src, "merges.txt")],
             os.path.join(tmp, "d"), gpt2, ["vocab.json", "merges.txt"])
        r = convert([src, "--no-tokenizer", "--out", os.path.join(tmp, "e")])
        check(r.returncode == 0 and tokenizer_of(os.path.join(tmp, "e")) is None,
              "--no-tokenizer: %s %s" % (r.stderr, r.returncode == 0 and tokenizer_of(os.path.join(tmp, "e"))))
        r = convert([src, "--merges", os.path.join(src, "merges.txt"), "--out", os.path.join(tmp, "f")])
        check(r.returncode == 1 and "--merges needs --vocab vocab.json" in r.stderr,
              "--merges alone: exit %d %s" % (r.returncode, r.stderr))
        llama_case(attn, llama_folder(os.path.join(tmp, "llama-hf")), os.path.join(tmp, "g"))
        malformed(attn, os.path.join(tmp, "a"), os.path.join(tmp, "b"), tmp)
    print("%d failures" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
