"""Validates the float64 reference (attn_ref.py) against PyTorch's own modules.

Same random weights are copied into torch.nn.TransformerEncoderLayer /
TransformerDecoderLayer / Transformer / MultiheadAttention (float64,
batch_first=True, dropout=0) and the outputs and per-head attention weights
are compared with the reference, to 1e-10. Pieces that PyTorch's layers do not
cover are compared with independent formulations: RoPE against Meta Llama's
complex-number form, sinusoidal positions against the PyTorch tutorial form,
grouped-query attention against MultiheadAttention with repeated key/value
heads, head_dim != d_model/n_heads and bias-free projections against
MultiheadAttention on pre-projected inputs, activations against
torch.nn.functional.

Exit status: 0 pass, 1 fail, 77 skip (no torch).
"""
import math
import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("SKIP: torch is not available to %s" % sys.executable)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_ref  # noqa: E402

TOL = 1e-10
D64 = torch.float64
results = []  # (name, max diff, ok)


def check(name, got, want, tol=TOL):
    got = torch.as_tensor(got, dtype=D64)
    want = torch.as_tensor(want, dtype=D64)
    if got.shape != want.shape:
        results.append((name, float("inf"), False))
        print("FAIL %-58s shape %s != %s" % (name, tuple(got.shape), tuple(want.shape)))
        return
    diff = (got - want).abs().max().item() if got.numel() else 0.0
    ok = diff <= tol
    results.append((name, diff, ok))
    print("%s %-58s max|diff| = %.3g" % ("ok  " if ok else "FAIL", name, diff))


