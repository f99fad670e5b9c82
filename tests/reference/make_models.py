"""Builds small random models in attn's format, one per variant of docs/model-format.md.

    /usr/bin/python3 make_models.py OUTDIR      writes OUTDIR/<name>/config.json ...

As a library: build_all(root) -> [Spec], each with .name, .config (path),
.cfg (the config as written), .seq_len and .src_len (lengths to test with).

Weights are drawn from N(0, s^2) with s varying per tensor between 0.02 and
0.35 (queries and keys larger, so softmax is far from uniform); norm weights
are 1 + noise, biases random. Every model gets a word vocabulary whose tokens
include a few that need CSV quoting.
"""
import math
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tools"))
import attn_format  # noqa: E402

# Words the seed examples need, then tokens that need RFC 4180 quoting, then a
# non-ASCII one. The rest of a vocabulary is filled with w<N>.
BASE_WORDS = ["<unk>", "the", "sun", "rises", "in", "east", "cat", "sits", "on", "mat",
              ",", '"', 'say"hi"', "a,b", "caf\u00e9", "x\u00b2"]


def vocabulary(n):
    if n < len(BASE_WORDS):
        raise ValueError("vocab_size %d is too small" % n)
    return BASE_WORDS + ["w%d" % i for i in range(n - len(BASE_WORDS))]


class Spec:
    def __init__(self, name, cfg, seq_len, src_len=None, seed=0):
        self.name = name
        self.cfg = cfg
        self.seq_len = seq_len
        self.src_len = src_len
        self.seed = seed
        self.config = None  # path, once written


def _cfg(**kw):
    return kw


