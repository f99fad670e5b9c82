#!/usr/bin/python3
"""Independent float64 reference of llama2.c's stories260K model.

Reads the llama2.c checkpoint (stories260K.bin) directly, following the
layout written down in shared/models/stories260K/PROVENANCE.md; it does not
use attn's converted files or any attn code.

    model = load_checkpoint(path)
    out = forward(model, ids)      # maps [L, H, T, T], hidden [T, D], logits [T, V]
    greedy(model, ids, steps)      # generated ids (ties -> lowest id)
    greedy(model, ids, steps, use_cache=True)   # same, with a key/value cache

Run directly to print the greedy story from BOS (needs no tokenizer encoder):
    /usr/bin/python3 stories260k_ref.py CHECKPOINT TOKENIZER [STEPS]
"""
import math
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

HEADER_FIELDS = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                 "seq_len")
NORM_EPS = 1e-5
ROPE_THETA = 10000.0


class Model:
    pass


def load_checkpoint(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 28:
        raise ValueError("%s: shorter than the 28-byte header" % path)
    hdr = dict(zip(HEADER_FIELDS, struct.unpack("<7i", raw[:28])))
    m = Model()
    m.shared = hdr["vocab_size"] > 0
    m.vocab = abs(hdr["vocab_size"])
    m.dim, m.hidden, m.n_layers = hdr["dim"], hdr["hidden_dim"], hdr["n_layers"]
    m.n_heads, m.n_kv, m.seq_len = hdr["n_heads"], hdr["n_kv_heads"], hdr["seq_len"]
    m.hd = m.dim // m.n_heads
    kvd = m.n_kv * m.hd
    floats = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > floats.size:
            raise ValueError("%s: file ends inside the weights" % path)
        t = torch.from_numpy(floats[pos:pos + n].astype(np.float64).reshape(shape))
        pos += n
        return t

    L, D, F = m.n_layers, m.dim, m.hidden
    m.embed = take(m.vocab, D)
    m.attn_norm = take(L, D)
    m.wq = take(L, D, D)
    m.wk = take(L, kvd, D)
    m.wv = take(L, kvd, D)
    m.wo = take(L, D, D)
    m.mlp_norm = take(L, D)
    m.w1 = take(L, F, D)
    m.w2 = take(L, D, F)
    m.w3 = take(L, F, D)
    m.final_norm = take(D)
    take(m.seq_len, m.hd // 2)  # legacy rotary cos table, unused
    take(m.seq_len, m.hd // 2)  # legacy rotary sin table, unused
    m.classifier = m.embed if m.shared else take(m.vocab, D)
    if pos != floats.size:
        raise ValueError("%s: %d unexplained trailing floats" % (path, floats.size - pos))
    return m


def rmsnorm(x, w):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + NORM_EPS) * w


def rope(x, positions, hd):
    """x [T, n, hd]; rotates each interleaved pair (2i, 2i+1) by pos * theta^(-2i/hd)."""
    i2 = torch.arange(0, hd, 2, dtype=torch.float64)
    freq = ROPE_THETA ** (-i2 / hd)                                   # [hd/2]
    ang = torch.as_tensor(positions, dtype=torch.float64)[:, None] * freq[None, :]  # [T, hd/2]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def _block_attention(m, l, h, positions, cache):
    """h [T, D] normed input for new positions; cache: dict(k=[..], v=[..]) per layer or None."""
    T = h.shape[0]
    q = (h @ m.wq[l].T).view(T, m.n_heads, m.hd)
    k = (h @ m.wk[l].T).view(T, m.n_kv, m.hd)
    v = (h @ m.wv[l].T).view(T, m.n_kv, m.hd)
    q, k = rope(q, positions, m.hd), rope(k, positions, m.hd)
    if cache is not None:
        cache["k"][l] = k if cache["k"][l] is None else torch.cat([cache["k"][l], k])
        cache["v"][l] = v if cache["v"][l] is None else torch.cat([cache["v"][l], v])
        k, v = cache["k"][l], cache["v"][l]
    Tk = k.shape[0]
    group = m.n_heads // m.n_kv
    weights = torch.zeros(m.n_heads, T, Tk)
    ctx = torch.empty(T, m.n_heads, m.hd)
    key_pos = torch.arange(Tk)
    for hh in range(m.n_heads):
        kv = hh // group
        scores = q[:, hh, :] @ k[:, kv, :].T / math.sqrt(m.hd)        # [T, Tk]
        mask = key_pos[None, :] > torch.as_tensor(positions)[:, None]
        scores = scores.masked_fill(mask, float("-inf"))
        w = torch.softmax(scores, dim=-1)
        weights[hh] = w
        ctx[:, hh, :] = w @ v[:, kv, :]
    return ctx.reshape(T, m.dim) @ m.wo[l].T, weights


def forward(m, ids, cache=None, start=0):
    """Runs ids at positions start.. . Returns dict(maps=[L, H, T, Tk], hidden, logits)."""
    ids = torch.as_tensor(list(ids), dtype=torch.long)
    T = ids.shape[0]
    if start + T > m.seq_len:
        raise ValueError("sequence longer than seq_len")
    positions = list(range(start, start + T))
    x = m.embed[ids].clone()
    maps = []
    for l in range(m.n_layers):
        a, w = _block_attention(m, l, rmsnorm(x, m.attn_norm[l]), positions, cache)
        x = x + a
        hn = rmsnorm(x, m.mlp_norm[l])
        gate, up = hn @ m.w1[l].T, hn @ m.w3[l].T
        x = x + (torch.nn.functional.silu(gate) * up) @ m.w2[l].T
        maps.append(w)
    hidden = rmsnorm(x, m.final_norm)
    logits = hidden @ m.classifier.T
    return {"maps": torch.stack(maps), "hidden": hidden, "logits": logits}


def argmax_lowest(row):
    """Index of the largest value; ties go to the lowest index."""
    best = torch.max(row)
    return int(torch.nonzero(row == best)[0, 0])


def greedy(m, ids, steps, use_cache=False):
    ids = list(ids)
    out = []
    if use_cache:
        cache = {"k": [None] * m.n_layers, "v": [None] * m.n_layers}
        logits = forward(m, ids, cache, 0)["logits"][-1]
        pos = len(ids)
        for _ in range(steps):
            nxt = argmax_lowest(logits)
            out.append(nxt)
            if len(out) == steps:
                break
            logits = forward(m, [nxt], cache, pos)["logits"][-1]
            pos += 1
        return out
    for _ in range(steps):
        nxt = argmax_lowest(forward(m, ids + out)["logits"][-1])
        out.append(nxt)
    return out


def read_pieces(path):
    """The llama2.c tokenizer file as a list of piece byte strings (for decoding only)."""
    with open(path, "rb") as f:
        raw = f.read()
    pos = 4
    pieces = []
    while pos < len(raw):
        _score, n = struct.unpack_from("<fi", raw, pos)
        pos += 8
        pieces.append(raw[pos:pos + n])
        pos += n
    return pieces


def decode(pieces, ids, prev=-1, bos=1):
    """Text of ids following token prev (-1: start) as llama2.c prints it."""
    out = b""
    for i in ids:
        p = pieces[i]
        if prev == bos and p.startswith(b" "):
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            p = bytes([int(p[3:5], 16)])
        out += p
        prev = i
    return out.decode("utf-8", errors="replace")


if __name__ == "__main__":
    ckpt, tok = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    model = load_checkpoint(ckpt)
    gen = greedy(model, [1], steps, use_cache=True)
    print(gen)
    print(decode(read_pieces(tok), gen, prev=1))