def randomize(module, gen, qk_scale=0.25, scale=0.15):
    """Random weights, varied scales; norm weights around 1, biases random."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=D64))
                else:
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=D64))
            elif name.endswith("in_proj_weight"):
                d = p.shape[0] // 3
                p[: 2 * d].copy_(qk_scale * torch.randn((2 * d, p.shape[1]), generator=gen, dtype=D64))
                p[2 * d:].copy_(scale * torch.randn((d, p.shape[1]), generator=gen, dtype=D64))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=D64))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=D64))


def put_mha(t, prefix, mha):
    D = mha.embed_dim
    w, b = mha.in_proj_weight.detach(), mha.in_proj_bias.detach()
    for j, n in enumerate("qkv"):
        t["%s.%s.weight" % (prefix, n)] = w[j * D:(j + 1) * D].clone()
        t["%s.%s.bias" % (prefix, n)] = b[j * D:(j + 1) * D].clone()
    t[prefix + ".o.weight"] = mha.out_proj.weight.detach().clone()
    t[prefix + ".o.bias"] = mha.out_proj.bias.detach().clone()


def put_norm(t, prefix, ln):
    t[prefix + ".weight"] = ln.weight.detach().clone()
    t[prefix + ".bias"] = ln.bias.detach().clone()


def put_encoder_layer(t, prefix, layer):
    put_mha(t, prefix + ".attn", layer.self_attn)
    put_norm(t, prefix + ".attn_norm", layer.norm1)
    put_norm(t, prefix + ".mlp_norm", layer.norm2)
    t[prefix + ".mlp.up.weight"] = layer.linear1.weight.detach().clone()
    t[prefix + ".mlp.up.bias"] = layer.linear1.bias.detach().clone()
    t[prefix + ".mlp.down.weight"] = layer.linear2.weight.detach().clone()
    t[prefix + ".mlp.down.bias"] = layer.linear2.bias.detach().clone()


def put_decoder_layer(t, prefix, layer):
    put_mha(t, prefix + ".attn", layer.self_attn)
    put_mha(t, prefix + ".cross", layer.multihead_attn)
    put_norm(t, prefix + ".attn_norm", layer.norm1)
    put_norm(t, prefix + ".cross_norm", layer.norm2)
    put_norm(t, prefix + ".mlp_norm", layer.norm3)
    t[prefix + ".mlp.up.weight"] = layer.linear1.weight.detach().clone()
    t[prefix + ".mlp.up.bias"] = layer.linear1.bias.detach().clone()
    t[prefix + ".mlp.down.weight"] = layer.linear2.weight.detach().clone()
    t[prefix + ".mlp.down.bias"] = layer.linear2.bias.detach().clone()


def base_cfg(**kw):
    cfg = dict(architecture="decoder", vocab_size=0, d_model=0, n_heads=1, n_kv_heads=1,
               head_dim=0, d_ff=0, max_seq_len=64, n_layers=1, n_encoder_layers=0,
               positional="none", rope_theta=10000.0, embed_scale=1.0, norm="layernorm",
               norm_eps=1e-5, norm_position="pre", final_norm=False, mlp="relu", bias=True,
               lm_head="none")
    cfg.update(kw)
    return cfg


def causal_mask(T):
    return torch.triu(torch.full((T, T), float("-inf"), dtype=D64), diagonal=1)


def mha_weights(mha, xq, xkv, mask=None):
    _, w = mha(xq[None], xkv[None], xkv[None], attn_mask=mask, need_weights=True,
               average_attn_weights=False)
    return w[0]  # [H, T, Tk]


# ---------------------------------------------------------------------------


def test_encoder_stack(gen, norm_first, activation, n_layers, final_norm):
    D, H, FF, T = 24, 3, 40, 9
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation,
                                       batch_first=True, norm_first=norm_first,
                                       layer_norm_eps=1e-5, dtype=D64)
    enc = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(D, dtype=D64) if final_norm else None,
                                enable_nested_tensor=False)
    randomize(enc, gen)
    enc.eval()
    t = {}
    for i, l in enumerate(enc.layers):
        put_encoder_layer(t, "blocks.%d" % i, l)
    if final_norm:
        put_norm(t, "norm", enc.norm)
    cfg = base_cfg(architecture="encoder", d_model=D, n_heads=H, n_kv_heads=H, head_dim=D // H,
                   d_ff=FF, n_layers=n_layers, norm_position="pre" if norm_first else "post",
                   final_norm=final_norm, mlp=activation)
    x = 1.5 * torch.randn((T, D), generator=gen, dtype=D64)
    name = "encoder %s %s L%d%s" % ("pre" if norm_first else "post", activation, n_layers,
                                     " +final" if final_norm else "")
    with torch.no_grad():
        maps = {}
        got = attn_ref.run_stack(cfg, t, "blocks", x, False, None, n_layers, "norm", "encoder", maps)
        want = enc(x[None])[0]
        check(name + " output", got, want)
        h = x[None]
        worst = 0.0
        for i, l in enumerate(enc.layers):
            a_in = l.norm1(h) if norm_first else h
            w = mha_weights(l.self_attn, a_in[0], a_in[0])
            for head in range(H):
                worst = max(worst, abs(torch.as_tensor(maps[("encoder", i, "self", head)]) - w[head]).max().item())
            h = l(h)
        results.append((name + " weights", worst, worst <= TOL))
        print("%s %-58s max|diff| = %.3g" % ("ok  " if worst <= TOL else "FAIL", name + " weights", worst))


def test_decoder_stack(gen, norm_first, activation, n_layers):
    D, H, FF, T, S = 32, 4, 48, 8, 11
    layer = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation=activation,
                                       batch_first=True, norm_first=norm_first, dtype=D64)
    dec = nn.TransformerDecoder(layer, n_layers, norm=None)
    randomize(dec, gen)
    dec.eval()
    t = {}
    for i, l in enumerate(dec.layers):
        put_decoder_layer(t, "blocks.%d" % i, l)
    cfg = base_cfg(architecture="encoder-decoder", d_model=D, n_heads=H, n_kv_heads=H,
                   head_dim=D // H, d_ff=FF, n_layers=n_layers,
                   norm_position="pre" if norm_first else "post", final_norm=False, mlp=activation)
    x = 1.5 * torch.randn((T, D), generator=gen, dtype=D64)
    mem = torch.randn((S, D), generator=gen, dtype=D64)
    name = "decoder %s %s L%d" % ("pre" if norm_first else "post", activation, n_layers)
    mask = causal_mask(T)
    with torch.no_grad():
        maps = {}
        got = attn_ref.run_stack(cfg, t, "blocks", x, True, mem, n_layers, "norm", "decoder", maps)
        want = dec(x[None], mem[None], tgt_mask=mask)[0]
        check(name + " output", got, want)
        h = x[None]
        worst = 0.0
        for i, l in enumerate(dec.layers):
            if norm_first:
                sa_in = l.norm1(h)
                w = mha_weights(l.self_attn, sa_in[0], sa_in[0], mask)
                h1 = h + l._sa_block(sa_in, mask, None)
                ca_in = l.norm2(h1)
            else:
                w = mha_weights(l.self_attn, h[0], h[0], mask)
                h1 = l.norm1(h + l._sa_block(h, mask, None))
                ca_in = h1
            wc = mha_weights(l.multihead_attn, ca_in[0], mem)
            for head in range(H):
                worst = max(worst, abs(torch.as_tensor(maps[("decoder", i, "self", head)]) - w[head]).max().item())
                worst = max(worst, abs(torch.as_tensor(maps[("decoder", i, "cross", head)]) - wc[head]).max().item())
            h = l(h, mem[None], tgt_mask=mask)
        results.append((name + " weights (self+cross)", worst, worst <= TOL))
        print("%s %-58s max|diff| = %.3g" % ("ok  " if worst <= TOL else "FAIL", name + " weights (self+cross)", worst))


def sinusoidal_tutorial(n, d):
    """The PyTorch tutorial's PositionalEncoding."""
    position = torch.arange(n, dtype=D64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=D64) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, dtype=D64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def test_full_transformer(gen, norm_first):
    """nn.Transformer (encoder.norm and decoder.norm, i.e. final_norm true) plus
    token embeddings * sqrt(d_model) + sinusoidal positions and a tied lm_head,
    against attn_ref.forward."""
    D, H, FF, V, T, S, L = 32, 4, 40, 20, 7, 9, 2
    tr = nn.Transformer(D, H, L, L, FF, dropout=0.0, activation="relu", batch_first=True,
                        norm_first=norm_first, dtype=D64)
    randomize(tr, gen)
    tr.eval()
    emb = 0.3 * torch.randn((V, D), generator=gen, dtype=D64)
    t = {"tok_embed": emb}
    for i, l in enumerate(tr.encoder.layers):
        put_encoder_layer(t, "encoder.blocks.%d" % i, l)
    for i, l in enumerate(tr.decoder.layers):
        put_decoder_layer(t, "blocks.%d" % i, l)
    put_norm(t, "encoder.norm", tr.encoder.norm)
    put_norm(t, "norm", tr.decoder.norm)
    cfg = base_cfg(architecture="encoder-decoder", vocab_size=V, d_model=D, n_heads=H,
                   n_kv_heads=H, head_dim=D // H, d_ff=FF, n_layers=L, n_encoder_layers=L,
                   positional="sinusoidal", embed_scale=math.sqrt(D),
                   norm_position="pre" if norm_first else "post", final_norm=True,
                   mlp="relu", lm_head="tied")
    ids = torch.randint(0, V, (T,), generator=gen).tolist()
    src = torch.randint(0, V, (S,), generator=gen).tolist()
    name = "nn.Transformer %s +embed/sinusoidal/tied" % ("pre" if norm_first else "post")
    with torch.no_grad():
        out = attn_ref.forward(cfg, t, ids, src)
        xs = emb[src] * math.sqrt(D) + sinusoidal_tutorial(S, D)
        xt = emb[ids] * math.sqrt(D) + sinusoidal_tutorial(T, D)
        mem = tr.encoder(xs[None])
        want = tr.decoder(xt[None], mem, tgt_mask=causal_mask(T))[0]
        check(name + " encoder out", out.encoder_hidden, mem[0])
        check(name + " hidden", out.hidden, want)
        check(name + " logits", out.logits, want @ emb.T)


