#!/usr/bin/python3
"""tools/convert_hf.py against independent float64 references written the Hugging Face way.

Usage: test_convert_hf.py ATTN_EXE

No Hugging Face weights can be downloaded here, so the test builds random
state dicts with Hugging Face's exact tensor names and layouts:
  - GPT-2 (GPT2LMHeadModel names, "transformer." prefix, Conv1D weights
    [in, out], fused c_attn, causal-mask buffers, tied lm_head), saved with
    torch.save as a .bin;
  - Llama (LlamaForCausalLM names) whose q_proj / k_proj rows are permuted the
    way Hugging Face's convert_llama_weights_to_hf.py permutes Meta's weights,
    grouped-query attention; saved as F32 safetensors; a second Llama with
    attention biases, an explicit head_dim != hidden/heads, tied embeddings
    and BF16 safetensors;
  - BERT (BertForMaskedLM names with "bert." prefix, pooler and cls heads).
Each reference computes the model the way Hugging Face's code does (GPT-2:
x @ W Conv1D matmuls; Llama: rotate_half RoPE on the permuted weights; BERT:
embedding sum + embedding LayerNorm + post-norm blocks), in float64. The test
converts with tools/convert_hf.py, runs `attn run --ids ... --maps --context`
and compares attention maps (abs 2e-5), final hidden states (relative 1e-4)
and, for the decoders, last-position logits via --top-k V --last --predictions
(relative 1e-4). It also checks the converter's refusals.
"""
import json
import math
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import realtest as rt  # noqa: E402

sys.path.insert(0, os.path.join(rt.REPO_ROOT, "tools"))
import attn_format  # noqa: E402

torch.set_default_dtype(torch.float64)
CONVERT = os.path.join(rt.REPO_ROOT, "tools", "convert_hf.py")
PY = sys.executable

MAP_TOL = 2e-5
HIDDEN_TOL = 1e-4
LOGIT_TOL = 1e-4


# ---------------------------------------------------------------------------
# Hugging Face-style references (float64)

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):  # LlamaRMSNorm
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu_new(x):  # transformers.activations.NewGELUActivation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def attend(q, k, v, causal):
    """q [H, T, hd], k/v [H, T, hd] -> context [T, H*hd], weights [H, T, T]."""
    hd = q.shape[-1]
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if causal:
        T = s.shape[-1]
        s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    w = torch.softmax(s, dim=-1)
    ctx = (w @ v).transpose(0, 1).reshape(q.shape[1], -1)
    return ctx, w


