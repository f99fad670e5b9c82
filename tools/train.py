#!/usr/bin/python3
"""Trains attn's toy models on the corpora in data/ and writes them in attn's format.

    /usr/bin/python3 tools/train.py tiny-decoder      [--out DIR] [--data DIR]
    /usr/bin/python3 tools/train.py tiny-encoder
    /usr/bin/python3 tools/train.py tiny-translator
    /usr/bin/python3 tools/train.py tiny-induction    (a copying task: induction heads)
    /usr/bin/python3 tools/train.py all

Each model is written to models/NAME/ (or --out): config.json,
model.safetensors, vocab.txt and metrics.json (held-out scores). Training is
seeded and deterministic on the CPU (one thread, deterministic algorithms, no
dropout), and it calls no BLAS routine: torch would hand every matrix product
to the system's libblas.so.3, and the reference BLAS and OpenBLAS round
differently, so the products are done below by torch's own elementwise
kernels (see "Matrix products without BLAS"). The same command with the same
torch and numpy rebuilds these files bit for bit whichever libblas.so.3 is
installed; tools/check_models_reproducible.sh checks that. (The bits do
depend on the CPU kernels torch picks: AVX2 on any x86-64 CPU that has it,
which is torch 1.13's default even with AVX-512; ATEN_CPU_CAPABILITY=default
or avx512, or a CPU without AVX2, gives other bits.)

The PyTorch modules below follow attn's model definition (docs and CONTRACT
section 1) and name their parameters as attn's tensors (section 2), so
exporting is a straight copy of the state dict. After training, the exported
files are read back and run through tools/forward64.py (an independent float64
numpy forward); the script stops if that disagrees with the PyTorch module.

The translator is trained with an auxiliary guided-alignment loss (as in
Garg et al. 2019, "Jointly Learning to Align and Translate with Transformer
Models"): the head-averaged cross-attention of its last decoder layer is
pulled towards the word alignment recorded in data/parallel.tsv (weight 0.5).
Without it, the cross-attention of these tiny models picked the aligned source
word for only about 65-68% of held-out target words (their translations were
just as good): the encoder mixes neighbouring words, so the decoder can read a
word's content from other positions.

Needs torch (1.13 tested) and numpy; run with /usr/bin/python3.
"""
import argparse
import collections
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
import attn_format  # noqa: E402
import forward64  # noqa: E402

# --------------------------------------------------------------------------
# Model definitions (attn's config keys)

CONFIGS = {
    # GPT-2 style: learned positions, pre-LayerNorm, GELU, biases, tied head.
    "tiny-decoder": dict(architecture="decoder", d_model=64, n_heads=4, d_ff=256, n_layers=2,
                         max_seq_len=32, positional="learned", norm="layernorm", norm_eps=1e-5,
                         norm_position="pre", final_norm=True, mlp="gelu", bias=True,
                         lm_head="tied"),
    # BERT style: sinusoidal positions, post-LayerNorm, GELU, tied head (masked words).
    "tiny-encoder": dict(architecture="encoder", d_model=64, n_heads=4, d_ff=256, n_layers=2,
                         max_seq_len=32, positional="sinusoidal", norm="layernorm", norm_eps=1e-5,
                         norm_position="post", final_norm=False, mlp="gelu", bias=True,
                         lm_head="tied"),
    # Original Transformer style: sinusoidal, embeddings * sqrt(d_model), post-norm, ReLU.
    "tiny-translator": dict(architecture="encoder-decoder", d_model=64, n_heads=2, d_ff=256,
                            n_layers=2, n_encoder_layers=2, max_seq_len=32, positional="sinusoidal",
                            embed_scale=8.0, norm="layernorm", norm_eps=1e-5, norm_position="post",
                            final_norm=False, mlp="relu", bias=True, lm_head="separate"),
    # GPT-2 style, smaller, trained to copy: "k f q a k f q a" (activation patching's example).
    "tiny-induction": dict(architecture="decoder", d_model=32, n_heads=2, d_ff=64, n_layers=2,
                           max_seq_len=32, positional="learned", norm="layernorm", norm_eps=1e-5,
                           norm_position="pre", final_norm=True, mlp="gelu", bias=True,
                           lm_head="tied"),
}

