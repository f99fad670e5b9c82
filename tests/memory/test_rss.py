"""Peak RSS of one-shot runs: the mapped weights plus O(T * (d_model + d_ff)).

    /usr/bin/python3 test_rss.py ATTN_EXE [--full] [--cache DIR] [--threads N]

attn run maps the weights (their pages count once, shared with the page
cache) and keeps one key/value cache for all the layers (a one-shot session,
attn_session_set_reuse_cache), so that what a run adds to the weights is its
activations: the residual stream and the sub-layer buffers [T, D], the MLP's
[T, F], the attention's queries and concatenated heads [T, H*hd], one
layer's keys and values [2, KV*hd, T], and, while maps are written, one
head's [T, T] map at a time (streamed to the files, never all held).

Default (the test, a few seconds): a 24-layer decoder, d_model 128, 4 heads,
d_ff 512, T = 1024 without maps and T = 512 with every map written as npy.
What the run adds over the same model at T = 1 (the weights, the program)
must stay within ACT_SLACK times the activation formula (+ one or two
[T, T] maps with maps) plus CONST_SLACK. Keeping a cache per layer would
add 23 more layers of keys and values, 23 MiB at T = 1024: over the bound.

--full (the Meson benchmark 'memory'): the sizes of issue 12 on the
benchmark's models (bench/bench_torch.py make_model, cached in --cache):
GPT-2-small shape at T = 1024 (peak <= weights + 64 MiB) and the long
context (d_model 256, 4 layers, 4 heads, max_seq_len 8192) at T = 2048 and
8192, without maps (< 1 GiB) and with all maps as npy (< 1.2 GiB).

The peak is measured as tests/dump/test_memory.py does (/usr/bin/time, no
AddressSanitizer quarantine). Exit status 0 pass, 1 fail, 77 skip.
"""
import argparse
import os
import re
import shutil
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_HERE, "..", "dump"))
sys.path.insert(0, os.path.join(_ROOT, "bench"))
import test_memory  # noqa: E402  (peak_rss, no_aslr; skips without numpy)
import bench_torch  # noqa: E402  (make_model, ids_for, cpu_model; numpy inside)

MiB = 1 << 20
ACT_SLACK = 1.25
CONST_SLACK = 4 * MiB

SMALL = dict(bench_torch.GPT2, vocab_size=256, d_model=128, n_heads=4, d_ff=512, n_layers=24,
             max_seq_len=1024)


def activation_bytes(cfg, t):
    """Bytes of the activations of one pass at T = t, one key/value cache (float32)."""
    d, f, h = cfg["d_model"], cfg["d_ff"], cfg["n_heads"]
    hd = cfg.get("head_dim", d // h)
    kv = cfg.get("n_kv_heads", h)
    floats = (3 * t * d          # x, xn, y
              + t * f            # MLP hidden
              + 3 * t * h * hd   # q projection, head-major queries, concatenated heads
              + t * hd + t       # one head's context, one row of scores
              + 2 * kv * hd * t)  # one layer's keys and values
    return 4 * floats


def run(exe, cfg_path, cfg, t, threads, maps, tmp):
    ids = ",".join(map(str, bench_torch.ids_for(t, cfg["vocab_size"])))
    cmd = test_memory.no_aslr() + [exe, "run", "--config", cfg_path, "--ids", ids,
                                   "--threads", str(threads)]
    out = os.path.join(tmp, "dump")
    cmd += (["--dump", "blocks.*.attn.weights", "--format", "npy", "--out", out] if maps
            else ["--context", "/dev/null"])
    rc, peak, err = test_memory.peak_rss(cmd, tmp)
    shutil.rmtree(out, ignore_errors=True)
    if rc != 0:
        raise SystemExit("FAIL: attn exited %d at T=%d: %s" % (rc, t, err.strip()))
    return peak


def row(name, t, maps, weights, peak, bound, ok):
    print("%-12s %6d %-5s %10.1f %10.1f %+10.1f %10.1f %6s" % (
        name, t, "npy" if maps else "none", weights / MiB, peak / MiB, (peak - weights) / MiB,
        bound / MiB, "ok" if ok else "FAIL"))
    return ok


def header():
    print("%-12s %6s %-5s %10s %10s %10s %10s %6s" % (
        "model", "T", "maps", "weights", "peak RSS", "- weights", "bound", "result"))
    print("(MiB; the peak of /usr/bin/time, the weights the size of model.safetensors)")


def small(exe, cache, threads, tmp):
    cpath = bench_torch.make_model(os.path.join(cache, "rss-small"), SMALL, 21)
    weights = os.path.getsize(os.path.join(os.path.dirname(cpath), "model.safetensors"))
    base = run(exe, cpath, SMALL, 1, threads, False, tmp)
    print("small decoder: 24 layers, d_model 128, 4 heads, d_ff 512; T=1 peak %.1f MiB "
          "(the weights, the program); bound = T=1 peak + %.2f x activations (+ maps) + %d MiB"
          % (base / MiB, ACT_SLACK, CONST_SLACK // MiB))
    header()
    ok = True
    for t, maps in ((1024, False), (512, True)):
        extra = 2 * 4 * t * t if maps else 0  # one head's scores and weights [T, T]
        bound = base + ACT_SLACK * (activation_bytes(SMALL, t) + extra) + CONST_SLACK
        peak = run(exe, cpath, SMALL, t, threads, maps, tmp)
        ok &= row("small", t, maps, weights, peak, bound, peak <= bound)
    return ok


def full(exe, cache, threads, tmp):
    name, _ = bench_torch.cpu_model()
    print("CPU: %s; %d threads" % (name, threads))
    gpath = bench_torch.make_model(os.path.join(cache, "gpt2-small"), bench_torch.GPT2, 12)
    lpath = bench_torch.make_model(os.path.join(cache, "gpt2-small-long"), bench_torch.LONG, 13)
    header()
    ok = True
    gw = os.path.getsize(os.path.join(os.path.dirname(gpath), "model.safetensors"))
    peak = run(exe, gpath, bench_torch.GPT2, 1024, threads, False, tmp)
    ok &= row("gpt2-small", 1024, False, gw, peak, gw + 64 * MiB, peak <= gw + 64 * MiB)
    lw = os.path.getsize(os.path.join(os.path.dirname(lpath), "model.safetensors"))
    for t in (2048, 8192):
        for maps, lim in ((False, 1 << 30), (True, 1.2 * (1 << 30))):
            peak = run(exe, lpath, bench_torch.LONG, t, threads, maps, tmp)
            ok &= row("long", t, maps, lw, peak, lim, peak < lim)
    print("bounds: GPT-2 small at most the weights + 64 MiB; the long context under 1 GiB "
          "without maps, 1.2 GiB with all maps as npy")
    return ok


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("exe")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--cache", help="folder of the generated models (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv[1:])
    if not os.access(test_memory.TIME, os.X_OK):
        print("SKIP: no %s" % test_memory.TIME)
        return 77
    exe = os.path.abspath(a.exe)
    tmp = tempfile.mkdtemp(prefix="attn-rss-")
    try:
        cache = a.cache or os.path.join(tmp, "models")
        ok = (full if a.full else small)(exe, cache, a.threads, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
