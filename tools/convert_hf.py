#!/usr/bin/python3
"""Convert a Hugging Face-style GPT-2, Llama or BERT checkpoint to attn's format.

    /usr/bin/python3 tools/convert_hf.py SRC_DIR --out DIR
    /usr/bin/python3 tools/convert_hf.py --config config.json --weights model.safetensors --out DIR
    ... [--vocab vocab.txt] [--arch gpt2|llama|bert] [--embed-norm layer|key|refuse]
    ... [--merges merges.txt | --tokenizer-json tokenizer.json | --no-tokenizer]

Input: the model's Hugging Face config.json and its state dict: one or more
safetensors files (F32, F16, BF16, F64; read by this script, no safetensors
package needed) or PyTorch .pt/.bin files (read with torch.load). With SRC_DIR,
config.json and every *.safetensors (else every *.bin / *.pt) in it are used.

Output: DIR/config.json and DIR/model.safetensors (F32) in attn's format, and
a tokenizer:
  - GPT-2's own files: --vocab vocab.json with --merges merges.txt, or for a
    gpt2 model from SRC_DIR the vocab.json and merges.txt in it, are copied
    into DIR and configured as tokenizer type "gpt2"; else a tokenizer.json
    (--tokenizer-json, or the one in SRC_DIR) is copied and configured as type
    "hf" (byte-level BPE, see docs/tokenizers.md). Either way `attn run
    --text` cuts text exactly as GPT-2 does. --no-tokenizer writes none.
  - Llama's: the tokenizer.json in SRC_DIR (or --tokenizer-json) is copied and
    configured as type "hf" (SentencePiece-style BPE, BOS <s> first).
  - otherwise a word tokenizer (DIR/vocab.txt) only when --vocab is given;
    without one, run the model with `attn run --ids ...`.
attn's word tokenizer matches whole words:
sub-word pieces (BERT's "##ing", GPT-2's byte-level "Ġthe") keep their ids but
are not produced from text, and unusable entries (empty, containing spaces)
become placeholders "[attn-unusable-ID]" so line numbers stay ids.

What is converted (tensor names are Hugging Face's; a "transformer.",
"model." or "bert." prefix is accepted):

  gpt2   wte, wpe, h.N.ln_1, h.N.attn.c_attn (fused QKV, Conv1D [in, 3*out]:
         split and transposed), h.N.attn.c_proj, h.N.ln_2, h.N.mlp.c_fc,
         h.N.mlp.c_proj (Conv1D, transposed), ln_f; the head is tied to wte.
         -> decoder, learned positions, pre-LayerNorm (layer_norm_epsilon),
         bias, mlp from activation_function (gelu_new -> gelu_tanh).
  llama  embed_tokens, layers.N.input_layernorm, self_attn.{q,k,v,o}_proj,
         post_attention_layernorm, mlp.{gate,up,down}_proj, norm, lm_head
         -> decoder, rope (rope_theta), RMSNorm (rms_norm_eps), swiglu,
         n_kv_heads from num_key_value_heads. Hugging Face's conversion script
         permutes the rows of q_proj and k_proj inside each head so that its
         "rotate_half" RoPE pairs channel i with i + head_dim/2; this script
         undoes that permutation, so attn's interleaved RoPE (pairs 2i, 2i+1)
         computes exactly the same attention. Linear biases (attention_bias,
         mlp_bias) are kept; those a model lacks are written as zeros, since
         attn's "bias" covers every linear layer.
  bert   embeddings.{word,position,token_type}_embeddings, embeddings.LayerNorm,
         encoder.layer.N.attention.self.{query,key,value},
         attention.output.dense, attention.output.LayerNorm,
         intermediate.dense, output.dense, output.LayerNorm
         -> encoder, learned positions, post-LayerNorm, bias, no final norm,
         no lm_head. Token type 0 is assumed for every position and its
         embedding is added into the position table (exact). The pooler and
         the cls.* pre-training heads are not converted.

BERT's embedding LayerNorm (a norm between the embeddings and the first
block); --embed-norm chooses:
  key     (default) attn's config key "embed_norm": true with tensors
          embed_norm.weight / embed_norm.bias (a LayerNorm with norm_eps
          applied to the summed embeddings): exact.
  layer   for attn versions before "embed_norm" (0.1.0 without it):
          prepend one pass-through block to the stack: its attention
          and MLP weights are zero, its attention norm is an identity
          LayerNorm and its MLP norm is the embedding LayerNorm. Its output
          equals BERT's normalized embeddings up to a relative error of about
          norm_eps * |1 - 1/var| / 2 (var: the variance of a position's summed
          embedding), i.e. exact in float32 with BERT's norm_eps of 1e-12. The price: the
          maps show an extra layer 0 with uniform attention, and BERT's layer
          N is attn's layer N+1 (a note on stderr says so).
  refuse  stop with an error.

Not supported (refused with a message): GPT-2 with scale_attn_weights false
or scale_attn_by_inverse_layer_idx, Llama rope_scaling, BERT relative
position embeddings, hidden activations other than those listed above.

Errors: one line on stderr, exit status 1 (2 for a usage error); nothing is
written unless the whole conversion succeeds.
"""
import argparse
import glob
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_format  # noqa: E402


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------
# Reading state dicts