TRAINING = {
    "tiny-decoder": dict(seed=1, steps=1500, batch=64, lr=3e-3, warmup=200, weight_decay=0.01),
    "tiny-encoder": dict(seed=2, steps=4000, batch=64, lr=2e-3, warmup=300, weight_decay=0.01),
    "tiny-translator": dict(seed=3, steps=1000, batch=64, lr=1.5e-3, warmup=300, weight_decay=0.01,
                            align_weight=0.5, align_layer=1),
    "tiny-induction": dict(seed=4, steps=2500, batch=64, lr=3e-3, warmup=200, weight_decay=0.01,
                           min_len=3, max_len=8),
}

UNK, MASK, BOS, EOS = "<unk>", "<mask>", "<s>", "</s>"

# The tokenizer keys of each model's config.json after "type", "vocab",
# "lowercase" and "unk", in this order. The translator's </s> ends generation
# (attn generate stops there), but its tokenizer does not append it to a text
# ("add_eos": false): the sources were trained without it, and a decoder prompt
# is to be continued. (tests/models/test_config_writer.py checks that export()
# writes the committed config.json files.)
TOKENIZERS = {
    "tiny-decoder": {"bos": None, "eos": None},
    "tiny-encoder": {"bos": None, "eos": None},
    "tiny-translator": {"bos": BOS, "eos": EOS, "add_eos": False},
    "tiny-induction": {"bos": None, "eos": None},
}


# --------------------------------------------------------------------------
# Matrix products without BLAS
#
# On the CPU, torch hands float32 matrix products (mm, bmm, addmm, matmul and
# so nn.Linear and "@") to the system's libblas.so.3: the reference BLAS and
# OpenBLAS (and OpenBLAS on different CPUs) sum in different orders, so the
# trained weights differed in the last bits, and after 1,000-2,000 steps
# everywhere. Every product of the models below is therefore computed here
# instead, by torch's own elementwise kernels: out = sum over k, in order
# k = 0, 1, ..., of the outer products a[..., :, k] b[..., k, :] (in-place
# addcmul). Each element is summed in a fixed order whatever BLAS is installed.
# Elementwise ops, reductions, softmax, LayerNorm, the embedding lookup and
# AdamW do not use BLAS (checked: hashes of their outputs are the same with
# either library; the trained files too, see check_models_reproducible.sh).
# With one thread this is as fast as the reference BLAS for these shapes.

def _outer_sum(a, b):
    """a [..., n, k] @ b [..., k, m] as k in-place outer-product additions."""
    b = b.contiguous()  # rows of b contiguous: the additions run along them
    out = a[..., :, 0:1] * b[..., 0:1, :]
    for i in range(1, a.shape[-1]):
        out.addcmul_(a[..., :, i:i + 1], b[..., i:i + 1, :])
    return out


class _MatMul(torch.autograd.Function):
    """a [..., n, k] @ b [..., k, m] (same leading dims), forward and backward without BLAS."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _outer_sum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = _outer_sum(g, b.transpose(-1, -2)) if ctx.needs_input_grad[0] else None
        gb = _outer_sum(a.transpose(-1, -2), g) if ctx.needs_input_grad[1] else None
        return ga, gb


class _Linear(torch.autograd.Function):
    """x [..., k] W[m, k]^T (+ bias) without BLAS."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _outer_sum(x.reshape(-1, x.shape[-1]), w.t()).reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _outer_sum(g.reshape(-1, g.shape[-1]), w).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            if x.dim() == 3:  # [B, T, k]: per sentence over its T positions, then over B
                gw = _outer_sum(g.transpose(1, 2), x).sum(0)
            else:
                gw = _outer_sum(g.reshape(-1, g.shape[-1]).t(), x.reshape(-1, x.shape[-1]))
        return gx, gw


def matmul(a, b):
    return _MatMul.apply(a, b)


def linear(x, w, bias=None):
    y = _Linear.apply(x, w)
    return y if bias is None else y + bias


