"""A weights file truncated while attn runs: one clear line, exit 1, nothing left behind.

    /usr/bin/python3 test_sigbus.py ATTN_EXE

attn maps the weights read-only (src/model/safetensors.c); a truncation
takes the pages past the new end away, and the next read of one raises
SIGBUS. The run is made deterministic with batch mode: attn opens the model
and its outputs, then waits for lines on standard input. The test waits
until the weights file shows in /proc/PID/maps, truncates it to 0 bytes,
and only then sends a line: the forward pass reads the token embedding from
a page that is gone. attn must print one line naming the file and saying
that the weights file changed, exit 1, and leave neither the output nor a
temporary of it (base/tmpfile.c removes them from the handler). The last
case rewrites 4 bytes in place instead, which loses no page: the forward
pass sees the file's new modification time afterwards, with the same
message and result.

Exit status 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "reference"))
try:
    import numpy as np  # noqa: F401  (make_models needs it)
    import make_models  # noqa: E402
except ImportError:
    print("SKIP: /usr/bin/python3 has no numpy")
    sys.exit(77)

MESSAGE = "the weights file changed while attn was reading it"


def build_model(root):
    spec = make_models.Spec("sigbus", dict(
        architecture="decoder", vocab_size=64, d_model=32, n_heads=4, d_ff=64, max_seq_len=64,
        n_layers=2, positional="learned", norm="layernorm", norm_position="pre", mlp="gelu",
        bias=True, lm_head="tied"), seq_len=16, seed=404)
    return make_models.build(spec, root)


def mapped(pid, path):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return any(line.rstrip("\n").endswith(path) for line in f)
    except OSError:
        return False


def change(weights, how):
    """Truncates the file to 0 bytes, or rewrites its last 4 bytes in place."""
    if how == "truncate":
        os.truncate(weights, 0)
        return
    with open(weights, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        last = f.read(4)
        f.seek(-4, os.SEEK_END)
        f.write(bytes(b ^ 0x55 for b in last))


def one_case(exe, tmp, label, outputs, out_path, how="truncate"):
    """Runs attn with outputs, changes its weights (how) once mapped; '' or a failure."""
    spec = build_model(os.path.join(tmp, label))
    weights = os.path.realpath(os.path.join(os.path.dirname(spec.config), "model.safetensors"))
    old = time.time() - 100  # a rewrite must show as a new modification time
    os.utime(weights, (old, old))
    p = subprocess.Popen([exe, "run", "--config", spec.config, "--ids-input"] + outputs,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 60
    while not mapped(p.pid, weights):
        if p.poll() is not None or time.time() > deadline:
            p.kill()
            out, err = p.communicate()
            return "%s: the weights were never mapped (exit %s): %s" % (label, p.returncode, err)
        time.sleep(0.01)
    change(weights, how)
    out, err = p.communicate("1,2,3,4,5,6,7,8\n", timeout=60)
    if os.environ.get("ATTN_TEST_VERBOSE"):
        print("  exit %d, stderr: %s" % (p.returncode, err.strip()))
    lines = err.splitlines()
    problems = []
    if p.returncode != 1:
        problems.append("exit status %d, expected 1" % p.returncode)
    if len(lines) != 1 or MESSAGE not in lines[0] or weights not in lines[0]:
        problems.append("stderr is not one line naming %s and saying '%s': %r"
                        % (weights, MESSAGE, err))
    folder = os.path.dirname(out_path)
    left = [n for n in os.listdir(folder) if n.startswith(os.path.basename(out_path))]
    if left:
        problems.append("left behind: %s" % ", ".join(left))
    return "%s: %s" % (label, "; ".join(problems)) if problems else ""


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 1
    if not os.path.isdir("/proc/self"):
        print("SKIP: no /proc")
        return 77
    exe = os.path.abspath(argv[1])
    failed = False
    with tempfile.TemporaryDirectory(prefix="attn-sigbus-") as tmp:
        outs = os.path.join(tmp, "outs")
        os.mkdir(outs)
        cases = [
            ("maps", ["--maps", os.path.join(outs, "maps.csv")], os.path.join(outs, "maps.csv")),
            ("context", ["--context", os.path.join(outs, "ctx.csv")],
             os.path.join(outs, "ctx.csv")),
            ("dump", ["--dump", "blocks.*.attn.weights", "--format", "npy", "--out",
                      os.path.join(outs, "dump")], os.path.join(outs, "dump")),
        ]
        # rewritten in place at the same size: no page is lost, no SIGBUS;
        # the pass sees the new modification time (attn_image_check)
        cases.append(("rewrite", ["--maps", os.path.join(outs, "rw.csv")],
                      os.path.join(outs, "rw.csv"), "rewrite"))
        for label, outputs, out_path, *how in cases:
            why = one_case(exe, tmp, label, outputs, out_path, *how)
            print("%-8s %s" % (label, "FAIL: " + why if why else "ok"))
            failed |= bool(why)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