def test_gpt2_like(gen):
    """A GPT-2 block is a pre-norm TransformerEncoderLayer with a causal mask and
    GELU; with learned positions, a final LayerNorm and a tied lm_head."""
    D, H, FF, V, T, L = 24, 4, 64, 30, 10, 2
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True, dtype=D64)
    enc = nn.TransformerEncoder(layer, L, norm=nn.LayerNorm(D, dtype=D64), enable_nested_tensor=False)
    randomize(enc, gen, qk_scale=0.3)
    enc.eval()
    emb = 0.2 * torch.randn((V, D), generator=gen, dtype=D64)
    pos = 0.1 * torch.randn((16, D), generator=gen, dtype=D64)
    t = {"tok_embed": emb, "pos_embed": pos}
    for i, l in enumerate(enc.layers):
        put_encoder_layer(t, "blocks.%d" % i, l)
    put_norm(t, "norm", enc.norm)
    cfg = base_cfg(architecture="decoder", vocab_size=V, d_model=D, n_heads=H, n_kv_heads=H,
                   head_dim=D // H, d_ff=FF, max_seq_len=16, n_layers=L, positional="learned",
                   norm_position="pre", final_norm=True, mlp="gelu", lm_head="tied")
    ids = torch.randint(0, V, (T,), generator=gen).tolist()
    with torch.no_grad():
        out = attn_ref.forward(cfg, t, ids)
        x = emb[ids] + pos[:T]
        mask = causal_mask(T)
        want = enc(x[None], mask=mask)[0]
        check("GPT-2-like causal pre-norm hidden", out.hidden, want)
        check("GPT-2-like logits", out.logits, want @ emb.T)
        h = x[None]
        worst = 0.0
        for i, l in enumerate(enc.layers):
            a = l.norm1(h)[0]
            w = mha_weights(l.self_attn, a, a, mask)
            for head in range(H):
                worst = max(worst, abs(torch.as_tensor(out.maps[("decoder", i, "self", head)]) - w[head]).max().item())
            h = l(h, src_mask=mask)
        results.append(("GPT-2-like causal weights", worst, worst <= TOL))
        print("%s %-58s max|diff| = %.3g" % ("ok  " if worst <= TOL else "FAIL", "GPT-2-like causal weights", worst))