def gpt2_ref(sd, hf, ids):
    """GPT2LMHeadModel.forward: Conv1D layers compute x @ weight + bias."""
    p = "transformer."
    D, H, L = hf["n_embd"], hf["n_head"], hf["n_layer"]
    eps = hf["layer_norm_epsilon"]
    T = len(ids)
    x = sd[p + "wte.weight"][ids] + sd[p + "wpe.weight"][:T]
    maps = []
    for i in range(L):
        g = lambda n: sd["%sh.%d.%s" % (p, i, n)]  # noqa: E731
        h = layer_norm(x, g("ln_1.weight"), g("ln_1.bias"), eps)
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = qkv.split(D, dim=1)
        split = lambda t: t.view(T, H, D // H).transpose(0, 1)  # noqa: E731
        ctx, w = attend(split(q), split(k), split(v), causal=True)
        maps.append(w)
        x = x + ctx @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h = layer_norm(x, g("ln_2.weight"), g("ln_2.bias"), eps)
        m = gelu_new(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"))
        x = x + m @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    hidden = layer_norm(x, sd[p + "ln_f.weight"], sd[p + "ln_f.bias"], eps)
    return maps, hidden, hidden @ sd["lm_head.weight"].T


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def llama_ref(sd, hf, ids):
    """LlamaForCausalLM.forward with rotate_half RoPE on the (permuted) HF weights."""
    D, H, L = hf["hidden_size"], hf["num_attention_heads"], hf["num_hidden_layers"]
    KV = hf.get("num_key_value_heads", H)
    hd = hf.get("head_dim") or D // H
    eps, theta = hf["rms_norm_eps"], hf.get("rope_theta", 10000.0)
    T = len(ids)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]  # [1, T, hd]
    x = sd["model.embed_tokens.weight"][ids]
    maps = []

    def lin(name, h):
        y = h @ sd[name + ".weight"].T
        return y + sd[name + ".bias"] if name + ".bias" in sd else y

    for i in range(L):
        p = "model.layers.%d." % i
        h = rms_norm(x, sd[p + "input_layernorm.weight"], eps)
        q = lin(p + "self_attn.q_proj", h).view(T, H, hd).transpose(0, 1)
        k = lin(p + "self_attn.k_proj", h).view(T, KV, hd).transpose(0, 1)
        v = lin(p + "self_attn.v_proj", h).view(T, KV, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)  # repeat_kv
        v = v.repeat_interleave(H // KV, dim=0)
        ctx, w = attend(q, k, v, causal=True)
        maps.append(w)
        x = x + lin(p + "self_attn.o_proj", ctx)
        h = rms_norm(x, sd[p + "post_attention_layernorm.weight"], eps)
        m = torch.nn.functional.silu(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h)
        x = x + lin(p + "mlp.down_proj", m)
    hidden = rms_norm(x, sd["model.norm.weight"], eps)
    head = sd.get("lm_head.weight", sd["model.embed_tokens.weight"])
    return maps, hidden, hidden @ head.T


def bert_ref(sd, hf, ids):
    """BertModel.forward with token_type_ids all 0 and no padding."""
    p = "bert."
    D, H, L = hf["hidden_size"], hf["num_attention_heads"], hf["num_hidden_layers"]
    eps = hf["layer_norm_eps"]
    T = len(ids)
    e = p + "embeddings."
    x = (sd[e + "word_embeddings.weight"][ids] + sd[e + "position_embeddings.weight"][:T]
         + sd[e + "token_type_embeddings.weight"][torch.zeros(T, dtype=torch.long)])
    x = layer_norm(x, sd[e + "LayerNorm.weight"], sd[e + "LayerNorm.bias"], eps)
    maps = []
    for i in range(L):
        g = "%sencoder.layer.%d." % (p, i)
        lin = lambda n, h: h @ sd[g + n + ".weight"].T + sd[g + n + ".bias"]  # noqa: E731
        split = lambda t: t.view(T, H, D // H).transpose(0, 1)  # noqa: E731
        ctx, w = attend(split(lin("attention.self.query", x)), split(lin("attention.self.key", x)),
                        split(lin("attention.self.value", x)), causal=False)
        maps.append(w)
        x = layer_norm(lin("attention.output.dense", ctx) + x,
                       sd[g + "attention.output.LayerNorm.weight"],
                       sd[g + "attention.output.LayerNorm.bias"], eps)
        m = lin("output.dense", gelu_erf(lin("intermediate.dense", x)))
        x = layer_norm(m + x, sd[g + "output.LayerNorm.weight"], sd[g + "output.LayerNorm.bias"],
                       eps)
    return maps, x, None


# ---------------------------------------------------------------------------
# Random state dicts with Hugging Face's names and layouts

def randn(g, *shape, std=1.0):
    return torch.randn(*shape, generator=g, dtype=torch.float64) * std


def norm_w(g, n):
    return 1.0 + randn(g, n, std=0.2)


def make_gpt2(seed):
    g = torch.Generator().manual_seed(seed)
    hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 61,
          "n_positions": 24, "n_embd": 40, "n_layer": 3, "n_head": 5, "n_inner": None,
          "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
          "scale_attn_weights": True}
    D, V, P, F = 40, 61, 24, 160
    s = 1.5 / math.sqrt(D)
    sd = {"transformer.wte.weight": randn(g, V, D), "transformer.wpe.weight": randn(g, P, D, std=0.5)}
    for i in range(3):
        p = "transformer.h.%d." % i
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = norm_w(g, D), randn(g, D, std=0.1)
        sd[p + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)  # mask buffer
        sd[p + "attn.masked_bias"] = torch.tensor(-1e4)
        sd[p + "attn.c_attn.weight"] = randn(g, D, 3 * D, std=s)   # Conv1D [in, out]
        sd[p + "attn.c_attn.bias"] = randn(g, 3 * D, std=0.1)
        sd[p + "attn.c_proj.weight"] = randn(g, D, D, std=s)
        sd[p + "attn.c_proj.bias"] = randn(g, D, std=0.1)
        sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = norm_w(g, D), randn(g, D, std=0.1)
        sd[p + "mlp.c_fc.weight"] = randn(g, D, F, std=s)
        sd[p + "mlp.c_fc.bias"] = randn(g, F, std=0.1)
        sd[p + "mlp.c_proj.weight"] = randn(g, F, D, std=1.0 / math.sqrt(F))
        sd[p + "mlp.c_proj.bias"] = randn(g, D, std=0.1)
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = norm_w(g, D), randn(g, D, std=0.1)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied
    return hf, sd


def hf_permute(w, n_heads, dim1, dim2):
    """convert_llama_weights_to_hf.py's permute(): Meta (interleaved) -> HF (rotate_half)."""
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def make_llama(seed, variant):
    g = torch.Generator().manual_seed(seed)
    if variant == "a":  # GQA, separate head, default head_dim, no bias
        D, H, KV, hd, F, V, L = 48, 6, 2, 8, 80, 67, 3
        hf = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": D,
              "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H,
              "num_key_value_heads": KV, "vocab_size": V, "max_position_embeddings": 32,
              "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
              "tie_word_embeddings": False, "attention_bias": False}
    else:  # head_dim != hidden/heads, attention biases, tied, another rope_theta
        D, H, KV, hd, F, V, L = 40, 4, 4, 16, 72, 53, 2
        hf = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": D,
              "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H,
              "num_key_value_heads": KV, "head_dim": hd, "vocab_size": V,
              "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 1000.0,
              "hidden_act": "silu", "tie_word_embeddings": True, "attention_bias": True}
    s = 1.5 / math.sqrt(D)
    sd = {"model.embed_tokens.weight": randn(g, V, D)}
    for i in range(L):
        p = "model.layers.%d." % i
        sd[p + "input_layernorm.weight"] = norm_w(g, D)
        wq_meta = randn(g, H * hd, D, std=s)    # Meta layout: RoPE pairs (2i, 2i+1)
        wk_meta = randn(g, KV * hd, D, std=s)
        sd[p + "self_attn.q_proj.weight"] = hf_permute(wq_meta, H, H * hd, D)
        sd[p + "self_attn.k_proj.weight"] = hf_permute(wk_meta, KV, KV * hd, D)
        sd[p + "self_attn.v_proj.weight"] = randn(g, KV * hd, D, std=s)
        sd[p + "self_attn.o_proj.weight"] = randn(g, D, H * hd, std=1.0 / math.sqrt(H * hd))
        if hf["attention_bias"]:  # biases in HF layout, as a HF model holds them
            sd[p + "self_attn.q_proj.bias"] = randn(g, H * hd, std=0.3)
            sd[p + "self_attn.k_proj.bias"] = randn(g, KV * hd, std=0.3)
            sd[p + "self_attn.v_proj.bias"] = randn(g, KV * hd, std=0.3)
            sd[p + "self_attn.o_proj.bias"] = randn(g, D, std=0.3)
        sd[p + "post_attention_layernorm.weight"] = norm_w(g, D)
        sd[p + "mlp.gate_proj.weight"] = randn(g, F, D, std=s)
        sd[p + "mlp.up_proj.weight"] = randn(g, F, D, std=s)
        sd[p + "mlp.down_proj.weight"] = randn(g, D, F, std=1.0 / math.sqrt(F))
    sd["model.norm.weight"] = norm_w(g, D)
    if not hf["tie_word_embeddings"]:
        sd["lm_head.weight"] = randn(g, V, D, std=0.5)
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = 1.0 / (
        hf["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    return hf, sd


def make_bert(seed):
    g = torch.Generator().manual_seed(seed)
    D, H, F, V, P, L = 48, 4, 96, 59, 24, 2
    hf = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": D,
          "num_attention_heads": H, "intermediate_size": F, "num_hidden_layers": L,
          "vocab_size": V, "max_position_embeddings": P, "type_vocab_size": 2,
          "hidden_act": "gelu", "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
    s = 1.5 / math.sqrt(D)
    e = "bert.embeddings."
    sd = {e + "word_embeddings.weight": randn(g, V, D),
          e + "position_embeddings.weight": randn(g, P, D, std=0.5),
          e + "token_type_embeddings.weight": randn(g, 2, D, std=0.5),
          e + "LayerNorm.weight": norm_w(g, D), e + "LayerNorm.bias": randn(g, D, std=0.2),
          e + "position_ids": torch.arange(P).view(1, P)}
    for i in range(L):
        p = "bert.encoder.layer.%d." % i
        for n in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            sd[p + n + ".weight"] = randn(g, D, D, std=s)
            sd[p + n + ".bias"] = randn(g, D, std=0.2)
        sd[p + "attention.output.LayerNorm.weight"] = norm_w(g, D)
        sd[p + "attention.output.LayerNorm.bias"] = randn(g, D, std=0.2)
        sd[p + "intermediate.dense.weight"] = randn(g, F, D, std=s)
        sd[p + "intermediate.dense.bias"] = randn(g, F, std=0.2)
        sd[p + "output.dense.weight"] = randn(g, D, F, std=1.0 / math.sqrt(F))
        sd[p + "output.dense.bias"] = randn(g, D, std=0.2)
        sd[p + "output.LayerNorm.weight"] = norm_w(g, D)
        sd[p + "output.LayerNorm.bias"] = randn(g, D, std=0.2)
    sd["bert.pooler.dense.weight"] = randn(g, D, D, std=s)
    sd["bert.pooler.dense.bias"] = randn(g, D, std=0.1)
    sd["cls.predictions.bias"] = randn(g, V, std=0.1)
    sd["cls.predictions.transform.dense.weight"] = randn(g, D, D, std=s)
    sd["cls.predictions.transform.dense.bias"] = randn(g, D, std=0.1)
    sd["cls.predictions.transform.LayerNorm.weight"] = norm_w(g, D)
    sd["cls.predictions.transform.LayerNorm.bias"] = randn(g, D, std=0.1)
    sd["cls.predictions.decoder.weight"] = sd[e + "word_embeddings.weight"]
    return hf, sd


# ---------------------------------------------------------------------------
# Storing state dicts the way Hugging Face does

def to_bf16(t):
    """Rounds float64 -> bfloat16 (round to nearest even) and returns (float64 values, uint16 bits)."""
    f = t.to(torch.float32).contiguous().numpy()
    u = f.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = u.astype(np.uint16)
    back = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return torch.from_numpy(back).reshape(t.shape), bits


def save_safetensors(path, sd, dtype):
    """Minimal safetensors writer (F32 or BF16); returns the state dict as stored (float64)."""
    header, blobs, off, stored = {}, [], 0, {}
    for name, t in sd.items():
        if dtype == "BF16" and t.is_floating_point():
            vals, bits = to_bf16(t)
            data, dt = bits.astype("<u2").tobytes(), "BF16"
        elif t.is_floating_point():
            vals = t.to(torch.float32).to(torch.float64)
            data, dt = t.to(torch.float32).numpy().astype("<f4").tobytes(), "F32"
        else:
            vals = t
            data, dt = t.to(torch.int64).numpy().astype("<i8").tobytes(), "I64"
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
        stored[name] = vals
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return stored


def save_torch(path, sd):
    """torch.save of float32 tensors, tied tensors sharing storage as in HF; returns float64 copy."""
    f32 = {}
    for k, t in sd.items():
        f32[k] = t.to(torch.float32) if t.is_floating_point() else t
    if "lm_head.weight" in f32 and "transformer.wte.weight" in f32:
        f32["lm_head.weight"] = f32["transformer.wte.weight"]
    torch.save(f32, path)
    return {k: (t.to(torch.float64) if t.is_floating_point() else t) for k, t in f32.items()}


# ---------------------------------------------------------------------------
# Running attn and comparing

def convert(src_args, out, extra=()):
    cmd = [PY, CONVERT] + list(src_args) + ["--out", out] + list(extra)
    return rt.run(cmd)


def compare(f, name, attn, cfg_path, ids, ref_maps, ref_hidden, ref_logits, stack,
            layer_offset=0, predictions=True):
    tmp = os.path.dirname(cfg_path)
    maps_f, ctx_f = os.path.join(tmp, "maps.csv"), os.path.join(tmp, "ctx.csv")
    idstr = ",".join(str(i) for i in ids)
    p = rt.run([attn, "run", "--config", cfg_path, "--ids", idstr, "--maps", maps_f,
                "--context", ctx_f])
    if not f.check(p.returncode == 0, "%s: attn run --ids succeeds (%s)" % (name, rt.describe(p))):
        return
    maps, _ = rt.read_maps(maps_f)
    T = len(ids)
    worst, where, missing = 0.0, None, []
    for l, w in enumerate(ref_maps):
        for h in range(w.shape[0]):
            key = (stack, l + layer_offset, "self", h)
            if key not in maps:
                missing.append(key)
                continue
            got = maps[key]
            full = np.zeros((T, T))
            full[:got.shape[0], :got.shape[1]] = got[:T, :T]
            d = rt.max_abs(full, w[h].numpy())
            if d > worst:
                worst, where = d, key
    f.check(not missing, "%s: maps present for every layer and head (missing %s)"
            % (name, missing[:3]))
    f.check(worst <= MAP_TOL, "%s: attention maps, max |diff| = %.3g at %s (tol %g)"
            % (name, worst, where, MAP_TOL))
    _, hid = rt.read_context(ctx_f)
    d = rt.max_rel(hid, ref_hidden.numpy())
    f.check(d <= HIDDEN_TOL, "%s: final hidden states [%d x %d], max relative diff = %.3g "
            "(max abs %.3g, tol %g)" % (name, hid.shape[0], hid.shape[1] if hid.ndim == 2 else 0,
                                         d, rt.max_abs(hid, ref_hidden.numpy()), HIDDEN_TOL))
    if ref_logits is None or not predictions:
        return maps
    V = ref_logits.shape[1]
    pred_f = os.path.join(tmp, "pred.csv")
    p = rt.run([attn, "run", "--config", cfg_path, "--ids", idstr, "--top-k", str(V), "--last",
                "--predictions", pred_f])
    if not f.check(p.returncode == 0, "%s: attn run --top-k %d --last --predictions (%s)"
                   % (name, V, rt.describe(p))):
        return maps
    header, rows = rt.read_csv(pred_f)
    col = {c: i for i, c in enumerate(header)}
    got = np.full(V, np.nan)
    for r in rows:
        if r and int(r[col["pos"]]) == T - 1:
            got[int(r[col["token_id"]])] = float(r[col["logit"]])
    ref = ref_logits[-1].numpy()
    ok_all = not np.isnan(got).any()
    d = rt.max_rel(got, ref) if ok_all else float("inf")
    f.check(ok_all and d <= LOGIT_TOL, "%s: last-position logits (%d of %d present), max "
            "relative diff = %.3g (tol %g)" % (name, int((~np.isnan(got)).sum()), V, d, LOGIT_TOL))
    return maps


def random_ids(seed, V, T):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (T,), generator=g).tolist()


def check_refusal(f, name, proc, out, must_name):
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    f.check(proc.returncode == 1 and len(err) == 1 and must_name in err[0]
            and not os.path.exists(os.path.join(out, "config.json")),
            "%s: convert_hf exits 1 with one line naming %s, no config.json written (%s)"
            % (name, must_name, rt.describe(proc)))


def main(argv):
    if len(argv) != 2:
        print("usage: test_convert_hf.py ATTN_EXE")
        return 2
    attn = argv[1]
    f = rt.Failures()
    tmp = tempfile.mkdtemp(prefix="attn-convert-hf-")
    try:
        # --- GPT-2 -------------------------------------------------------
        hf, sd = make_gpt2(101)
        src = os.path.join(tmp, "gpt2-src")
        os.makedirs(src)
        with open(os.path.join(src, "config.json"), "w") as fh:
            json.dump(hf, fh)
        stored = save_torch(os.path.join(src, "pytorch_model.bin"), sd)
        ids = random_ids(11, hf["vocab_size"], 13)
        maps, hidden, logits = gpt2_ref(stored, hf, ids)
        out = os.path.join(tmp, "gpt2")
        p = convert([src], out)
        if f.check(p.returncode == 0, "gpt2: convert_hf.py SRC_DIR (.bin, Conv1D) (%s)"
                   % rt.describe(p)):
            compare(f, "gpt2", attn, os.path.join(out, "config.json"), ids, maps, hidden,
                    logits, "decoder")

        # --- Llama a: F32 safetensors, GQA, separate lm_head ---------------
        for variant, dtype, seed in (("a", "F32", 202), ("b", "BF16", 303)):
            name = "llama-%s (%s)" % (variant, dtype)
            hf, sd = make_llama(seed, variant)
            src = os.path.join(tmp, "llama-%s-src" % variant)
            os.makedirs(src)
            cfg_src = os.path.join(src, "config.json")
            with open(cfg_src, "w") as fh:
                json.dump(hf, fh)
            wfile = os.path.join(src, "model.safetensors")
            stored = save_safetensors(wfile, sd, dtype)
            ids = random_ids(seed + 1, hf["vocab_size"], 17)
            maps, hidden, logits = llama_ref(stored, hf, ids)
            out = os.path.join(tmp, "llama-" + variant)
            p = convert(["--config", cfg_src, "--weights", wfile], out)
            if f.check(p.returncode == 0, "%s: convert_hf.py --config --weights (%s)"
                       % (name, rt.describe(p))):
                compare(f, name, attn, os.path.join(out, "config.json"), ids, maps, hidden,
                        logits, "decoder")
            if variant == "a":
                # the permutation matters: without undoing it the maps differ
                plain = os.path.join(tmp, "llama-a-noperm")
                _, t, _ = attn_format.load_model(os.path.join(out, "config.json"))
                for i in range(hf["num_hidden_layers"]):
                    for n in "qk":
                        key = "model.layers.%d.self_attn.%s_proj.weight" % (i, n)
                        t["blocks.%d.attn.%s.weight" % (i, n)] = stored[key].numpy()
                with open(os.path.join(out, "config.json")) as fh:
                    cfg = {k: v for k, v in json.load(fh).items()
                           if k not in ("format", "weights")}
                attn_format.write_model(plain, cfg, t)
                mf = os.path.join(plain, "maps.csv")
                p = rt.run([attn, "run", "--config", os.path.join(plain, "config.json"), "--ids",
                            ",".join(map(str, ids)), "--maps", mf])
                if p.returncode == 0:
                    mm, _ = rt.read_maps(mf)
                    d = max(rt.max_abs(mm[("decoder", l, "self", h)][:len(ids), :len(ids)],
                                       maps[l][h].numpy())
                            for l in range(len(maps)) for h in range(maps[l].shape[0]))
                    f.check(d > 1e-2, "llama-a: control: un-converted HF q/k rows give maps "
                            "off by %.3g (the test can see a missing un-permutation)" % d)

        # --- BERT --------------------------------------------------------
        hf, sd = make_bert(404)
        src = os.path.join(tmp, "bert-src")
        os.makedirs(src)
        with open(os.path.join(src, "config.json"), "w") as fh:
            json.dump(hf, fh)
        stored = save_torch(os.path.join(src, "pytorch_model.bin"), sd)
        ids = random_ids(405, hf["vocab_size"], 12)
        maps, hidden, _ = bert_ref(stored, hf, ids)
        out = os.path.join(tmp, "bert")
        p = convert([src, "--embed-norm", "layer"], out)
        if f.check(p.returncode == 0, "bert: convert_hf.py --embed-norm layer (%s)"
                   % rt.describe(p)):
            got = compare(f, "bert", attn, os.path.join(out, "config.json"), ids, maps, hidden,
                          None, "encoder", layer_offset=1)
            if got is not None:
                T = len(ids)
                u = [got.get(("encoder", 0, "self", h)) for h in range(hf["num_attention_heads"])]
                d = max(rt.max_abs(m, np.full((T, T), 1.0 / T)) if m is not None else 1.0
                        for m in u)
                f.check(d <= MAP_TOL, "bert: the pass-through layer 0 attends uniformly "
                        "(max |w - 1/T| = %.3g)" % d)
        # the default: attn's "embed_norm" config key, exact, no extra layer
        out = os.path.join(tmp, "bert-key")
        p = convert([src], out)
        if f.check(p.returncode == 0, "bert: convert_hf.py (default --embed-norm key) (%s)"
                   % rt.describe(p)):
            compare(f, "bert --embed-norm key", attn, os.path.join(out, "config.json"), ids,
                    maps, hidden, None, "encoder")
        # with a vocabulary: a word tokenizer with [CLS] / [SEP]
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat"]
        vocab += ["w%d" % i for i in range(hf["vocab_size"] - len(vocab))]
        vf = os.path.join(src, "vocab.txt")
        with open(vf, "w") as fh:
            fh.write("\n".join(vocab) + "\n")
        out = os.path.join(tmp, "bert-vocab")
        p = convert([src, "--vocab", vf], out)
        if f.check(p.returncode == 0, "bert: convert_hf.py --vocab (%s)" % rt.describe(p)):
            ctx_f = os.path.join(out, "ctx.csv")
            p = rt.run([attn, "run", "--config", os.path.join(out, "config.json"), "--text",
                        "Hello the zebra world", "--context", ctx_f])
            if f.check(p.returncode == 0, "bert: attn run --text with the word vocabulary (%s)"
                       % rt.describe(p)):
                toks, hid = rt.read_context(ctx_f)
                want = ["[CLS]", "hello", "the", "[UNK]", "world", "[SEP]"]
                f.check(toks == want, "bert: tokens %s == %s" % (toks, want))
                _, ref_h, _ = bert_ref(stored, hf, [vocab.index(t) for t in want])
                d = rt.max_rel(hid, ref_h.numpy())
                f.check(d <= HIDDEN_TOL, "bert: text run hidden states, max relative diff %.3g"
                        % d)

        # --- refusals --------------------------------------------------------
        hf, sd = make_gpt2(505)
        for case, mutate, must in (
                ("missing tensor", lambda s: s.pop("transformer.h.1.mlp.c_fc.bias"),
                 "transformer.h.1.mlp.c_fc.bias"),
                ("wrong shape", lambda s: s.__setitem__("transformer.h.2.attn.c_attn.weight",
                                                        torch.zeros(40, 40)),
                 "transformer.h.2.attn.c_attn.weight"),
                ("unexplained tensor", lambda s: s.__setitem__("transformer.h.0.extra.weight",
                                                               torch.ones(3)),
                 "transformer.h.0.extra.weight")):
            s2 = dict(sd)
            mutate(s2)
            src = os.path.join(tmp, "bad-" + case.replace(" ", "-"))
            os.makedirs(src)
            with open(os.path.join(src, "config.json"), "w") as fh:
                json.dump(hf, fh)
            save_safetensors(os.path.join(src, "model.safetensors"), s2, "F32")
            out = os.path.join(tmp, "out-" + case.replace(" ", "-"))
            check_refusal(f, "refuse " + case, convert([src], out), out, must)
        src = os.path.join(tmp, "bad-truncated")
        os.makedirs(src)
        with open(os.path.join(src, "config.json"), "w") as fh:
            json.dump(hf, fh)
        st_path = os.path.join(src, "model.safetensors")
        save_safetensors(st_path, sd, "F32")
        with open(st_path, "r+b") as fh:
            fh.truncate(os.path.getsize(st_path) - 100)
        out = os.path.join(tmp, "out-truncated")
        check_refusal(f, "refuse truncated safetensors", convert([src], out), out, st_path)
        out = os.path.join(tmp, "out-bert-refuse")
        bert_src = os.path.join(tmp, "bert-src")
        check_refusal(f, "bert --embed-norm refuse",
                      convert([bert_src, "--embed-norm", "refuse"], out), out, "LayerNorm")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f.exit()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
