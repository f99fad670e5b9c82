"""Peak memory of maps and dumps does not grow with the heads selected.

    /usr/bin/python3 test_memory.py ATTN_EXE [--layers L] [--heads H] [--tokens T]

Builds a random decoder (make_models.py machinery) with many layers and heads
(default 12 x 12) and runs it on T tokens (default 256) four ways: --maps of
one head of one layer, --maps of every layer and head, and the same with
--dump 'blocks.*.attn.weights'. The peak RSS of each run must not exceed the
one-head peak by more than MARGIN, much less than what all maps take at once
(printed): maps are made and written one head at a time.

The peak is the ru_maxrss of wait4, read by /usr/bin/time -f %M: a process
Python forks itself (os.wait4 on a Popen) would report Python's own peak
instead, because Linux keeps the peak of the memory image exec replaces;
attn forked by the small time program starts clean.

Exit status 0 pass, 1 fail, 77 skip.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "reference"))
try:
    import numpy as np  # noqa: F401  (make_models needs it)
    import make_models  # noqa: E402
except ImportError:
    print("SKIP: /usr/bin/python3 has no numpy")
    sys.exit(77)

MARGIN = 3 << 20  # bytes


def no_aslr():
    """setarch -R where it works: without address randomization the peak of
    one command does not move from run to run."""
    try:
        return ["/usr/bin/setarch", "-R"] if subprocess.call(
            ["/usr/bin/setarch", "-R", "/bin/true"]) == 0 else []
    except OSError:
        return []


TIME = "/usr/bin/time"

# Under AddressSanitizer (the asan test setup), freed memory goes to a
# quarantine of up to 256 MiB instead of being reused, so the peak would
# grow with the number of allocations, not with what the program holds; and
# with detect_stack_use_after_return every thread keeps fake stacks, mapped
# per frame size as each thread first calls into new code (7 MiB more when
# the dumps are written from an OpenMP thread beside the pass): the
# measured runs have neither.
ENV = dict(os.environ)
if "ASAN_OPTIONS" in ENV:
    ENV["ASAN_OPTIONS"] += (":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
                            ":detect_stack_use_after_return=0")


def peak_rss(cmd, tmp):
    """(exit status, peak RSS in bytes, stderr) of cmd."""
    rss = os.path.join(tmp, "rss")
    p = subprocess.run([TIME, "-f", "%M", "-o", rss] + cmd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600,
                       env=ENV)
    with open(rss) as f:
        kib = int(f.read().split()[-1])
    return p.returncode, kib * 1024, p.stderr


def build_model(root, layers, heads, tokens):
    hd = 8
    spec = make_models.Spec("many-heads", dict(
        architecture="decoder", vocab_size=64, d_model=heads * hd, n_heads=heads, d_ff=heads * hd,
        max_seq_len=tokens, n_layers=layers, positional="learned", norm="layernorm",
        norm_position="pre", mlp="gelu", bias=True, lm_head="tied"), seq_len=tokens, seed=303)
    return make_models.build(spec, root)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("exe")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=256)
    a = ap.parse_args(argv[1:])
    if not os.access(TIME, os.X_OK):
        print("SKIP: no %s" % TIME)
        return 77
    exe = os.path.abspath(a.exe)
    tmp = tempfile.mkdtemp(prefix="attn-memory-")
    failed = False
    try:
        spec = build_model(os.path.join(tmp, "models"), a.layers, a.heads, a.tokens)
        ids = ",".join(str((7 * i + 3) % 64) for i in range(a.tokens))
        base = no_aslr() + [exe, "run", "--config", spec.config, "--ids", ids]
        one = ["--layers", str(a.layers // 2), "--heads", str(a.heads // 2)]
        all_maps = a.layers * a.heads * a.tokens * a.tokens * 4
        print("decoder: %d layers x %d heads, T = %d; all maps at once would take %.1f MiB, "
              "one map %.2f MiB" % (a.layers, a.heads, a.tokens, all_maps / 2**20,
                                    a.tokens * a.tokens * 4 / 2**20))
        print("%-8s %-20s %12s %12s %7s %8s" % ("output", "selection", "peak RSS", "vs one head",
                                                  "ratio", "result"))
        for kind in ("maps", "dump"):
            peaks = {}
            for label, sel in (("one head", one), ("all", [])):
                if kind == "maps":
                    out = ["--maps", "/dev/null"]
                else:
                    d = os.path.join(tmp, "dump-" + label.replace(" ", "-"))
                    out = ["--dump", "blocks.*.attn.weights", "--out", d]
                rc, peak, err = peak_rss(base + out + sel, tmp)
                if rc != 0:
                    print("FAIL: attn %s exited %d: %s" % (" ".join(out + sel), rc, err.strip()))
                    return 1
                peaks[label] = peak
            grow = peaks["all"] - peaks["one head"]
            ok = grow <= MARGIN
            failed |= not ok
            for label in ("one head", "all"):
                print("%-8s %-20s %9.1f MiB %+9.2f MiB %7.3f %8s" % (
                    kind, label, peaks[label] / 2**20, (peaks[label] - peaks["one head"]) / 2**20,
                    peaks[label] / peaks["one head"],
                    "" if label == "one head" else "ok" if ok else "FAIL"))
        print("bound: the all-heads peak at most %.1f MiB above the one-head peak" % (MARGIN / 2**20))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