class Linear(nn.Linear):
    """nn.Linear (same parameters, names and initialisation) whose product avoids BLAS."""

    def forward(self, x):
        return linear(x, self.weight, self.bias)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.h = c["d_model"], c["n_heads"]
        self.hd = d // self.h
        self.q = Linear(d, d, bias=c["bias"])
        self.k = Linear(d, d, bias=c["bias"])
        self.v = Linear(d, d, bias=c["bias"])
        self.o = Linear(d, d, bias=c["bias"])

    def forward(self, xq, xkv, causal, keep=None):
        B, T, D = xq.shape
        Tk = xkv.shape[1]
        q = self.q(xq).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(xkv).view(B, Tk, self.h, self.hd).transpose(1, 2)
        v = self.v(xkv).view(B, Tk, self.h, self.hd).transpose(1, 2)
        s = matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd)
        if causal:
            s = s.masked_fill(~torch.ones(T, Tk, dtype=torch.bool).tril(), float("-inf"))
        w = torch.softmax(s, dim=-1)
        if keep is not None:
            keep.append(w)
        return self.o(matmul(w, v).transpose(1, 2).reshape(B, T, D))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.act = c["mlp"]
        self.up = Linear(c["d_model"], c["d_ff"], bias=c["bias"])
        self.down = Linear(c["d_ff"], c["d_model"], bias=c["bias"])

    def forward(self, x):
        u = self.up(x)
        return self.down(F.relu(u) if self.act == "relu" else F.gelu(u))


class Block(nn.Module):
    def __init__(self, c, cross):
        super().__init__()
        d = c["d_model"]
        self.pre = c["norm_position"] == "pre"
        self.attn_norm = nn.LayerNorm(d, eps=c["norm_eps"])
        self.attn = Attention(c)
        if cross:
            self.cross_norm = nn.LayerNorm(d, eps=c["norm_eps"])
            self.cross = Attention(c)
        self.mlp_norm = nn.LayerNorm(d, eps=c["norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, causal, enc=None, keep=None):
        subs = [(self.attn_norm, lambda h: self.attn(h, h, causal, keep))]
        if enc is not None:
            subs.append((self.cross_norm, lambda h: self.cross(h, enc, False, keep)))
        subs.append((self.mlp_norm, self.mlp))
        for norm, f in subs:
            x = x + f(norm(x)) if self.pre else norm(x + f(x))
        return x


class Encoder(nn.Module):
    """The encoder stack of an encoder-decoder (tensor prefix "encoder.")."""

    def __init__(self, c):
        super().__init__()
        self.blocks = nn.ModuleList(Block(c, False) for _ in range(c["n_encoder_layers"]))
        if c["final_norm"]:
            self.norm = nn.LayerNorm(c["d_model"], eps=c["norm_eps"])


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, V = c["d_model"], c["vocab_size"]
        self.tok_embed = nn.Parameter(torch.randn(V, d) * (d ** -0.5 if c.get("embed_scale", 1) != 1 else 0.02))
        if c["positional"] == "learned":
            self.pos_embed = nn.Parameter(torch.randn(c["max_seq_len"], d) * 0.02)
        else:
            pe = torch.from_numpy(forward64.sinusoidal(c["max_seq_len"], d)).float()
            self.register_buffer("pe", pe, persistent=False)
        if c["architecture"] == "encoder-decoder":
            self.encoder = Encoder(c)
        self.blocks = nn.ModuleList(Block(c, c["architecture"] == "encoder-decoder")
                                    for _ in range(c["n_layers"]))
        if c["final_norm"]:
            self.norm = nn.LayerNorm(d, eps=c["norm_eps"])
        if c["lm_head"] == "separate":
            self.lm_head = Linear(d, V, bias=False)
        for name, p in self.named_parameters():
            if name.endswith(".weight") and p.dim() == 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith(".bias") and "norm" not in name:
                nn.init.zeros_(p)

    def embed(self, ids):
        x = F.embedding(ids, self.tok_embed) * self.c.get("embed_scale", 1.0)
        T = ids.shape[1]
        return x + (self.pos_embed[:T] if self.c["positional"] == "learned" else self.pe[:T])

    def encode(self, src, keep=None):
        x = self.embed(src)
        for b in self.encoder.blocks:
            x = b(x, False, None, keep)
        return self.encoder.norm(x) if self.c["final_norm"] else x

    def forward(self, ids, src=None, keep=None, enc=None):
        """ids [B, T] (and src [B, S], or its encoder output enc) -> (hidden [B, T, D], logits [B, T, V])."""
        if enc is None and src is not None:
            enc = self.encode(src, keep)
        x = self.embed(ids)
        causal = self.c["architecture"] != "encoder"
        for b in self.blocks:
            x = b(x, causal, enc, keep)
        if self.c["final_norm"]:
            x = self.norm(x)
        head = self.lm_head.weight if self.c["lm_head"] == "separate" else self.tok_embed
        return x, linear(x, head)


# --------------------------------------------------------------------------
# Data

def read_corpus(data):
    out = {"train": [], "test": []}
    with open(os.path.join(data, "corpus.txt")) as f:
        for line in f:
            split, text = line.rstrip("\n").split("\t")
            out[split].append(text.split())
    return out


def read_parallel(data):
    out = {"train": [], "test": []}
    with open(os.path.join(data, "parallel.tsv")) as f:
        next(f)
        for line in f:
            split, src, tgt, align = line.rstrip("\n").split("\t")
            pairs = [tuple(map(int, a.split("-"))) for a in align.split()]
            out[split].append((src.split(), tgt.split(), pairs))
    return out


def make_vocab(specials, sentences):
    words = sorted(set(w for s in sentences for w in s) - set(specials))
    return list(specials) + words


def by_length(seqs):
    """{length: [indices of the sequences that long]}, in order of length and index."""
    out = collections.defaultdict(list)
    for i, s in enumerate(seqs):
        out[len(s)].append(i)
    return dict(sorted(out.items()))


def batches_by_length(seqs, batch, rng):
    """Lists of indices of equally long sequences (no padding needed), shuffled."""
    by_len = collections.defaultdict(list)
    for i, s in enumerate(seqs):
        by_len[len(s)].append(i)
    out = []
    for n in sorted(by_len):
        idx = by_len[n]
        perm = rng.permutation(len(idx))
        for k in range(0, len(idx), batch):
            out.append([idx[j] for j in perm[k:k + batch]])
    order = rng.permutation(len(out))
    return [out[i] for i in order]


class Batcher:
    def __init__(self, seqs, batch, seed):
        self.seqs, self.batch = seqs, batch
        self.rng = np.random.RandomState(seed)
        self.queue = []

    def next(self):
        if not self.queue:
            self.queue = batches_by_length(self.seqs, self.batch, self.rng)
        return self.queue.pop()


def lr_at(step, t):
    if step < t["warmup"]:
        return t["lr"] * (step + 1) / t["warmup"]
    p = (step - t["warmup"]) / max(1, t["steps"] - t["warmup"])
    return t["lr"] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def setup(seed):
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def optimizer(model, t):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    rest = [p for n, p in model.named_parameters() if p.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}], lr=t["lr"])