def llama_rope(x, theta):
    """Meta Llama's apply_rotary_emb for one head, x [T, hd]."""
    T, hd = x.shape
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=D64)[: hd // 2] / hd))
    angles = torch.outer(torch.arange(T, dtype=D64), freqs)
    cis = torch.polar(torch.ones_like(angles), angles)
    xc = torch.view_as_complex(x.reshape(T, hd // 2, 2).contiguous())
    return torch.view_as_real(xc * cis).reshape(T, hd)


def test_rope(gen):
    for theta in (10000.0, 500000.0, 100.0):
        x = torch.randn((13, 8), generator=gen, dtype=D64)
        check("rope theta=%g vs Llama complex form" % theta, attn_ref.rope(x, theta), llama_rope(x, theta))


def test_sinusoidal():
    for d in (16, 24, 32):
        check("sinusoidal d=%d vs PyTorch tutorial" % d, attn_ref.sinusoidal_table(20, d), sinusoidal_tutorial(20, d))


def test_functions(gen):
    x = 3 * torch.randn((50, 16), generator=gen, dtype=D64)
    w = 1 + 0.2 * torch.randn(16, generator=gen, dtype=D64)
    b = 0.2 * torch.randn(16, generator=gen, dtype=D64)
    check("gelu (erf) vs F.gelu", attn_ref.gelu_erf(x), F.gelu(x))
    check("gelu_tanh vs F.gelu(approximate='tanh')", attn_ref.gelu_tanh(x), F.gelu(x, approximate="tanh"))
    check("relu vs F.relu", attn_ref.relu(x), F.relu(x))
    check("silu vs F.silu", attn_ref.silu(x), F.silu(x))
    check("layernorm vs F.layer_norm (eps 1e-6)", attn_ref.layer_norm(x, w, b, 1e-6),
          F.layer_norm(x, (16,), w, b, 1e-6))
    # RMSNorm as written in Meta's Llama: x * rsqrt(mean(x^2) + eps) * weight
    check("rmsnorm vs Llama form", attn_ref.rms_norm(x, w, 1e-5),
          x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w)
    s = 4 * torch.randn((6, 9), generator=gen, dtype=D64)
    check("softmax vs torch.softmax", attn_ref.softmax_rows(s), torch.softmax(s, -1))
    # SwiGLU MLP against F.silu form, no bias
    t = {"m.gate.weight": 0.3 * torch.randn((20, 16), generator=gen, dtype=D64),
         "m.up.weight": 0.3 * torch.randn((20, 16), generator=gen, dtype=D64),
         "m.down.weight": 0.3 * torch.randn((16, 20), generator=gen, dtype=D64)}
    cfg = base_cfg(mlp="swiglu", bias=False)
    want = (F.silu(x @ t["m.gate.weight"].T) * (x @ t["m.up.weight"].T)) @ t["m.down.weight"].T
    check("swiglu mlp vs F.silu form", attn_ref.mlp(cfg, t, "m", x), want)


def test_gqa(gen):
    """Grouped-query attention equals MultiheadAttention whose key/value heads
    are the kv heads repeated: query head h reads kv head h // (H/KV)."""
    D, H, T = 24, 6, 9
    for KV in (2, 3, 1):
        hd = D // H
        group = H // KV
        t = {"a.q.weight": 0.3 * torch.randn((H * hd, D), generator=gen, dtype=D64),
             "a.k.weight": 0.3 * torch.randn((KV * hd, D), generator=gen, dtype=D64),
             "a.v.weight": 0.3 * torch.randn((KV * hd, D), generator=gen, dtype=D64),
             "a.o.weight": 0.3 * torch.randn((D, H * hd), generator=gen, dtype=D64),
             "a.q.bias": 0.1 * torch.randn(H * hd, generator=gen, dtype=D64),
             "a.k.bias": 0.1 * torch.randn(KV * hd, generator=gen, dtype=D64),
             "a.v.bias": 0.1 * torch.randn(KV * hd, generator=gen, dtype=D64),
             "a.o.bias": 0.1 * torch.randn(D, generator=gen, dtype=D64)}
        cfg = base_cfg(d_model=D, n_heads=H, n_kv_heads=KV, head_dim=hd, bias=True)
        x = torch.randn((T, D), generator=gen, dtype=D64)

        def rep(w):  # [KV*hd, ...] -> [H*hd, ...]
            return torch.cat([w[(h // group) * hd:(h // group + 1) * hd] for h in range(H)], 0)

        mha = nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True, dtype=D64)
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.cat([t["a.q.weight"], rep(t["a.k.weight"]), rep(t["a.v.weight"])], 0))
            mha.in_proj_bias.copy_(torch.cat([t["a.q.bias"], rep(t["a.k.bias"]), rep(t["a.v.bias"])], 0))
            mha.out_proj.weight.copy_(t["a.o.weight"])
            mha.out_proj.bias.copy_(t["a.o.bias"])
            for causal in (False, True):
                mask = causal_mask(T) if causal else None
                out, ws = attn_ref.attention(cfg, t, "a", x, x, causal, False)
                want, wt = mha(x[None], x[None], x[None], attn_mask=mask, need_weights=True,
                               average_attn_weights=False)
                tag = "GQA H=6 KV=%d %s" % (KV, "causal" if causal else "bidir")
                check(tag + " output vs MHA(repeated kv)", out, want[0])
                check(tag + " weights", torch.stack(ws), wt[0])


def test_head_dim_rope_nobias(gen):
    """head_dim != d_model/n_heads, no biases, GQA and RoPE: MultiheadAttention
    with identity in/out projections run on inputs projected (and rotated with
    Llama's complex form) outside it, then the output projection."""
    D, H, KV, hd, T, S = 20, 6, 2, 8, 10, 7
    E = H * hd
    group = H // KV
    for theta in (10000.0, 500000.0):
        t = {"a.q.weight": 0.3 * torch.randn((E, D), generator=gen, dtype=D64),
             "a.k.weight": 0.3 * torch.randn((KV * hd, D), generator=gen, dtype=D64),
             "a.v.weight": 0.3 * torch.randn((KV * hd, D), generator=gen, dtype=D64),
             "a.o.weight": 0.3 * torch.randn((D, E), generator=gen, dtype=D64)}
        cfg = base_cfg(d_model=D, n_heads=H, n_kv_heads=KV, head_dim=hd, bias=False, rope_theta=theta)
        x = torch.randn((T, D), generator=gen, dtype=D64)
        mem = torch.randn((S, D), generator=gen, dtype=D64)
        mha = nn.MultiheadAttention(E, H, dropout=0.0, batch_first=True, bias=False, dtype=D64)
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.cat([torch.eye(E, dtype=D64)] * 3, 0))
            mha.out_proj.weight.copy_(torch.eye(E, dtype=D64))
            for use_rope, causal, kv_in in ((True, True, x), (True, False, x), (False, False, mem)):
                q = x @ t["a.q.weight"].T
                k = kv_in @ t["a.k.weight"].T
                v = kv_in @ t["a.v.weight"].T
                qh = [q[:, h * hd:(h + 1) * hd] for h in range(H)]
                kh = [k[:, g * hd:(g + 1) * hd] for g in range(KV)]
                if use_rope:
                    qh = [llama_rope(a, theta) for a in qh]
                    kh = [llama_rope(a, theta) for a in kh]
                kf = torch.cat([kh[h // group] for h in range(H)], 1)
                vf = torch.cat([v[:, (h // group) * hd:(h // group + 1) * hd] for h in range(H)], 1)
                mask = causal_mask(T) if causal else None
                ctx, wt = mha(torch.cat(qh, 1)[None], kf[None], vf[None], attn_mask=mask,
                              need_weights=True, average_attn_weights=False)
                want = ctx[0] @ t["a.o.weight"].T
                out, ws = attn_ref.attention(cfg, t, "a", x, kv_in, causal, use_rope)
                tag = "hd=8 D=20 H=6 KV=2 nobias %s%s%s" % ("rope %g " % theta if use_rope else "",
                                                           "causal" if causal else "bidir",
                                                           " cross" if kv_in is mem else "")
                check(tag + " output", out, want)
                check(tag + " weights", torch.stack(ws), wt[0])


def main():
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(20240611)
    test_functions(gen)
    test_rope(gen)
    test_sinusoidal()
    for norm_first in (False, True):
        for act in ("relu", "gelu"):
            test_encoder_stack(gen, norm_first, act, 1, False)
        test_encoder_stack(gen, norm_first, "gelu", 2, True)
        for act in ("relu", "gelu"):
            test_decoder_stack(gen, norm_first, act, 1)
        test_decoder_stack(gen, norm_first, "relu", 2)
        test_full_transformer(gen, norm_first)
    test_gpt2_like(gen)
    test_gqa(gen)
    test_head_dim_rope_nobias(gen)

    failed = [r for r in results if not r[2]]
    worst = max(results, key=lambda r: r[1])
    print("\nreference vs torch: %d checks, largest difference %.3g (%s), tolerance %g"
          % (len(results), worst[1], worst[0], TOL))
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