_ST_DTYPES = {
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": (None, 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1), "U8": ("u1", 1),
    "BOOL": ("?", 1),
}


def read_safetensors(path):
    """{name: float64 array} from a safetensors file (float and integer dtypes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ConvertError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ConvertError("%s: header length %d runs past the end of the file" % (path, n))
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise ConvertError("%s: malformed header JSON (%s)" % (path, e))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info.get("dtype")
        if dt not in _ST_DTYPES:
            raise ConvertError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        npdt, size = _ST_DTYPES[dt]
        b, e = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * size or base + e > len(raw) or b < 0:
            raise ConvertError("%s: tensor %s has inconsistent data_offsets" % (path, name))
        buf = raw[base + b:base + e]
        if dt == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=npdt)
        out[name] = arr.reshape(shape).astype(np.float64)
    return out


def read_torch(path):
    import torch
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch too old for weights_only
        obj = torch.load(path, map_location="cpu")
    except Exception as e:
        raise ConvertError("%s: torch.load failed (%s)" % (path, str(e).splitlines()[0]
                                                          if str(e) else type(e).__name__))
    if isinstance(obj, dict) and not any(hasattr(v, "shape") for v in obj.values()):
        for key in ("state_dict", "model", "module"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ConvertError("%s: not a state dict (got %s)" % (path, type(obj).__name__))
    out = {}
    for name, t in obj.items():
        if not hasattr(t, "detach"):
            continue
        t = t.detach().cpu()
        out[name] = (t.double() if t.is_floating_point() else t.long()).numpy().astype(np.float64)
    return out


def read_state(paths):
    state = {}
    for p in paths:
        part = read_safetensors(p) if p.endswith(".safetensors") else read_torch(p)
        for k, v in part.items():
            if k in state:
                raise ConvertError("%s: tensor %s also appears in another weights file" % (p, k))
            state[k] = v
    return state


# ---------------------------------------------------------------------------
# Helpers

class State:
    """Tensor lookup with an optional prefix, shape checks and a record of use."""

    def __init__(self, tensors, prefixes):
        self.t = tensors
        self.used = set()
        self.prefix = ""
        for p in prefixes:  # the prefix that the embedding tensor carries
            if any(k.startswith(p) for k in tensors):
                self.prefix = p
                break

    def name(self, n):
        return n if n in self.t else self.prefix + n

    def has(self, n):
        return self.name(n) in self.t

    def get(self, n, shape):
        full = self.name(n)
        if full not in self.t:
            raise ConvertError("tensor %s is missing" % full)
        a = self.t[full]
        if list(a.shape) != list(shape):
            raise ConvertError("tensor %s has shape %s, expected %s"
                               % (full, list(a.shape), list(shape)))
        self.used.add(full)
        return a

    def ignore(self, pred):
        for k in self.t:
            if pred(k):
                self.used.add(k)

    def check_all_used(self):
        extra = [k for k in self.t if k not in self.used]
        if extra:
            more = " and %d more" % (len(extra) - 3) if len(extra) > 3 else ""
            raise ConvertError("tensor %s is not explained by the %s conversion%s"
                               % (", ".join(extra[:3]), "Hugging Face", more))


def cfg_int(hf, *keys, default=None):
    for k in keys:
        if hf.get(k) is not None:
            return int(hf[k])
    if default is not None:
        return default
    raise ConvertError("config.json: missing key %s" % keys[0])


def mlp_kind(act, where):
    kinds = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
             "gelu": "gelu", "relu": "relu"}
    if act not in kinds:
        raise ConvertError("config.json: %s \"%s\" is not supported (gelu, gelu_new, relu)"
                           % (where, act))
    return kinds[act]


# ---------------------------------------------------------------------------
# GPT-2

def convert_gpt2(hf, st):
    D = cfg_int(hf, "n_embd", "hidden_size")
    L = cfg_int(hf, "n_layer", "num_hidden_layers")
    H = cfg_int(hf, "n_head", "num_attention_heads")
    V = cfg_int(hf, "vocab_size")
    P = cfg_int(hf, "n_positions", "max_position_embeddings")
    F = cfg_int(hf, "n_inner", default=4 * D)
    if hf.get("scale_attn_weights", True) is False:
        raise ConvertError("config.json: scale_attn_weights false is not supported")
    if hf.get("scale_attn_by_inverse_layer_idx", False):
        raise ConvertError("config.json: scale_attn_by_inverse_layer_idx is not supported")
    if D % H:
        raise ConvertError("config.json: n_embd %d is not a multiple of n_head %d" % (D, H))
    out = {"tok_embed": st.get("wte.weight", [V, D]), "pos_embed": st.get("wpe.weight", [P, D])}
    for i in range(L):
        h, b = "h.%d." % i, "blocks.%d." % i
        out[b + "attn_norm.weight"] = st.get(h + "ln_1.weight", [D])
        out[b + "attn_norm.bias"] = st.get(h + "ln_1.bias", [D])
        w = st.get(h + "attn.c_attn.weight", [D, 3 * D])      # Conv1D: y = x @ w + bias
        bias = st.get(h + "attn.c_attn.bias", [3 * D])
        for j, n in enumerate("qkv"):
            out[b + "attn.%s.weight" % n] = w[:, j * D:(j + 1) * D].T
            out[b + "attn.%s.bias" % n] = bias[j * D:(j + 1) * D]
        out[b + "attn.o.weight"] = st.get(h + "attn.c_proj.weight", [D, D]).T
        out[b + "attn.o.bias"] = st.get(h + "attn.c_proj.bias", [D])
        out[b + "mlp_norm.weight"] = st.get(h + "ln_2.weight", [D])
        out[b + "mlp_norm.bias"] = st.get(h + "ln_2.bias", [D])
        out[b + "mlp.up.weight"] = st.get(h + "mlp.c_fc.weight", [D, F]).T
        out[b + "mlp.up.bias"] = st.get(h + "mlp.c_fc.bias", [F])
        out[b + "mlp.down.weight"] = st.get(h + "mlp.c_proj.weight", [F, D]).T
        out[b + "mlp.down.bias"] = st.get(h + "mlp.c_proj.bias", [D])
    out["norm.weight"] = st.get("ln_f.weight", [D])
    out["norm.bias"] = st.get("ln_f.bias", [D])
    # causal-mask buffers of older transformers versions
    st.ignore(lambda k: k.endswith(".attn.bias") and st.t[k].ndim == 4)
    st.ignore(lambda k: k.endswith(".attn.masked_bias"))
    if "lm_head.weight" in st.t:
        if not np.array_equal(st.t["lm_head.weight"], out["tok_embed"]):
            raise ConvertError("tensor lm_head.weight differs from wte.weight; GPT-2's head "
                               "is expected to be tied")
        st.used.add("lm_head.weight")
    cfg = {"architecture": "decoder", "vocab_size": V, "d_model": D, "n_heads": H, "d_ff": F,
           "max_seq_len": P, "n_layers": L, "positional": "learned", "norm": "layernorm",
           "norm_eps": float(hf.get("layer_norm_epsilon", 1e-5)), "norm_position": "pre",
           "final_norm": True, "mlp": mlp_kind(hf.get("activation_function", "gelu_new"),
                                               "activation_function"),
           "bias": True, "lm_head": "tied"}
    return cfg, out


# ---------------------------------------------------------------------------
# Llama

def unpermute_rotary(w, n_heads, head_dim):
    """Undoes Hugging Face's permute() of q_proj / k_proj rows (or biases).

    HF's convert_llama_weights_to_hf.py does
        w.view(n_heads, head_dim // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
    so that HF row (h, j, i) = Meta row (h, i, j): Meta's interleaved pair
    (2i, 2i+1) becomes HF's rotate_half pair (i, i + head_dim/2). The inverse
    views the rows as (n_heads, 2, head_dim // 2) and swaps the last two axes.
    """
    rest = w.shape[1:]
    v = w.reshape((n_heads, 2, head_dim // 2) + rest)
    return np.swapaxes(v, 1, 2).reshape(w.shape)


def convert_llama(hf, st):
    D = cfg_int(hf, "hidden_size")
    L = cfg_int(hf, "num_hidden_layers")
    H = cfg_int(hf, "num_attention_heads")
    KV = cfg_int(hf, "num_key_value_heads", default=H)
    V = cfg_int(hf, "vocab_size")
    F = cfg_int(hf, "intermediate_size")
    P = cfg_int(hf, "max_position_embeddings")
    hd = cfg_int(hf, "head_dim", default=D // H if D % H == 0 else 0)
    if hd <= 0 or hd % 2:
        raise ConvertError("config.json: head_dim must be a positive even number")
    if H % KV:
        raise ConvertError("config.json: num_attention_heads %d is not a multiple of "
                           "num_key_value_heads %d" % (H, KV))
    if hf.get("rope_scaling"):
        raise ConvertError("config.json: rope_scaling is not supported")
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise ConvertError("config.json: hidden_act \"%s\" is not supported (silu)" % act)
    pre = "layers.%d."
    lin = {"self_attn.q_proj": (H * hd, D), "self_attn.k_proj": (KV * hd, D),
           "self_attn.v_proj": (KV * hd, D), "self_attn.o_proj": (D, H * hd),
           "mlp.gate_proj": (F, D), "mlp.up_proj": (F, D), "mlp.down_proj": (D, F)}
    names = {"self_attn.q_proj": "attn.q", "self_attn.k_proj": "attn.k",
             "self_attn.v_proj": "attn.v", "self_attn.o_proj": "attn.o",
             "mlp.gate_proj": "mlp.gate", "mlp.up_proj": "mlp.up", "mlp.down_proj": "mlp.down"}
    bias = any(st.has(pre % i + n + ".bias") for i in range(L) for n in lin)
    out = {"tok_embed": st.get("embed_tokens.weight", [V, D])}
    for i in range(L):
        h, b = pre % i, "blocks.%d." % i
        out[b + "attn_norm.weight"] = st.get(h + "input_layernorm.weight", [D])
        for n, shape in lin.items():
            w = st.get(h + n + ".weight", list(shape))
            bb = st.get(h + n + ".bias", [shape[0]]) if st.has(h + n + ".bias") else None
            if n in ("self_attn.q_proj", "self_attn.k_proj"):
                heads = H if n == "self_attn.q_proj" else KV
                w = unpermute_rotary(w, heads, hd)
                bb = None if bb is None else unpermute_rotary(bb, heads, hd)
            out[b + names[n] + ".weight"] = w
            if bias:
                out[b + names[n] + ".bias"] = bb if bb is not None else np.zeros(shape[0])
        out[b + "mlp_norm.weight"] = st.get(h + "post_attention_layernorm.weight", [D])
    out["norm.weight"] = st.get("norm.weight", [D])
    st.ignore(lambda k: k.endswith("rotary_emb.inv_freq"))
    tie = bool(hf.get("tie_word_embeddings", False))
    if "lm_head.weight" in st.t:
        head = st.get("lm_head.weight", [V, D])
        if tie and not np.array_equal(head, out["tok_embed"]):
            raise ConvertError("tensor lm_head.weight differs from embed_tokens.weight but "
                               "config.json says tie_word_embeddings")
        if np.array_equal(head, out["tok_embed"]):
            lm_head = "tied"
        else:
            lm_head = "separate"
            out["lm_head.weight"] = head
    else:
        lm_head = "tied" if tie else "none"
    cfg = {"architecture": "decoder", "vocab_size": V, "d_model": D, "n_heads": H,
           "n_kv_heads": KV, "head_dim": hd, "d_ff": F, "max_seq_len": P, "n_layers": L,
           "positional": "rope", "rope_theta": float(hf.get("rope_theta", 10000.0)),
           "norm": "rmsnorm", "norm_eps": float(hf.get("rms_norm_eps", 1e-6)),
           "norm_position": "pre", "final_norm": True, "mlp": "swiglu", "bias": bias,
           "lm_head": lm_head}
    return cfg, out


# ---------------------------------------------------------------------------
# BERT

def convert_bert(hf, st, embed_norm):
    D = cfg_int(hf, "hidden_size")
    L = cfg_int(hf, "num_hidden_layers")
    H = cfg_int(hf, "num_attention_heads")
    V = cfg_int(hf, "vocab_size")
    F = cfg_int(hf, "intermediate_size")
    P = cfg_int(hf, "max_position_embeddings")
    TV = cfg_int(hf, "type_vocab_size", default=2)
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ConvertError("config.json: position_embedding_type \"%s\" is not supported "
                           "(absolute)" % hf["position_embedding_type"])
    if D % H:
        raise ConvertError("config.json: hidden_size %d is not a multiple of "
                           "num_attention_heads %d" % (D, H))
    if embed_norm == "refuse":
        raise ConvertError("BERT's embedding LayerNorm has no place in attn's format "
                           "(use --embed-norm layer or --embed-norm key)")

    def ln(n):  # LayerNorm weight/bias; old checkpoints call them gamma/beta
        w = n + (".weight" if st.has(n + ".weight") else ".gamma")
        b = n + (".bias" if st.has(n + ".bias") else ".beta")
        return st.get(w, [D]), st.get(b, [D])

    e = "embeddings."
    word = st.get(e + "word_embeddings.weight", [V, D])
    pos = st.get(e + "position_embeddings.weight", [P, D])
    pos = pos + st.get(e + "token_type_embeddings.weight", [TV, D])[0][None, :]
    eg, eb = ln(e + "LayerNorm")
    out = {"tok_embed": word, "pos_embed": pos}
    first = 0
    if embed_norm == "key":
        out["embed_norm.weight"], out["embed_norm.bias"] = eg, eb
    else:  # a pass-through block 0 whose MLP norm is the embedding LayerNorm
        first = 1
        z = "blocks.0."
        out[z + "attn_norm.weight"], out[z + "attn_norm.bias"] = np.ones(D), np.zeros(D)
        for n in "qkvo":
            out[z + "attn.%s.weight" % n] = np.zeros((D, D))
            out[z + "attn.%s.bias" % n] = np.zeros(D)
        out[z + "mlp_norm.weight"], out[z + "mlp_norm.bias"] = eg, eb
        out[z + "mlp.up.weight"], out[z + "mlp.up.bias"] = np.zeros((F, D)), np.zeros(F)
        out[z + "mlp.down.weight"], out[z + "mlp.down.bias"] = np.zeros((D, F)), np.zeros(D)
    for i in range(L):
        h, b = "encoder.layer.%d." % i, "blocks.%d." % (i + first)
        for src, dst in (("attention.self.query", "attn.q"), ("attention.self.key", "attn.k"),
                         ("attention.self.value", "attn.v"), ("attention.output.dense", "attn.o"),
                         ("intermediate.dense", "mlp.up"), ("output.dense", "mlp.down")):
            shape = {"mlp.up": [F, D], "mlp.down": [D, F]}.get(dst, [D, D])
            out[b + dst + ".weight"] = st.get(h + src + ".weight", shape)
            out[b + dst + ".bias"] = st.get(h + src + ".bias", [shape[0]])
        out[b + "attn_norm.weight"], out[b + "attn_norm.bias"] = ln(h + "attention.output.LayerNorm")
        out[b + "mlp_norm.weight"], out[b + "mlp_norm.bias"] = ln(h + "output.LayerNorm")
    st.ignore(lambda k: k.endswith("embeddings.position_ids"))
    st.ignore(lambda k: k.split(".")[0] in ("pooler", "cls")
              or k.startswith(st.prefix + "pooler."))
    cfg = {"architecture": "encoder", "vocab_size": V, "d_model": D, "n_heads": H, "d_ff": F,
           "max_seq_len": P, "n_layers": L + first, "positional": "learned",
           "norm": "layernorm", "norm_eps": float(hf.get("layer_norm_eps", 1e-12)),
           "norm_position": "post", "final_norm": False,
           "mlp": mlp_kind(hf.get("hidden_act", "gelu"), "hidden_act"), "bias": True,
           "lm_head": "none"}
    if embed_norm == "key":
        cfg["embed_norm"] = True
    return cfg, out


# ---------------------------------------------------------------------------

def read_vocab(path):
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        tokens = [None] * (max(m.values()) + 1 if m else 0)
        for t, i in m.items():
            tokens[i] = t
    else:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
    # attn's vocabulary holds one whitespace-free token per line; keep ids by
    # giving unusable entries unique placeholders
    fixed = []
    for i, t in enumerate(tokens):
        if not t or any(c.isspace() for c in t):
            t = "[attn-unusable-%d]" % i
        fixed.append(t)
    return fixed


def detect_arch(hf):
    mt = str(hf.get("model_type", "")).lower()
    archs = " ".join(hf.get("architectures") or []).lower()
    for a in ("gpt2", "llama", "bert"):
        if mt == a or archs.startswith(a):
            return a
    raise ConvertError("config.json: model_type \"%s\" is not one of gpt2, llama, bert "
                       "(use --arch to force one)" % mt)


def convert(args):
    cfg_path, weights = args.config, list(args.weights or [])
    if args.src:
        if not os.path.isdir(args.src):
            raise ConvertError("%s: not a folder" % args.src)
        cfg_path = cfg_path or os.path.join(args.src, "config.json")
        if not weights:
            weights = sorted(glob.glob(os.path.join(args.src, "*.safetensors")))
            if not weights:
                weights = sorted(glob.glob(os.path.join(args.src, "*.bin"))
                                 + glob.glob(os.path.join(args.src, "*.pt")))
    if not cfg_path or not weights:
        raise ConvertError("need a config.json and weights (SRC_DIR, or --config and --weights)")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            hf = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError("%s: %s" % (cfg_path, e))
    try:
        state = read_state(weights)
    except OSError as e:
        raise ConvertError("%s: %s" % (e.filename, e.strerror))
    arch = args.arch or detect_arch(hf)
    if arch == "gpt2":
        st = State(state, ["transformer."])
        cfg, tensors = convert_gpt2(hf, st)
    elif arch == "llama":
        st = State(state, ["model."])
        cfg, tensors = convert_llama(hf, st)
    else:
        st = State(state, ["bert."])
        cfg, tensors = convert_bert(hf, st, args.embed_norm)
        if args.embed_norm == "layer":
            print("convert_hf: note: BERT's embedding LayerNorm is emulated by an extra "
                  "pass-through block 0; BERT layer N is attn layer N+1", file=sys.stderr)
    st.check_all_used()

    vocab = None
    files = None if args.no_tokenizer else bpe_files(args, arch)
    if files:
        cfg["tokenizer"] = files[0]
    elif args.vocab and not args.no_tokenizer:
        try:
            vocab = read_vocab(args.vocab)
        except (OSError, ValueError) as e:
            raise ConvertError("%s: %s" % (args.vocab, e))
        if len(vocab) != cfg["vocab_size"]:
            raise ConvertError("%s: %d tokens, but vocab_size is %d"
                               % (args.vocab, len(vocab), cfg["vocab_size"]))
        defaults = {"bert": ("[UNK]", "[CLS]", "[SEP]"), "gpt2": ("<|endoftext|>", None, None),
                    "llama": ("<unk>", "<s>", None)}[arch]
        unk = args.unk or defaults[0]
        if unk not in vocab:
            raise ConvertError("%s: unknown-word token %s is not in the vocabulary (use --unk)"
                               % (args.vocab, unk))
        bos = args.bos if args.bos is not None else defaults[1]
        eos = args.eos if args.eos is not None else defaults[2]
        for what, t in (("--bos", bos), ("--eos", eos)):
            if t and t not in vocab:
                raise ConvertError("%s: %s token %s is not in the vocabulary" % (args.vocab, what, t))
        lower = args.lowercase if args.lowercase is not None else \
            bool(hf.get("do_lower_case", arch == "bert"))
        cfg["tokenizer"] = {"type": "word", "vocab": "vocab.txt", "lowercase": lower, "unk": unk,
                            "bos": bos or None, "eos": eos or None}
    attn_format.write_model(args.out, cfg, tensors, vocab=vocab)
    for src, name in (files[1] if files else []):
        shutil.copyfile(src, os.path.join(args.out, name))
    return os.path.join(args.out, "config.json")


def bpe_files(args, arch):
    """GPT-2's tokenizer files: (the tokenizer config, [(source, name in DIR)]) or None.

    --merges (with --vocab vocab.json) or --tokenizer-json name them; for a gpt2
    model from SRC_DIR, its vocab.json and merges.txt, else its tokenizer.json;
    for a llama model from SRC_DIR, its tokenizer.json."""
    if args.merges:
        if not args.vocab or not args.vocab.endswith(".json"):
            raise ConvertError("--merges needs --vocab vocab.json (GPT-2's token -> id file)")
        pair = [(args.vocab, "vocab.json"), (args.merges, "merges.txt")]
    elif args.tokenizer_json:
        pair = [(args.tokenizer_json, "tokenizer.json")]
    elif args.src and arch == "llama" and not args.vocab:
        t = os.path.join(args.src, "tokenizer.json")  # Llama's SentencePiece-style BPE
        if not os.path.exists(t):
            return None
        pair = [(t, "tokenizer.json")]
    elif args.src and arch == "gpt2" and not args.vocab:
        v, m, t = (os.path.join(args.src, n) for n in ("vocab.json", "merges.txt", "tokenizer.json"))
        if os.path.exists(v) and os.path.exists(m):
            pair = [(v, "vocab.json"), (m, "merges.txt")]
        elif os.path.exists(t):
            pair = [(t, "tokenizer.json")]
        else:
            return None
    else:
        return None
    for src, _ in pair:
        if not os.path.isfile(src):
            raise ConvertError("%s: no such file" % src)
    if len(pair) == 2:
        return {"type": "gpt2", "vocab": "vocab.json", "merges": "merges.txt"}, pair
    return {"type": "hf", "path": "tokenizer.json"}, pair


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?", help="folder with config.json and the weights")
    ap.add_argument("--config", help="Hugging Face config.json")
    ap.add_argument("--weights", action="append",
                    help="a .safetensors, .bin or .pt state dict (repeat for shards)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--arch", choices=["gpt2", "llama", "bert"],
                    help="default: from config.json's model_type")
    ap.add_argument("--vocab", help="vocab.txt (one token per line) or vocab.json "
                    "({token: id}); writes a word tokenizer")
    ap.add_argument("--merges", help="GPT-2's merges.txt (with --vocab vocab.json): copied, "
                    "tokenizer type gpt2")
    ap.add_argument("--tokenizer-json", help="a Hugging Face tokenizer.json (GPT-2's byte-level "
                    "or Llama's BPE): copied, tokenizer type hf")
    ap.add_argument("--no-tokenizer", action="store_true",
                    help="write no tokenizer (not even the one found in SRC_DIR)")
    ap.add_argument("--unk", help="unknown-word token (default [UNK] / <|endoftext|> / <unk>)")
    ap.add_argument("--bos", help="token put before the input (default [CLS] for BERT, "
                    "<s> for Llama; '' for none)")
    ap.add_argument("--eos", help="token put after the input (default [SEP] for BERT; '' for none)")
    ap.add_argument("--lowercase", dest="lowercase", action="store_true", default=None)
    ap.add_argument("--no-lowercase", dest="lowercase", action="store_false")
    ap.add_argument("--embed-norm", choices=["layer", "key", "refuse"], default="key",
                    help="BERT's embedding LayerNorm (see the top of this file)")
    args = ap.parse_args(argv)
    out_cfg = os.path.join(args.out, "config.json")
    try:
        convert(args)
    except ConvertError as e:
        print("convert_hf: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("convert_hf: %s: %s" % (e.filename or args.out, e.strerror), file=sys.stderr)
        return 1
    print(out_cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