def train_loop(model, t, loss_fn, log_every=500):
    opt = optimizer(model, t)
    model.train()
    for step in range(t["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, t)
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % log_every == 0 or step == 0:
            print("  step %5d  loss %.4f" % (step + 1, loss.item()), flush=True)
    model.eval()


# --------------------------------------------------------------------------
# The three models

def train_decoder(data, t):
    corpus = read_corpus(data)
    vocab = make_vocab([UNK], corpus["train"])
    ix = {w: i for i, w in enumerate(vocab)}
    enc = lambda s: [ix.get(w, 0) for w in s]  # noqa: E731
    train = [enc(s) for s in corpus["train"]]
    test = [enc(s) for s in corpus["test"]]
    model = Transformer(dict(CONFIGS["tiny-decoder"], vocab_size=len(vocab)))
    batcher = Batcher(train, t["batch"], t["seed"])

    def loss_fn(step):
        x = torch.tensor([train[i] for i in batcher.next()])
        _, logits = model(x[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))

    train_loop(model, t, loss_fn)
    # held-out next-word accuracy: every position but the first is predicted from its prefix
    # (sentences of one length are run as one batch)
    preds = {}
    with torch.no_grad():
        for idx in by_length(test).values():
            _, logits = model(torch.tensor([test[i][:-1] for i in idx]))
            for i, p in zip(idx, logits.argmax(-1).tolist()):
                preds[i] = p
    ok = ok_words = n = n_words = 0
    freq = collections.Counter()
    for i, s in enumerate(test):
        for p, y in zip(preds[i], s[1:]):
            ok += p == y
            n += 1
            freq[y] += 1
            if vocab[y] != ".":
                ok_words += p == y
                n_words += 1
    top, top_n = freq.most_common(1)[0]
    metrics = {"heldout_sentences": len(test), "heldout_predictions": n,
               "next_word_accuracy": ok / n, "most_frequent_word": vocab[top],
               "most_frequent_word_accuracy": top_n / n, "ratio": (ok / n) / (top_n / n),
               "next_word_accuracy_without_full_stop": ok_words / n_words}
    return model, vocab, TOKENIZERS["tiny-decoder"], metrics


def train_encoder(data, t):
    corpus = read_corpus(data)
    vocab = make_vocab([UNK, MASK], corpus["train"])
    ix = {w: i for i, w in enumerate(vocab)}
    enc = lambda s: [ix.get(w, 0) for w in s]  # noqa: E731
    train = [enc(s) for s in corpus["train"]]
    test = [enc(s) for s in corpus["test"]]
    model = Transformer(dict(CONFIGS["tiny-encoder"], vocab_size=len(vocab)))
    batcher = Batcher(train, t["batch"], t["seed"])
    gen = torch.Generator().manual_seed(t["seed"])
    n_special = 2

    def loss_fn(step):
        x = torch.tensor([train[i] for i in batcher.next()])
        # BERT masking: 15% of positions (at least one per sentence) are predicted;
        # of those 80% become <mask>, 10% a random word, 10% stay.
        r = torch.rand(x.shape, generator=gen)
        chosen = r < 0.15
        first = torch.randint(0, x.shape[1], (x.shape[0],), generator=gen)
        chosen[torch.arange(x.shape[0]), first] = True
        how = torch.rand(x.shape, generator=gen)
        rnd = torch.randint(n_special, len(vocab), x.shape, generator=gen)
        inp = x.clone()
        inp[chosen & (how < 0.8)] = ix[MASK]
        sel = chosen & (how >= 0.8) & (how < 0.9)
        inp[sel] = rnd[sel]
        _, logits = model(inp)
        return F.cross_entropy(logits[chosen], x[chosen])

    train_loop(model, t, loss_fn)
    # held-out: each position masked in turn, the word predicted from the rest
    # (all sentences of one length in one batch: len(s) rows per sentence)
    ok = n = 0
    with torch.no_grad():
        for L, idx in by_length(test).items():
            y = torch.tensor([test[i] for i in idx]).repeat_interleave(L, 0)  # [G * L, L]
            pos = torch.arange(L).repeat(len(idx))
            rows = torch.arange(len(y))
            x = y.clone()
            x[rows, pos] = ix[MASK]
            _, logits = model(x)
            ok += (logits[rows, pos].argmax(-1) == y[rows, pos]).sum().item()
            n += len(y)
    metrics = {"heldout_sentences": len(test), "heldout_masked_words": n,
               "masked_word_accuracy": ok / n}
    return model, vocab, TOKENIZERS["tiny-encoder"], metrics


def train_translator(data, t):
    par = read_parallel(data)
    vocab = make_vocab([UNK, BOS, EOS], [s for s, _, _ in par["train"]] + [g for _, g, _ in par["train"]])
    ix = {w: i for i, w in enumerate(vocab)}
    enc = lambda s: [ix.get(w, 0) for w in s]  # noqa: E731
    # the shared tokenizer adds <s> to the source and to the decoder input (teacher forcing)
    src = [[ix[BOS]] + enc(s) for s, _, _ in par["train"]]
    tgt = [[ix[BOS]] + enc(g) + [ix[EOS]] for _, g, _ in par["train"]]
    model = Transformer(dict(CONFIGS["tiny-translator"], vocab_size=len(vocab)))
    batcher = Batcher(src, t["batch"], t["seed"])  # source and target lengths are equal

    # guided alignment (optional): cross-entropy between the known alignment and the
    # head-averaged cross-attention of one decoder layer; query position j predicts
    # target word j and should look at its source word (source position + 1 for <s>)
    aw, al = t.get("align_weight", 0.0), t.get("align_layer", 0)
    aligned = [[0] * (len(g) + 1) for _, g, _ in par["train"]]
    for k, (_, _, pairs) in enumerate(par["train"]):
        for s_pos, t_pos in pairs:
            aligned[k][t_pos] = s_pos + 1
        aligned[k][-1] = -100  # the position that predicts </s> has no source word

    def loss_fn(step):
        b = batcher.next()
        s = torch.tensor([src[i] for i in b])
        y = torch.tensor([tgt[i] for i in b])
        keep = []
        _, logits = model(y[:, :-1], s, keep)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1))
        if aw > 0:
            n_enc = CONFIGS["tiny-translator"]["n_encoder_layers"]
            w = keep[n_enc + 2 * al + 1].mean(1)  # [B, T, S]
            a = torch.tensor([aligned[i] for i in b])
            loss = loss + aw * F.nll_loss(torch.log(w + 1e-9).reshape(-1, w.shape[-1]), a.reshape(-1))
        return loss

    train_loop(model, t, loss_fn)
    # teacher forced and greedy, the pairs with one source length as one batch
    # (source and target have the same length in this corpus)
    test_src = [[ix[BOS]] + enc(s) for s, _, _ in par["test"]]
    test_tgt = [[ix[BOS]] + enc(g) + [ix[EOS]] for _, g, _ in par["test"]]
    ok = n = exact = 0
    with torch.no_grad():
        for idx in by_length(test_src).values():
            s = torch.tensor([test_src[i] for i in idx])
            y = torch.tensor([test_tgt[i] for i in idx])
            memory = model.encode(s)
            _, logits = model(y[:, :-1], enc=memory)
            ok += (logits.argmax(-1) == y[:, 1:]).sum().item()
            n += y[:, 1:].numel()
            out = greedy(model, memory, ix[BOS], ix[EOS], CONFIGS["tiny-translator"]["max_seq_len"])
            exact += sum(o == test_tgt[i][1:-1] for o, i in zip(out, idx))
    metrics = {"heldout_pairs": len(par["test"]), "token_accuracy_teacher_forced": ok / n,
               "exact_match_greedy": exact / len(par["test"])}
    return model, vocab, TOKENIZERS["tiny-translator"], metrics


