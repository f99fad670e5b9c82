"""The head sweep against L*H whole runs (issue 14, item 2).

    /usr/bin/python3 bench/bench_ablate.py --attn build/src/attn [--layers 6]
        [--d-model 384] [--heads 6] [--tokens 128] [--repeat 3] [--cache DIR]

On a random GPT-2-shaped decoder (tied lm_head), times in the same run:
  - sweep: one `attn ablate --target T` (the clean run once, then each head's
    ablation rerun from its layer on, attn_session_rerun_from);
  - whole: the L*H processes `attn run --ablate L.H --dump logits`, each a
    whole run (start, load, all layers, the logits written as npy);
and prints both, their ratio, and the ratio expected from the layers run
alone: L*H*L layer passes against L + H*L*(L+1)/2 (an ablation in layer l
reruns L - l layers), at most 2L/(L+1).
It also checks that every head's logit in the sweep is the whole run's, bit
for bit.
Best of --repeat for the sweep; the whole runs once (they are many).
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.join(_HERE, "..", "tools"))
import bench_torch  # noqa: E402  (make_model, cpu_model, loadavg)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attn", required=True)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default=None)
    a = ap.parse_args(argv)
    L, D, H, T = a.layers, a.d_model, a.heads, a.tokens
    cfg = {"architecture": "decoder", "vocab_size": 4096, "d_model": D, "n_heads": H,
           "d_ff": 4 * D, "n_layers": L, "max_seq_len": max(T, 16), "positional": "learned",
           "norm": "layernorm", "norm_position": "pre", "mlp": "gelu", "bias": True,
           "lm_head": "tied"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(a.cache or tmp, "ablate-L%d-D%d-H%d" % (L, D, H))
        config = bench_torch.make_model(folder, cfg, 14)
        ids = ",".join(str((7919 * i + 13) % cfg["vocab_size"]) for i in range(T))
        target = "17"
        base = ["--config", config, "--ids", ids, "--threads", "1"]
        print("CPU: %s; load average at the start %s" % (bench_torch.cpu_model()[0], bench_torch.loadavg()))
        print("model: %d layers, d_model %d, %d heads, d_ff %d, T=%d, 1 thread" % (L, D, H, 4 * D, T))

        sweep_times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            p = subprocess.run([a.attn, "ablate"] + base + ["--target", target],
                               capture_output=True, text=True, check=True)
            sweep_times.append(time.perf_counter() - t0)
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        sweep_logit = {(int(r["layer"]), int(r["head"])): float(r["logit"]) for r in rows[1:]}

        t0 = time.perf_counter()
        for layer in range(L):
            for h in range(H):
                subprocess.run([a.attn, "run"] + base + ["--ablate", "%d.%d" % (layer, h), "--dump",
                                "logits", "--out", os.path.join(tmp, "d%d.%d" % (layer, h))],
                               check=True, capture_output=True)
        whole = time.perf_counter() - t0
        import numpy as np
        bad = sum(np.load(os.path.join(tmp, "d%d.%d" % (layer, h), "logits.npy"))[-1, int(target)]
                  != np.float32(sweep_logit[(layer, h)]) for layer in range(L) for h in range(H))
        sweep = min(sweep_times)
        expected = (L * H * L) / (L + H * L * (L + 1) / 2)  # layer passes: whole / sweep
        print("sweep (attn ablate, %d heads): %.3f s (best of %d)" % (L * H, sweep, a.repeat))
        print("whole runs (%d x attn run --ablate): %.3f s" % (L * H, whole))
        print("ratio whole / sweep: %.2fx (layers alone would give %.2fx; the rest is each "
              "process's start, load and output)" % (whole / sweep, expected))
        print("heads whose logit differs from the whole run's: %d of %d" % (bad, L * H))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
