"""A float64 numpy forward pass that keeps every step of attention, written
from the contract (docs/model-format.md) for the tests
of `attn explain`. It shares no code with attn and reads the model files
itself.

    m = ref64.Model("models/tiny-decoder/config.json")
    r = m.run(m.encode("The cat sits on the mat"))            # or run(ids, source_ids=...)
    r.embed["decoder"]                     # [T, D] input of the first block
    r.block_in[("decoder", 1)]             # [T, D] input of block 1 (residual stream)
    st = r.attn[("decoder", 1, "self")]    # one attention sub-layer:
    st["A"], st["Q"][h], st["K"][g], st["V"][g], st["QK"][h], st["S"][h],
    st["weights"][h], st["C"][h], st["concat"], st["out"]
    r.memory                               # [S, D] encoder output (encoder-decoder)

Token ids can also be given directly, or vectors (run(vectors=...)).
"""
import json
import math
import os
import struct

import numpy as np

_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}[info["dtype"]]
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dt)
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


class Result:
    def __init__(self):
        self.embed = {}     # stack -> [T, D]
        self.block_in = {}  # (stack, layer) -> [T, D]
        self.attn = {}      # (stack, layer, kind) -> dict of steps
        self.memory = None


class Model:
    def __init__(self, config_path):
        folder = os.path.dirname(os.path.abspath(config_path))
        with open(config_path) as f:
            c = json.load(f)
        c.setdefault("n_kv_heads", c["n_heads"])
        c.setdefault("head_dim", c["d_model"] // c["n_heads"])
        c.setdefault("rope_theta", 10000.0)
        c.setdefault("embed_scale", 1.0)
        c.setdefault("norm_eps", 1e-5)
        c.setdefault("final_norm", c["norm_position"] == "pre")
        c.setdefault("embed_norm", False)
        self.cfg = c
        self.w = read_safetensors(os.path.join(folder, c["weights"]))
        self.vocab = None
        tok = c.get("tokenizer")
        if tok and tok["type"] == "word":
            with open(os.path.join(folder, tok["vocab"]), encoding="utf-8") as f:
                self.vocab = [line.rstrip("\n") for line in f]

    # ---- the word tokenizer: white space splits, ASCII punctuation stands alone
    def encode(self, text):
        tok = self.cfg["tokenizer"]
        words, cur = [], ""
        for ch in text:
            if ch.isspace() or ch in _PUNCT:
                if cur:
                    words.append(cur)
                cur = ""
                if ch in _PUNCT:
                    words.append(ch)
            else:
                cur += ch.lower() if tok.get("lowercase") and "A" <= ch <= "Z" else ch
        if cur:
            words.append(cur)
        index = {t: i for i, t in enumerate(self.vocab)}
        ids = [index.get(wd, index[tok["unk"]]) for wd in words]
        if tok.get("bos"):
            ids = [index[tok["bos"]]] + ids
        if tok.get("eos") and tok.get("add_eos", True):  # "add_eos": false: not appended
            ids = ids + [index[tok["eos"]]]
        return ids

    # ---- pieces
    def norm(self, x, prefix):
        c = self.cfg
        if c["norm"] == "layernorm":
            mu = x.mean(-1, keepdims=True)
            var = ((x - mu) ** 2).mean(-1, keepdims=True)
            return (x - mu) / np.sqrt(var + c["norm_eps"]) * self.w[prefix + ".weight"] + \
                self.w[prefix + ".bias"]
        ms = (x * x).mean(-1, keepdims=True)
        return x / np.sqrt(ms + c["norm_eps"]) * self.w[prefix + ".weight"]

    def linear(self, x, prefix):
        y = x @ self.w[prefix + ".weight"].T
        if self.cfg["bias"]:
            y = y + self.w[prefix + ".bias"]
        return y

    def rope(self, x):
        """Rotates pair (2i, 2i+1) of row p by p * theta^(-2i/hd)."""
        hd = x.shape[1]
        out = x.copy()
        for p in range(x.shape[0]):
            for i in range(0, hd, 2):
                a = p * self.cfg["rope_theta"] ** (-i / hd)
                c, s = math.cos(a), math.sin(a)
                out[p, i] = x[p, i] * c - x[p, i + 1] * s
                out[p, i + 1] = x[p, i] * s + x[p, i + 1] * c
        return out

    def attention(self, a, kv_in, prefix, causal, rope):
        c = self.cfg
        H, KV, hd = c["n_heads"], c["n_kv_heads"], c["head_dim"]
        q, k, v = (self.linear(a, prefix + ".q"), self.linear(kv_in, prefix + ".k"),
                   self.linear(kv_in, prefix + ".v"))
        st = {"A": a, "Q": [], "K": [], "V": [], "QK": [], "S": [], "weights": [], "C": []}
        for g in range(KV):
            kg = k[:, g * hd:(g + 1) * hd]
            st["K"].append(self.rope(kg) if rope else kg)
            st["V"].append(v[:, g * hd:(g + 1) * hd])
        for h in range(H):
            qh = q[:, h * hd:(h + 1) * hd]
            qh = self.rope(qh) if rope else qh
            kh, vh = st["K"][h // (H // KV)], st["V"][h // (H // KV)]
            qk = qh @ kh.T
            s = qk / math.sqrt(hd)
            m = s.copy()
            if causal:
                m[np.triu(np.ones(m.shape, dtype=bool), 1)] = -np.inf
            e = np.exp(m - m.max(axis=1, keepdims=True))
            wts = e / e.sum(axis=1, keepdims=True)
            st["Q"].append(qh)
            st["QK"].append(qk)
            st["S"].append(s)
            st["weights"].append(wts)
            st["C"].append(wts @ vh)
        st["concat"] = np.concatenate(st["C"], axis=1)
        st["out"] = self.linear(st["concat"], prefix + ".o")
        return st

    def stack(self, r, x, stack, prefix, n_layers, causal, memory, final):
        c = self.cfg
        pre = c["norm_position"] == "pre"
        rope = c["positional"] == "rope"
        for l in range(n_layers):
            b = "%s.%d" % (prefix, l)
            r.block_in[(stack, l)] = x
            a = self.norm(x, b + ".attn_norm") if pre else x
            st = self.attention(a, a, b + ".attn", causal, rope)
            r.attn[(stack, l, "self")] = st
            x = x + st["out"] if pre else self.norm(x + st["out"], b + ".attn_norm")
            if memory is not None:
                a = self.norm(x, b + ".cross_norm") if pre else x
                st = self.attention(a, memory, b + ".cross", False, False)
                r.attn[(stack, l, "cross")] = st
                x = x + st["out"] if pre else self.norm(x + st["out"], b + ".cross_norm")
            if c["mlp"] != "none":
                a = self.norm(x, b + ".mlp_norm") if pre else x
                up = self.linear(a, b + ".mlp.up")
                if c["mlp"] == "relu":
                    hid = np.maximum(up, 0)
                elif c["mlp"] == "gelu":
                    hid = 0.5 * up * (1 + np.vectorize(math.erf)(up / math.sqrt(2)))
                elif c["mlp"] == "gelu_tanh":
                    hid = 0.5 * up * (1 + np.tanh(math.sqrt(2 / math.pi) * (up + 0.044715 * up ** 3)))
                else:  # swiglu
                    g = self.linear(a, b + ".mlp.gate")
                    hid = g / (1 + np.exp(-g)) * up
                y = self.linear(hid, b + ".mlp.down")
                x = x + y if pre else self.norm(x + y, b + ".mlp_norm")
        if c["final_norm"]:
            x = self.norm(x, final)
        return x

    def embed(self, ids, prefix=""):
        """tok_embed * embed_scale (+ positions), then the embed_norm when configured;
        prefix is "encoder." for the encoder of an encoder-decoder."""
        c = self.cfg
        x = self.w["tok_embed"][ids] * c["embed_scale"]
        T, D = x.shape
        if c["positional"] == "learned":
            x = x + self.w["pos_embed"][:T]
        elif c["positional"] == "sinusoidal":
            pe = np.zeros((T, D))
            for p in range(T):
                for i in range(0, D, 2):
                    a = p / 10000.0 ** (i / D)
                    pe[p, i] = math.sin(a)
                    if i + 1 < D:
                        pe[p, i + 1] = math.cos(a)
            x = x + pe
        if c["embed_norm"]:
            x = self.norm(x, prefix + "embed_norm")
        return x

    def run(self, ids=None, source_ids=None, vectors=None, source_vectors=None):
        c = self.cfg
        r = Result()
        arch = c["architecture"]
        memory = None
        if arch == "encoder-decoder":
            s = np.asarray(source_vectors, dtype=np.float64) if source_vectors is not None \
                else self.embed(source_ids, "encoder.")
            r.embed["encoder"] = s
            memory = self.stack(r, s, "encoder", "encoder.blocks", c["n_encoder_layers"], False,
                                None, "encoder.norm")
            r.memory = memory
        if ids is None and vectors is None:
            return r
        x = np.asarray(vectors, dtype=np.float64) if vectors is not None else self.embed(ids)
        name = "encoder" if arch == "encoder" else "decoder"
        r.embed[name] = x
        self.stack(r, x, name, "blocks", c["n_layers"], arch != "encoder", memory, "norm")
        return r