INDUCTION_WORDS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def induction_batch(gen, B, n):
    """B sequences of n distinct random letters (ids 1..26) written twice: [B, 2n]."""
    first = torch.rand(B, len(INDUCTION_WORDS), generator=gen).argsort(dim=1)[:, :n] + 1
    return torch.cat([first, first], dim=1)


def train_induction(data, t):
    """A copying task: the second half of each sequence repeats the first, so
    every word of it can be read from the word after its earlier occurrence
    (an induction head's job); the first half is random. Sequences are drawn
    from a seeded generator (no corpus): n = min_len .. max_len letters."""
    del data
    vocab = [UNK] + INDUCTION_WORDS
    model = Transformer(dict(CONFIGS["tiny-induction"], vocab_size=len(vocab)))
    gen = torch.Generator().manual_seed(t["seed"])
    lengths = list(range(t["min_len"], t["max_len"] + 1))

    def loss_fn(step):
        n = lengths[step % len(lengths)]
        x = induction_batch(gen, t["batch"], n)
        _, logits = model(x[:, :-1])
        # only the repeat is predictable: positions n .. 2n-2 predict x[n+1 ..]
        return F.cross_entropy(logits[:, n:].reshape(-1, logits.shape[-1]), x[:, n + 1:].reshape(-1))

    train_loop(model, t, loss_fn)
    # held out: fresh sequences of every length, the repeat's predictions
    test_gen = torch.Generator().manual_seed(t["seed"] + 1000)
    ok = n_pred = 0
    with torch.no_grad():
        for n in lengths:
            x = induction_batch(test_gen, 200, n)
            _, logits = model(x[:, :-1])
            ok += (logits[:, n:].argmax(-1) == x[:, n + 1:]).sum().item()
            n_pred += x[:, n + 1:].numel()
    metrics = {"heldout_sequences": 200 * len(lengths), "heldout_predictions": n_pred,
               "repeat_accuracy": ok / n_pred, "chance": 1 / len(INDUCTION_WORDS)}
    return model, vocab, TOKENIZERS["tiny-induction"], metrics