# The variants. Each option of docs/model-format.md appears at least once:
#   architecture decoder/encoder/encoder-decoder; positional learned/sinusoidal/
#   rope/none; rope_theta default/10000/500000; embed_scale 1/sqrt(d)/2.5;
#   norm layernorm/rmsnorm; norm_eps default/1e-6; norm_position pre/post;
#   final_norm default(pre->true, post->false)/explicit true/explicit false;
#   mlp relu/gelu/gelu_tanh/swiglu/none; bias true/false; n_kv_heads
#   = n_heads / 2-of-6 / 1 / 2-of-4; head_dim default and explicit != d/H;
#   lm_head none/tied/separate; embed_norm (an addition to the contract:
#   BERT's embedding LayerNorm) on an encoder and an encoder-decoder.
SPECS = [
    # (a) GPT-2-like decoder
    Spec("gpt2", _cfg(architecture="decoder", vocab_size=50, d_model=32, n_heads=4, d_ff=64,
                      max_seq_len=24, n_layers=2, positional="learned", norm="layernorm",
                      norm_position="pre", mlp="gelu", bias=True, lm_head="tied"),
         seq_len=16, seed=101),
    # (b) BERT-like encoder
    Spec("bert", _cfg(architecture="encoder", vocab_size=45, d_model=24, n_heads=3, d_ff=48,
                      max_seq_len=20, n_layers=2, positional="sinusoidal",
                      embed_scale=math.sqrt(24), norm="layernorm", norm_position="post",
                      mlp="relu", bias=True, lm_head="none", embed_norm=True),
         seq_len=12, seed=102),
    # (c) the original Transformer
    Spec("transformer", _cfg(architecture="encoder-decoder", vocab_size=60, d_model=32,
                             n_heads=4, d_ff=64, max_seq_len=20, n_layers=2, n_encoder_layers=3,
                             positional="sinusoidal", embed_scale=math.sqrt(32),
                             norm="layernorm", norm_position="post", mlp="relu", bias=True,
                             lm_head="tied"),
         seq_len=9, src_len=14, seed=103),
    # (d) Llama-like decoder, rope_theta 10000, sequence as long as max_seq_len
    Spec("llama", _cfg(architecture="decoder", vocab_size=64, d_model=36, n_heads=6,
                       n_kv_heads=2, head_dim=8, d_ff=72, max_seq_len=20, n_layers=2,
                       positional="rope", rope_theta=10000, norm="rmsnorm", norm_eps=1e-6,
                       norm_position="pre", mlp="swiglu", bias=False, lm_head="separate"),
         seq_len=20, seed=104),
    # (d') Llama-like, rope_theta 500000, 3 layers, final_norm explicitly false
    Spec("llama-theta500k", _cfg(architecture="decoder", vocab_size=40, d_model=48, n_heads=6,
                                 n_kv_heads=2, head_dim=12, d_ff=64, max_seq_len=32,
                                 n_layers=3, positional="rope", rope_theta=500000.0,
                                 norm="rmsnorm", norm_position="pre", final_norm=False,
                                 mlp="swiglu", bias=False, lm_head="separate"),
         seq_len=13, seed=105),
    # (e) multi-query decoder, GELU-tanh, rope with the default theta (key absent)
    Spec("mqa-gelu-tanh", _cfg(architecture="decoder", vocab_size=48, d_model=32, n_heads=4,
                               n_kv_heads=1, d_ff=48, max_seq_len=16, n_layers=2,
                               positional="rope", norm="layernorm", norm_position="pre",
                               mlp="gelu_tanh", bias=True, lm_head="none"),
         seq_len=11, seed=106),
    # attention-only decoder: no positions, no MLP, post-rmsnorm with final_norm
    # explicitly true (the post default is false)
    Spec("attn-only-nopos", _cfg(architecture="decoder", vocab_size=30, d_model=16, n_heads=2,
                                 d_ff=32, max_seq_len=12, n_layers=2, positional="none",
                                 norm="rmsnorm", norm_position="post", final_norm=True,
                                 mlp="none", bias=False, lm_head="none"),
         seq_len=7, seed=107),
    # pre-norm encoder-decoder with rmsnorm, rope (self-attention only), swiglu,
    # grouped heads with head_dim != d_model/n_heads, final norms by default
    Spec("prenorm-encdec-rope", _cfg(architecture="encoder-decoder", vocab_size=36,
                                     d_model=20, n_heads=4, n_kv_heads=2, head_dim=6,
                                     d_ff=40, max_seq_len=16, n_layers=2, n_encoder_layers=1,
                                     positional="rope", rope_theta=10000.0, norm="rmsnorm",
                                     norm_position="pre", mlp="swiglu", bias=False,
                                     lm_head="separate"),
         seq_len=10, src_len=8, seed=108),
    # pre-norm encoder without final norm, learned positions, grouped heads
    Spec("encoder-pre-nofinal", _cfg(architecture="encoder", vocab_size=40, d_model=32,
                                     n_heads=4, n_kv_heads=2, d_ff=40, max_seq_len=18,
                                     n_layers=2, positional="learned", norm="layernorm",
                                     norm_eps=1e-6, norm_position="pre", final_norm=False,
                                     mlp="gelu", bias=True, lm_head="separate"),
         seq_len=15, seed=109),
    # post-norm encoder-decoder with final norms explicitly on, learned
    # positions, embed_scale 2.5, GELU, grouped heads, explicit head_dim
    Spec("encdec-post-final", _cfg(architecture="encoder-decoder", vocab_size=42, d_model=24,
                                   n_heads=4, n_kv_heads=2, head_dim=5, d_ff=36,
                                   max_seq_len=20, n_layers=1, n_encoder_layers=2,
                                   positional="learned", embed_scale=2.5, norm="layernorm",
                                   norm_position="post", final_norm=True, mlp="gelu",
                                   bias=True, lm_head="none", embed_norm=True),
         seq_len=6, src_len=17, seed=110),
    # encoder without positions or MLP, pre-rmsnorm, one layer, tied head
    Spec("encoder-attn-only", _cfg(architecture="encoder", vocab_size=32, d_model=16,
                                   n_heads=4, d_ff=16, max_seq_len=10, n_layers=1,
                                   positional="none", norm="rmsnorm", norm_position="pre",
                                   mlp="none", bias=True, lm_head="tied"),
         seq_len=5, seed=111),
]


