"""Float64 forward pass of an attn model read from its exported files.

    import forward64
    m = forward64.Model("models/tiny-decoder/config.json")
    out = m.run("The cat sits on the mat")            # or m.run(target, source=...)
    out.weights[("decoder", 0, "self")]  -> [H, T, Tk] softmax weights
    out.hidden                           -> [T, D] final hidden state of the main stack
    out.logits                           -> [T, V] (when the model has an lm_head)

It follows CONTRACT section 1 directly in numpy (no torch), for the
architectures the toy models use and a little more: learned / sinusoidal /
rope / no positions, layernorm / rmsnorm, pre / post norm, relu / gelu /
gelu_tanh / swiglu MLPs, grouped key/value heads, tied / separate heads. The
training script (tools/train.py) checks it against its own PyTorch modules,
and the tests in tests/models/ compare attn's maps with it.
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_format  # noqa: E402

_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def special_tokens(vocab, listed=()):
    """The tokens attn's word tokenizer matches whole: every vocabulary entry
    written <...> (no '<', '>' or white space inside) and the listed ones."""
    angle = [t for t in vocab if len(t) >= 3 and t[0] == "<" and t[-1] == ">"
             and not any(c in "<>" or c.isspace() for c in t[1:-1])]
    return set(angle) | set(listed)


def split_words(text, lowercase=True, special=()):
    """attn's word tokenizer split: whitespace separates, ASCII punctuation
    stands alone; a token of `special` (special_tokens()) is one word wherever
    it starts, as written (the longest where several start at one place)."""
    out, cur = [], []
    longest = sorted(special, key=len, reverse=True)
    i = 0
    while i < len(text):
        ch = text[i]
        hit = next((t for t in longest if text.startswith(t, i)), None)
        if hit:
            if cur:
                out.append("".join(cur))
                cur = []
            out.append(hit)
            i += len(hit)
            continue
        i += 1
        if ch in " \t\n\v\f\r" or ch in _PUNCT:
            if cur:
                out.append("".join(cur))
                cur = []
            if ch in _PUNCT:
                out.append(ch)
        else:
            cur.append(ch.lower() if lowercase and "A" <= ch <= "Z" else ch)
    if cur:
        out.append("".join(cur))
    return out


def sinusoidal(n, d):
    pe = np.zeros((n, d))
    pos = np.arange(n)[:, None].astype(np.float64)
    i = np.arange(0, d, 2).astype(np.float64)
    ang = pos / np.power(10000.0, i / d)
    pe[:, 0::2] = np.sin(ang)
    pe[:, 1::2] = np.cos(ang[:, : d // 2])
    return pe


class Result:
    def __init__(self):
        self.weights = {}   # (stack, layer, kind) -> [H, T, Tk]
        self.hidden = None  # [T, D] main stack, after the final norm where there is one
        self.encoder_hidden = None
        self.logits = None
        self.tokens = []
        self.source_tokens = []
        self.ids = []
        self.source_ids = []


class Model:
    def __init__(self, config_path):
        self.cfg, self.w, self.vocab = attn_format.load_model(config_path)
        self.index = {t: i for i, t in enumerate(self.vocab or [])}

    # ---- tokenizer ----------------------------------------------------------
    def encode(self, text):
        tok = self.cfg["tokenizer"]
        special = (special_tokens(self.vocab, tok.get("special", []))
                   if tok.get("special_tokens", True) else ())
        ids = [self.index.get(w, self.index[tok["unk"]])
               for w in split_words(text, tok.get("lowercase", False), special)]
        if tok.get("bos"):
            ids = [self.index[tok["bos"]]] + ids
        if tok.get("eos") and tok.get("add_eos", True):
            ids = ids + [self.index[tok["eos"]]]
        return ids

    # ---- pieces ---------------------------------------------------------------
    def _norm(self, x, prefix):
        c = self.cfg
        if c["norm"] == "layernorm":
            mu = x.mean(-1, keepdims=True)
            var = ((x - mu) ** 2).mean(-1, keepdims=True)
            return (x - mu) / np.sqrt(var + c["norm_eps"]) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]
        ms = (x * x).mean(-1, keepdims=True)
        return x / np.sqrt(ms + c["norm_eps"]) * self.w[prefix + ".weight"]

    def _linear(self, x, prefix):
        y = x @ self.w[prefix + ".weight"].T
        if self.cfg["bias"]:
            y = y + self.w[prefix + ".bias"]
        return y

    def _rope(self, x, positions):
        # x [T, hd]; interleaved pairs (2i, 2i+1)
        c = self.cfg
        hd = x.shape[-1]
        i = np.arange(hd // 2).astype(np.float64)
        ang = positions[:, None].astype(np.float64) * np.power(c["rope_theta"], -2.0 * i / hd)[None, :]
        cos, sin = np.cos(ang), np.sin(ang)
        a, b = x[:, 0::2], x[:, 1::2]
        out = np.empty_like(x)
        out[:, 0::2] = a * cos - b * sin
        out[:, 1::2] = a * sin + b * cos
        return out

    def _attention(self, xq, xkv, prefix, causal):
        """xq [T, D], xkv [Tk, D] -> (out [T, D], weights [H, T, Tk])."""
        c = self.cfg
        H, KV, hd = c["n_heads"], c["n_kv_heads"], c["head_dim"]
        q = self._linear(xq, prefix + ".q")
        k = self._linear(xkv, prefix + ".k")
        v = self._linear(xkv, prefix + ".v")
        T, Tk = xq.shape[0], xkv.shape[0]
        heads, weights = [], np.zeros((H, T, Tk))
        for h in range(H):
            g = h // (H // KV)
            qh = q[:, h * hd:(h + 1) * hd]
            kh = k[:, g * hd:(g + 1) * hd]
            vh = v[:, g * hd:(g + 1) * hd]
            if c["positional"] == "rope" and prefix.split(".")[-1] == "attn":
                qh = self._rope(qh, np.arange(T))
                kh = self._rope(kh, np.arange(Tk))
            s = qh @ kh.T / math.sqrt(hd)
            if causal:
                s = np.where(np.tril(np.ones((T, Tk), dtype=bool)), s, -np.inf)
            s = s - s.max(-1, keepdims=True)
            e = np.exp(s)
            p = e / e.sum(-1, keepdims=True)
            weights[h] = p
            heads.append(p @ vh)
        return self._linear(np.concatenate(heads, axis=1), prefix + ".o"), weights

    def _mlp(self, x, prefix):
        kind = self.cfg["mlp"]
        if kind == "swiglu":
            g = self._linear(x, prefix + ".gate")
            return self._linear(g / (1 + np.exp(-g)) * self._linear(x, prefix + ".up"), prefix + ".down")
        u = self._linear(x, prefix + ".up")
        if kind == "relu":
            a = np.maximum(u, 0)
        elif kind == "gelu":
            from math import erf
            a = 0.5 * u * (1 + np.vectorize(erf)(u / math.sqrt(2)))
        elif kind == "gelu_tanh":
            a = 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
        else:
            raise ValueError("mlp " + kind)
        return self._linear(a, prefix + ".down")

    def _embed(self, ids):
        c = self.cfg
        x = self.w["tok_embed"][ids] * c["embed_scale"]
        if c["positional"] == "learned":
            x = x + self.w["pos_embed"][: len(ids)]
        elif c["positional"] == "sinusoidal":
            x = x + sinusoidal(len(ids), c["d_model"])
        return x

    def _stack(self, x, prefix, n_layers, causal, stack_name, res, enc=None, final_prefix=None):
        pre = self.cfg["norm_position"] == "pre"
        subs = [("attn", None)] + ([("cross", enc)] if enc is not None else []) + [("mlp", None)]
        for i in range(n_layers):
            p = "%s.%d" % (prefix, i)
            for name, kv in subs:
                h = self._norm(x, "%s.%s_norm" % (p, name)) if pre else x
                if name == "mlp":
                    if self.cfg["mlp"] == "none":
                        continue
                    y = self._mlp(h, p + ".mlp")
                else:
                    y, wts = self._attention(h, h if kv is None else kv, "%s.%s" % (p, name),
                                             causal and name == "attn")
                    res.weights[(stack_name, i, "self" if name == "attn" else "cross")] = wts
                x = x + y if pre else self._norm(x + y, "%s.%s_norm" % (p, name))
        if self.cfg["final_norm"]:
            x = self._norm(x, final_prefix)
        return x

    def run_ids(self, ids, source_ids=None):
        c = self.cfg
        res = Result()
        res.ids, res.source_ids = list(ids), list(source_ids or [])
        enc = None
        if c["architecture"] == "encoder-decoder":
            e = self._embed(source_ids)
            enc = self._stack(e, "encoder.blocks", c["n_encoder_layers"], False, "encoder", res,
                              final_prefix="encoder.norm")
            res.encoder_hidden = enc
        x = self._embed(ids)
        arch = c["architecture"]
        stack_name = "encoder" if arch == "encoder" else "decoder"
        x = self._stack(x, "blocks", c["n_layers"], arch != "encoder", stack_name, res, enc=enc,
                        final_prefix="norm")
        res.hidden = x
        if c["lm_head"] == "tied":
            res.logits = x @ self.w["tok_embed"].T
        elif c["lm_head"] == "separate":
            res.logits = x @ self.w["lm_head.weight"].T
        if self.vocab:
            res.tokens = [self.vocab[i] for i in ids]
            res.source_tokens = [self.vocab[i] for i in (source_ids or [])]
        return res

    def run(self, text, source=None):
        return self.run_ids(self.encode(text), self.encode(source) if source is not None else None)
