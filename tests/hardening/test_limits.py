"""The documented limits (docs/model-format.md, "Limits"), against the real binary.

  test_limits.py ATTN_EXE SOURCE_ROOT

Each case builds an input just over one limit in a fresh temporary folder and
checks exit status 1, one line on standard error naming the limit (the
numbers are the table's), and, where a file claims sizes it does not have,
that the peak memory of the run stays small: nothing was allocated for them.
"""
import json
import os
import resource
import subprocess
import sys
import tempfile

ATTN, ROOT = os.path.abspath(sys.argv[1]), sys.argv[2]
TINY = os.path.join(ROOT, "models", "tiny-decoder")
failures = []

# Peak RSS allowed for a refused run, in KiB: far below any of the sizes the
# inputs claim (gigabytes), well above what attn needs to start (also under
# ASan, whose shadow memory is counted).
RSS_MAX_KIB = 100 * 1024


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


def run_measured(args, cwd, stdin_path=None):
    """Runs attn in a child Python whose only child it is, so that
    RUSAGE_CHILDREN's ru_maxrss there is attn's own peak (KiB); its standard
    input is the file stdin_path, or none."""
    prog = ("import resource, subprocess, sys\n"
            "src = open(sys.argv[1], 'rb') if sys.argv[1] else subprocess.DEVNULL\n"
            "r = subprocess.run(sys.argv[2:], stdin=src, stdout=subprocess.DEVNULL,\n"
            "                   stderr=subprocess.PIPE)\n"
            "sys.stdout.write('%d %d\\n' % (r.returncode, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.stdout.write(r.stderr.decode('utf-8', 'replace'))\n")
    out = subprocess.run([sys.executable, "-c", prog, stdin_path or "", ATTN] + args, cwd=cwd,
                         capture_output=True, text=True, timeout=300).stdout
    head, _, err = out.partition("\n")
    rc, rss = (int(x) for x in head.split())
    return rc, rss, err


def expect_refused(name, args, cwd, message, rss=False, stdin_path=None):
    rc, peak, err = run_measured(args, cwd, stdin_path)
    check(name + ": exit 1", rc == 1, "exit %d: %s" % (rc, err))
    check(name + ": one line", err.count("\n") == 1 and err.startswith("attn: "), repr(err))
    check(name + ": names the limit", message in err, "%r not in %r" % (message, err))
    if rss:
        check(name + ": peak RSS %d KiB < %d KiB" % (peak, RSS_MAX_KIB), peak < RSS_MAX_KIB,
              str(peak))


def tiny_config(d, **changes):
    """tiny-decoder's config in d, with absolute paths and `changes`."""
    with open(os.path.join(TINY, "config.json")) as f:
        cfg = json.load(f)
    cfg["weights"] = os.path.join(TINY, "model.safetensors")
    cfg["tokenizer"]["vocab"] = os.path.join(TINY, "vocab.txt")
    cfg.update(changes)
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def main():
    # 1. a sparse 20 MB config: refused by its size, never read
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "config.json")
        with open(path, "wb") as f:
            f.write(b"{}")
            f.truncate(20 << 20)
        expect_refused("config of 20 MB", ["run", "--config", path, "--ids", "1"], d,
                       "config.json: file is 20971520 bytes, more than the 1 MiB limit of a "
                       "config (1048576 bytes)", rss=True)

    # 2. an integer key over its cap
    with tempfile.TemporaryDirectory() as d:
        path = tiny_config(d, max_seq_len=1048577)
        expect_refused("max_seq_len over the cap", ["run", "--config", path, "--ids", "1"], d,
                       'key "max_seq_len": 1048577 is more than the limit of 1048576 for '
                       "max_seq_len")

    # 3. sizes that multiply past the weights file: a Llama-7B-shaped config
    #    with a vocabulary of 2^20 next to a 1 MB weights file
    with tempfile.TemporaryDirectory() as d:
        weights = os.path.join(d, "w.safetensors")
        with open(weights, "wb") as f:
            f.truncate(1 << 20)
        path = tiny_config(d, vocab_size=1 << 20, d_model=2048, n_heads=16, d_ff=8192,
                           n_layers=64, max_seq_len=4096, weights=weights)
        # tok_embed 2^31; pos_embed 4096 * 2048; a block: 2 layernorms of
        # 2 * 2048, q k v o 4 * 2048^2 + biases 4 * 2048, up down 2 * 8192 *
        # 2048 + biases 8192 + 2048; 64 blocks; the final layernorm
        block = 2 * 4096 + 4 * 2048 * 2048 + 4 * 2048 + 2 * 8192 * 2048 + 8192 + 2048
        n = (1 << 31) + 4096 * 2048 + 64 * block + 4096
        tail = ("the config implies %d weights, at least %d bytes even as F16, but the weights "
                "file %s has only 1048576 bytes" % (n, 2 * n, weights))
        expect_refused("weights the file cannot hold", ["run", "--config", path, "--ids", "1"], d,
                       "config.json: " + tail, rss=True)
        # the same config read from standard input (--config -)
        expect_refused("weights the file cannot hold, config on standard input",
                       ["run", "--config", "-", "--ids", "1"], d, "standard input: " + tail,
                       rss=True, stdin_path=path)

    # 4. a safetensors header over 100 MB (claimed by a 1 MB file)
    with tempfile.TemporaryDirectory() as d:
        weights = os.path.join(d, "w.safetensors")
        with open(weights, "wb") as f:
            f.write((100000001).to_bytes(8, "little"))
            f.truncate(1 << 20)
        path = tiny_config(d, weights=weights)
        expect_refused("safetensors header over 100 MB",
                       ["run", "--config", path, "--ids", "1"], d,
                       "w.safetensors: header of 100000001 bytes is more than the "
                       "100000000-byte (100 MB) limit", rss=True)

    # 5. a vocabulary token over 65536 bytes, on line 12
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(TINY, "vocab.txt")) as f:
            lines = f.read().split("\n")
        lines[11] = "x" * 300000
        vocab = os.path.join(d, "vocab.txt")
        with open(vocab, "w") as f:
            f.write("\n".join(lines))
        path = tiny_config(d)
        with open(path) as f:
            cfg = json.load(f)
        cfg["tokenizer"]["vocab"] = vocab
        with open(path, "w") as f:
            json.dump(cfg, f)
        expect_refused("vocabulary token over 65536 bytes",
                       ["run", "--config", path, "--text", "the cat"], d,
                       "vocab.txt:12: token of 300000 bytes is longer than the 65536-byte limit")

    if failures:
        print("%d failure(s): %s" % (len(failures), ", ".join(failures)))
        sys.exit(1)


if __name__ == "__main__":
    main()