def _defaults(cfg):
    c = dict(cfg)
    c.setdefault("n_kv_heads", c["n_heads"])
    c.setdefault("head_dim", c["d_model"] // c["n_heads"])
    c.setdefault("final_norm", c["norm_position"] == "pre")
    return c


def random_tensors(cfg, seed):
    """Every tensor of docs/model-format.md (tensor names) that cfg needs, in a readable order."""
    rng = np.random.RandomState(seed)
    c = _defaults(cfg)
    D, H, KV, hd, F = c["d_model"], c["n_heads"], c["n_kv_heads"], c["head_dim"], c["d_ff"]
    bias = c["bias"]
    t = {}

    def w(name, shape, lo=0.02, hi=0.3):
        s = rng.uniform(lo, hi)
        t[name] = rng.normal(0.0, s, size=shape)

    def b(name, n):
        if bias:
            t[name] = rng.normal(0.0, rng.uniform(0.02, 0.2), size=n)

    def norm(prefix):
        t[prefix + ".weight"] = 1.0 + rng.normal(0.0, 0.15, size=D)
        if c["norm"] == "layernorm":
            t[prefix + ".bias"] = rng.normal(0.0, 0.1, size=D)

    def attn(prefix):
        w(prefix + ".q.weight", (H * hd, D), 0.15, 0.35)
        b(prefix + ".q.bias", H * hd)
        w(prefix + ".k.weight", (KV * hd, D), 0.15, 0.35)
        b(prefix + ".k.bias", KV * hd)
        w(prefix + ".v.weight", (KV * hd, D))
        b(prefix + ".v.bias", KV * hd)
        w(prefix + ".o.weight", (D, H * hd))
        b(prefix + ".o.bias", D)

    def block(prefix, cross):
        norm(prefix + ".attn_norm")
        attn(prefix + ".attn")
        if cross:
            norm(prefix + ".cross_norm")
            attn(prefix + ".cross")
        if c["mlp"] != "none":
            norm(prefix + ".mlp_norm")
            w(prefix + ".mlp.up.weight", (F, D))
            b(prefix + ".mlp.up.bias", F)
            if c["mlp"] == "swiglu":
                w(prefix + ".mlp.gate.weight", (F, D))
                b(prefix + ".mlp.gate.bias", F)
            w(prefix + ".mlp.down.weight", (D, F))
            b(prefix + ".mlp.down.bias", D)

    w("tok_embed", (c["vocab_size"], D), 0.1, 0.5)
    if c["positional"] == "learned":
        w("pos_embed", (c["max_seq_len"], D), 0.05, 0.3)
    if c.get("embed_norm", False):
        norm("embed_norm")
        if c["architecture"] == "encoder-decoder":
            norm("encoder.embed_norm")
    if c["architecture"] == "encoder-decoder":
        for i in range(c["n_encoder_layers"]):
            block("encoder.blocks.%d" % i, False)
        if c["final_norm"]:
            norm("encoder.norm")
    for i in range(c["n_layers"]):
        block("blocks.%d" % i, c["architecture"] == "encoder-decoder")
    if c["final_norm"]:
        norm("norm")
    if c["lm_head"] == "separate":
        w("lm_head.weight", (c["vocab_size"], D))
    return t


def build(spec, root):
    folder = os.path.join(root, spec.name)
    spec.config = attn_format.write_model(folder, spec.cfg, random_tensors(spec.cfg, spec.seed),
                                          vocab=vocabulary(spec.cfg["vocab_size"]))
    return spec


def build_all(root, names=None):
    return [build(s, root) for s in SPECS if names is None or s.name in names]


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    for s in build_all(argv[1]):
        print(s.config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