def greedy(model, memory, bos, eos, max_len):
    """Greedy decoding of a batch from <s> until </s>, at most max_len tokens with <s>."""
    out = torch.full((memory.shape[0], 1), bos, dtype=torch.long)
    done = [None] * memory.shape[0]
    while out.shape[1] < max_len and any(d is None for d in done):
        _, lg = model(out, enc=memory)
        nxt = lg[:, -1].argmax(-1)
        for k, w in enumerate(nxt.tolist()):
            if done[k] is None and w == eos:
                done[k] = out[k, 1:].tolist()
        out = torch.cat([out, nxt[:, None]], 1)
    return [d if d is not None else out[k, 1:max_len].tolist() for k, d in enumerate(done)]


TRAINERS = {"tiny-decoder": train_decoder, "tiny-encoder": train_encoder,
            "tiny-translator": train_translator, "tiny-induction": train_induction}


# --------------------------------------------------------------------------
# Export and check

def export(name, model, vocab, tok, out):
    cfg = dict(CONFIGS[name], vocab_size=len(vocab))
    # tok: TOKENIZERS[name]
    cfg["tokenizer"] = dict({"type": "word", "vocab": "vocab.txt", "lowercase": True, "unk": UNK},
                            **tok)
    tensors = collections.OrderedDict((k, v.detach().numpy()) for k, v in model.state_dict().items())
    return attn_format.write_model(out, cfg, tensors, vocab)


