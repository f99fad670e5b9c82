"""An independent float64 reference of attn's forward pass (docs/model-format.md).

Written plainly from the contract, one step at a time, with no code shared
with the C library: it reads a model through tools/attn_format.load_model and
computes, in float64 PyTorch,

  - every attention map: {(stack, layer, kind, head): [T, Tk] weights}
    stack is "encoder" or "decoder", kind "self" or "cross", head the query head;
  - the final hidden state of the main stack (after its final norm, if any);
  - the encoder output of an encoder-decoder;
  - the logits, when the model has an lm_head;
  - every named intermediate of docs/dumps.md, under the names attn gives
    them (out.values: "embed", "blocks.0.attn.q" [H, T, hd], "blocks.0.attn.k"
    [KV, Tk, hd], "blocks.0.attn.scores" [H, T, Tk] before the mask,
    "blocks.0.cross.weights", "blocks.0.mlp.out", "blocks.0.resid",
    "hidden", "logits", "encoder.embed", "encoder.blocks.0.attn.in", ...).

Run with /usr/bin/python3 (the interpreter that has torch).

Usage as a library:
    model = attn_ref.Model.load("path/to/config.json")
    out = model.run([3, 5, 7], source_ids=[4, 2, 9])   # source_ids: encoder-decoder only
    out.maps[("decoder", 0, "self", 2)]                  # numpy [T, T]
    out.hidden                                           # numpy [T, d_model]
"""
import math
import os
import sys

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))
import attn_format  # noqa: E402

DTYPE = torch.float64


class Output:
    """What one forward pass produced (numpy float64 arrays)."""

    def __init__(self):
        self.maps = {}            # (stack, layer, kind, head) -> [T, Tk]
        self.hidden = None        # [T, D] final hidden state of the main stack
        self.encoder_hidden = None  # [S, D] encoder output (encoder-decoder only)
        self.logits = None        # [T, V] or None
        self.values = {}          # dump name -> numpy array (docs/dumps.md)


# ---------------------------------------------------------------------------
# Small building blocks


# Interventions (tests/interventions): when set, EDIT(name, value) returns the
# value to go on with, for name "PREFIX.context" (value: the list of the heads'
# [T, hd] contexts of that sub-layer, e.g. "blocks.1.attn.context",
# "encoder.blocks.0.attn.context", "blocks.0.cross.context") and
# "PREFIX.mlp.out" (the MLP's output [T, D]) and "PREFIX.resid" (the residual
# stream after the block [T, D], e.g. "blocks.1.resid"). None: the plain model.
EDIT = None


def linear(x, tensors, prefix, bias):
    """y = x W^T (+ b) with W = tensors[prefix + '.weight'] of shape [out, in]."""
    y = x @ tensors[prefix + ".weight"].T
    if bias:
        y = y + tensors[prefix + ".bias"]
    return y