def check_export(config_path, model, sentences):
    """The float64 forward of the exported files must agree with the PyTorch module."""
    ref = forward64.Model(config_path)
    worst = 0.0
    for text, source in sentences:
        r = ref.run(text, source)
        keep = []
        with torch.no_grad():
            ids = torch.tensor([r.ids])
            src = torch.tensor([r.source_ids]) if source is not None else None
            hidden, _ = model(ids, src, keep)
        names = sorted(r.weights, key=lambda k: (k[0] == "decoder", k[1], k[2] == "cross"))
        if ref.cfg["architecture"] == "encoder-decoder":
            # the module appends: encoder self 0..n-1, then per decoder layer self, cross
            names = [("encoder", i, "self") for i in range(ref.cfg["n_encoder_layers"])]
            for i in range(ref.cfg["n_layers"]):
                names += [("decoder", i, "self"), ("decoder", i, "cross")]
        for key, w in zip(names, keep):
            worst = max(worst, float(np.abs(w[0].double().numpy() - r.weights[key]).max()))
        worst = max(worst, float(np.abs(hidden[0].double().numpy() - r.hidden).max()) * 1e-2)
    if worst > 1e-4:
        raise SystemExit("export check failed: float64 forward differs from PyTorch by %g" % worst)
    return worst


CHECK_SENTENCES = {
    "tiny-decoder": [("The cat sits on the mat", None), ("The sun rises in the east.", None)],
    "tiny-encoder": [("The sun rises in the east", None), ("the man borrows money from the bank .", None)],
    "tiny-translator": None,  # the first pairs of data/parallel.tsv
    "tiny-induction": [("k f q a k f q a", None), ("b c d e f b c d", None)],
}


def cpu_capability():
    """The CPU kernel set torch dispatches to (AVX2, DEFAULT, AVX512): it changes the bits."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def build(name, out, data):
    t = TRAINING[name]
    setup(t["seed"])
    print("training %s (%s; torch %s, CPU kernels %s)" % (name, json.dumps(t), torch.__version__,
                                                          cpu_capability()), flush=True)
    t0 = time.time()
    model, vocab, tok, metrics = TRAINERS[name](data, t)
    seconds = time.time() - t0
    config_path = export(name, model, vocab, tok, out)
    sentences = CHECK_SENTENCES[name] or [(" ".join(g), " ".join(s)) for s, g, _ in read_parallel(data)["train"][:3]]
    worst = check_export(config_path, model, sentences)
    metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["torch_version"] = torch.__version__
    metrics["numpy_version"] = np.__version__
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
    print("%s: %s" % (name, json.dumps(metrics)))
    print("%s: trained in %.1f s; float64 export check max diff %.2g" % (name, seconds, worst))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=sorted(TRAINERS) + ["all"])
    ap.add_argument("--out", help="output folder (default models/NAME)")
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    a = ap.parse_args()
    names = sorted(TRAINERS) if a.model == "all" else [a.model]
    for name in names:
        if a.model == "all":
            out = os.path.join(a.out or os.path.join(ROOT, "models"), name)
        else:
            out = a.out or os.path.join(ROOT, "models", name)
        build(name, out, a.data)


if __name__ == "__main__":
    main()