def layer_norm(x, weight, bias, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased variance, as PyTorch
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def rms_norm(x, weight, eps):
    ms = (x ** 2).mean(dim=-1, keepdim=True)
    return x / torch.sqrt(ms + eps) * weight


def norm(cfg, tensors, prefix, x):
    """The configured norm with tensors prefix.weight (and prefix.bias for layernorm)."""
    if cfg["norm"] == "layernorm":
        return layer_norm(x, tensors[prefix + ".weight"], tensors[prefix + ".bias"], cfg["norm_eps"])
    if cfg["norm"] == "rmsnorm":
        return rms_norm(x, tensors[prefix + ".weight"], cfg["norm_eps"])
    raise ValueError("unknown norm %r" % cfg["norm"])


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def relu(x):
    return torch.clamp(x, min=0.0)


def silu(x):
    return x / (1.0 + torch.exp(-x))


def softmax_rows(scores):
    """Softmax over the last axis; -inf entries become exactly 0."""
    m = scores.max(dim=-1, keepdim=True).values
    e = torch.exp(scores - m)
    return e / e.sum(dim=-1, keepdim=True)


def sinusoidal_table(n_pos, d_model):
    """PE[p][2i] = sin(p / 10000^(2i/d_model)), PE[p][2i+1] = cos(same)."""
    pe = torch.zeros(n_pos, d_model, dtype=DTYPE)
    for p in range(n_pos):
        for i in range(0, d_model, 2):
            angle = p / (10000.0 ** (i / d_model))
            pe[p, i] = math.sin(angle)
            if i + 1 < d_model:
                pe[p, i + 1] = math.cos(angle)
    return pe


def rope(x, theta):
    """Rotates each (2i, 2i+1) pair of every row x[p] ([T, hd] for one head)
    by the angle p * theta^(-2i/hd): the interleaved convention of llama2.c."""
    T, hd = x.shape
    out = x.clone()
    for p in range(T):
        for i in range(0, hd, 2):
            angle = p * theta ** (-i / hd)
            c, s = math.cos(angle), math.sin(angle)
            a, b = x[p, i].item(), x[p, i + 1].item()
            out[p, i] = a * c - b * s
            out[p, i + 1] = a * s + b * c
    return out


# ---------------------------------------------------------------------------
# Attention, MLP, blocks, stacks


def attention(cfg, tensors, prefix, x_q, x_kv, causal, use_rope, record=None):
    """One attention sub-layer. prefix is e.g. 'blocks.0.attn' or 'blocks.0.cross'.
    Returns (output [T, D], list of per-query-head weights [T, Tk]).
    record (a dict, optional) receives the sub-layer's values by their dump
    names: in [T, D], q [H, T, hd], k and v [KV, Tk, hd], scores [H, T, Tk]
    (before the mask), weights [H, T, Tk], context [H, T, hd], concat
    [T, H*hd], out [T, D]."""
    H = cfg["n_heads"]
    KV = cfg["n_kv_heads"]
    hd = cfg["head_dim"]
    bias = cfg["bias"]
    group = H // KV  # query heads per key/value head

    q = linear(x_q, tensors, prefix + ".q", bias)   # [T, H*hd]
    k = linear(x_kv, tensors, prefix + ".k", bias)  # [Tk, KV*hd]
    v = linear(x_kv, tensors, prefix + ".v", bias)  # [Tk, KV*hd]
    T = x_q.shape[0]
    Tk = x_kv.shape[0]

    q_heads = [q[:, h * hd:(h + 1) * hd] for h in range(H)]
    k_heads = [k[:, g * hd:(g + 1) * hd] for g in range(KV)]
    v_heads = [v[:, g * hd:(g + 1) * hd] for g in range(KV)]
    if use_rope:
        q_heads = [rope(qh, cfg["rope_theta"]) for qh in q_heads]
        k_heads = [rope(kh, cfg["rope_theta"]) for kh in k_heads]

    weights = []
    contexts = []
    all_scores = []
    for h in range(H):
        g = h // group
        scores = (q_heads[h] @ k_heads[g].T) / math.sqrt(hd)  # [T, Tk]
        all_scores.append(scores.clone())
        if causal:
            for i in range(T):
                for j in range(Tk):
                    if j > i:
                        scores[i, j] = -math.inf
        w = softmax_rows(scores)
        weights.append(w)
        contexts.append(w @ v_heads[g])  # [T, hd]
    if EDIT is not None:  # an intervention: the heads' contexts before the o projection
        contexts = EDIT(prefix + ".context", contexts)
    concat = torch.cat(contexts, dim=1)  # [T, H*hd], heads in head order
    out = linear(concat, tensors, prefix + ".o", bias)
    if record is not None:
        def stack(ts):
            return torch.stack(ts).numpy().copy()
        record["in"] = x_q.numpy().copy()
        record["q"] = stack(q_heads)
        record["k"] = stack(k_heads)
        record["v"] = stack(v_heads)
        record["scores"] = stack(all_scores)
        record["weights"] = stack(weights)
        record["context"] = stack(contexts)
        record["concat"] = concat.numpy().copy()
        record["out"] = out.numpy().copy()
    return out, weights


def mlp(cfg, tensors, prefix, x):
    bias = cfg["bias"]
    kind = cfg["mlp"]
    if kind == "swiglu":
        gate = linear(x, tensors, prefix + ".gate", bias)
        up = linear(x, tensors, prefix + ".up", bias)
        return linear(silu(gate) * up, tensors, prefix + ".down", bias)
    up = linear(x, tensors, prefix + ".up", bias)
    if kind == "relu":
        a = relu(up)
    elif kind == "gelu":
        a = gelu_erf(up)
    elif kind == "gelu_tanh":
        a = gelu_tanh(up)
    else:
        raise ValueError("unknown mlp %r" % kind)
    return linear(a, tensors, prefix + ".down", bias)


def sublayer(cfg, tensors, norm_prefix, x, fn):
    """pre: x + fn(Norm(x)); post: Norm(x + fn(x))."""
    if cfg["norm_position"] == "pre":
        return x + fn(norm(cfg, tensors, norm_prefix, x))
    if cfg["norm_position"] == "post":
        return norm(cfg, tensors, norm_prefix, x + fn(x))
    raise ValueError("unknown norm_position %r" % cfg["norm_position"])


def run_stack(cfg, tensors, prefix, x, causal, memory, n_layers, final_norm_prefix,
              stack_name, maps, values=None, top=""):
    """Runs n_layers blocks named prefix.i.* on x [T, D]. memory [S, D] (or None)
    is what cross-attention reads. Records maps[(stack_name, i, kind, h)].
    Applies the final norm final_norm_prefix when cfg['final_norm'].
    values (a dict, optional) receives the block values by their dump names
    (prefix.i.attn.*, prefix.i.cross.*, prefix.i.mlp.out, prefix.i.resid)
    and top + "hidden"."""
    use_rope = cfg["positional"] == "rope"

    def keep(name, rec):
        if values is not None:
            for k, v in rec.items():
                values[name + "." + k] = v

    for i in range(n_layers):
        b = "%s.%d" % (prefix, i)

        def self_attn(h, b=b, i=i):
            rec = {}
            out, ws = attention(cfg, tensors, b + ".attn", h, h, causal, use_rope, rec)
            keep(b + ".attn", rec)
            for head, w in enumerate(ws):
                maps[(stack_name, i, "self", head)] = w.numpy().copy()
            return out

        x = sublayer(cfg, tensors, b + ".attn_norm", x, self_attn)

        if memory is not None:
            def cross_attn(h, b=b, i=i):
                rec = {}
                out, ws = attention(cfg, tensors, b + ".cross", h, memory, False, False, rec)
                keep(b + ".cross", rec)
                for head, w in enumerate(ws):
                    maps[(stack_name, i, "cross", head)] = w.numpy().copy()
                return out

            x = sublayer(cfg, tensors, b + ".cross_norm", x, cross_attn)

        if cfg["mlp"] != "none":
            def mlp_sub(h, b=b):
                y = mlp(cfg, tensors, b + ".mlp", h)
                if EDIT is not None:  # an intervention on the MLP's output
                    y = EDIT(b + ".mlp.out", y)
                keep(b + ".mlp", {"out": y.numpy().copy()})
                return y

            x = sublayer(cfg, tensors, b + ".mlp_norm", x, mlp_sub)
        if EDIT is not None:  # an intervention on the residual stream after the block
            x = EDIT(b + ".resid", x)
        keep(b, {"resid": x.numpy().copy()})

    if cfg["final_norm"]:
        x = norm(cfg, tensors, final_norm_prefix, x)
    if values is not None:
        values[top + "hidden"] = x.numpy().copy()
    return x


def embed(cfg, tensors, ids, top=""):
    """tok_embed[id] * embed_scale, plus learned or sinusoidal positions, then
    the embedding norm `top`embed_norm when cfg['embed_norm'] (top: "" for the
    main stack, "encoder." for the encoder of an encoder-decoder)."""
    ids = list(ids)
    if len(ids) > cfg["max_seq_len"]:
        raise ValueError("sequence of %d tokens is longer than max_seq_len %d"
                         % (len(ids), cfg["max_seq_len"]))
    for t in ids:
        if t < 0 or t >= cfg["vocab_size"]:
            raise ValueError("id %d outside the vocabulary" % t)
    x = tensors["tok_embed"][ids] * cfg["embed_scale"]
    if cfg["positional"] == "learned":
        x = x + tensors["pos_embed"][: len(ids)]
    elif cfg["positional"] == "sinusoidal":
        x = x + sinusoidal_table(len(ids), cfg["d_model"])
    elif cfg["positional"] not in ("rope", "none"):
        raise ValueError("unknown positional %r" % cfg["positional"])
    if cfg.get("embed_norm", False):
        x = norm(cfg, tensors, top + "embed_norm", x)
    return x


def forward(cfg, tensors, ids, source_ids=None):
    """The whole model. tensors: {name: float64 torch tensor}."""
    out = Output()
    arch = cfg["architecture"]
    if arch == "encoder-decoder":
        if source_ids is None:
            raise ValueError("an encoder-decoder needs source ids")
        src = embed(cfg, tensors, source_ids, "encoder.")
        out.values["encoder.embed"] = src.numpy().copy()
        memory = run_stack(cfg, tensors, "encoder.blocks", src, False, None,
                           cfg["n_encoder_layers"], "encoder.norm", "encoder", out.maps,
                           out.values, "encoder.")
        out.encoder_hidden = memory.numpy().copy()
        x = embed(cfg, tensors, ids)
        out.values["embed"] = x.numpy().copy()
        x = run_stack(cfg, tensors, "blocks", x, True, memory, cfg["n_layers"], "norm",
                      "decoder", out.maps, out.values)
    elif arch == "decoder":
        x = embed(cfg, tensors, ids)
        out.values["embed"] = x.numpy().copy()
        x = run_stack(cfg, tensors, "blocks", x, True, None, cfg["n_layers"], "norm",
                      "decoder", out.maps, out.values)
    elif arch == "encoder":
        x = embed(cfg, tensors, ids)
        out.values["embed"] = x.numpy().copy()
        x = run_stack(cfg, tensors, "blocks", x, False, None, cfg["n_layers"], "norm",
                      "encoder", out.maps, out.values)
    else:
        raise ValueError("unknown architecture %r" % arch)
    out.hidden = x.numpy().copy()

    if cfg["lm_head"] == "tied":
        out.logits = (x @ tensors["tok_embed"].T).numpy().copy()
    elif cfg["lm_head"] == "separate":
        out.logits = (x @ tensors["lm_head.weight"].T).numpy().copy()
    if out.logits is not None:
        out.values["logits"] = out.logits
    return out


class Model:
    def __init__(self, cfg, tensors, vocab=None):
        self.cfg = cfg
        self.tensors = {k: torch.as_tensor(v, dtype=DTYPE) for k, v in tensors.items()}
        self.vocab = vocab

    @classmethod
    def load(cls, config_path):
        cfg, tensors, vocab = attn_format.load_model(config_path)
        return cls(cfg, tensors, vocab)

    def run(self, ids, source_ids=None):
        with torch.no_grad():
            return forward(self.cfg, self.tensors, ids, source_ids)

    def piece(self, token_id):
        return self.vocab[token_id] if self.vocab is not None else str(token_id)

    def encode_words(self, text):
        """The word tokenizer: whitespace-separated words (lowercased when
        configured), unknown words mapped to unk, plus bos/eos when set (eos
        not with "add_eos": false)."""
        tok = self.cfg["tokenizer"]
        index = {w: i for i, w in enumerate(self.vocab)}
        words = text.lower().split() if tok.get("lowercase") else text.split()
        ids = [index[w] if w in index else index[tok["unk"]] for w in words]
        if tok.get("bos"):
            ids.insert(0, index[tok["bos"]])
        if tok.get("eos") and tok.get("add_eos", True):
            ids.append(index[tok["eos"]])
        return ids


def main(argv):
    """attn_ref.py CONFIG ID,ID,... [SOURCE_ID,...]: prints maps and hidden state."""
    if len(argv) < 3:
        print(__doc__)
        return 2
    model = Model.load(argv[1])
    ids = [int(t) for t in argv[2].split(",")]
    src = [int(t) for t in argv[3].split(",")] if len(argv) > 3 else None
    out = model.run(ids, src)
    torch.set_printoptions(precision=6)
    for key in sorted(out.maps):
        print(key)
        print(out.maps[key])
    print("hidden")
    print(out.hidden)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
