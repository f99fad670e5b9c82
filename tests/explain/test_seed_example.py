"""The worked example of models/seed-attention (tools/seed_attention.py,
float64, by the textbook formulas) against `attn explain`, fed three ways:

    /usr/bin/python3 test_seed_example.py ATTN_EXE SOURCE_ROOT

  --text "The sun rises in the east"
  --embeddings data/seed-embeddings.csv        (the hand-written vectors)
  --embeddings x.npy                           (the same vectors as '<f8' and '<f4' .npy)

For both heads every step must agree with the float64 example to 1e-6
(printed with --digits 6), and the three inputs must print the same numbers.
Also checks that models/seed-attention is what tools/seed_attention.py builds,
and that the tool's --help shows its description whole.

Exit status: 0 pass, 1 fail, 77 skip (no numpy, no executable).
"""
import filecmp
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy not available to %s" % sys.executable)
    sys.exit(77)

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import explain_parse  # noqa: E402

TOL = 1e-6

# explain's name -> the worked example's name (per head h)
STEPS = [("X", "X"), ("Wq", "Wq{h}"), ("Q", "Q{h}"), ("Wk", "Wk{h}"), ("K", "K{h}"),
         ("Wv", "Wv{h}"), ("V", "V{h}"), ("QKᵀ", "QK{h}"), ("S", "S{h}"),
         ("weights", "weights{h}"), ("C", "C{h}"), ("concat", "concat"), ("Wo", "Wo"),
         ("out", "out")]


def check_help(tool):
    """The tool's --help shows its description whole: the first paragraph of
    its docstring, ending with a full stop (it was once cut mid-sentence)."""
    p = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True)
    if p.returncode != 0:
        return ["%s --help: exit %d: %s" % (tool, p.returncode, p.stderr.strip())]
    # the description: the paragraph after the usage line
    paras = [q.strip() for q in p.stdout.split("\n\n")]
    desc = paras[1] if len(paras) > 1 else ""
    src = open(tool, encoding="utf-8").read()
    first = src.split('"""')[1].strip().split("\n\n")[0]
    out = []
    if desc != first:
        out.append("%s --help: the description is %r, not the docstring's first paragraph %r"
                   % (tool, desc, first))
    if not desc.endswith("."):
        out.append("%s --help: the description %r does not end a sentence" % (tool, desc))
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    exe, root = argv[1], argv[2]
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not executable" % exe)
        return 77
    sys.path.insert(0, os.path.join(root, "tools"))
    import seed_attention

    failures = []
    checked = 0
    cfg = os.path.join(root, "models", "seed-attention", "config.json")
    csv = os.path.join(root, "data", "seed-embeddings.csv")
    ex = seed_attention.worked_example()

    with tempfile.TemporaryDirectory() as tmp:
        # the shipped model is the one the tool builds
        seed_attention.build(os.path.join(tmp, "m"))
        for f in ("config.json", "model.safetensors", "vocab.txt"):
            if not filecmp.cmp(os.path.join(tmp, "m", f),
                               os.path.join(root, "models", "seed-attention", f), shallow=False):
                failures.append("models/seed-attention/%s differs from what "
                                "tools/seed_attention.py build writes" % f)
        x = seed_attention.read_embeddings()
        npy8, npy4 = os.path.join(tmp, "x8.npy"), os.path.join(tmp, "x4.npy")
        np.save(npy8, x.astype("<f8"))
        np.save(npy4, x.astype("<f4"))
        inputs = [("--text", seed_attention.SENTENCE), ("--embeddings", csv),
                  ("--embeddings", npy8), ("--embeddings", npy4)]
        printed = {}
        for flag, value in inputs:
            for h in range(seed_attention.H):
                p = subprocess.run([exe, "explain", "--config", cfg, flag, value, "--head", str(h),
                                    "--full", "--digits", "6"], capture_output=True, text=True)
                if p.returncode != 0:
                    failures.append("explain %s %s: exit %d: %s" % (flag, value, p.returncode,
                                                                    p.stderr.strip()))
                    continue
                part = explain_parse.parse(p.stdout)[0]
                for name, key in STEPS:
                    got = part["m"].get(name)
                    want = ex[key.format(h=h)]
                    what = "%s %s head %d %s" % (flag, os.path.basename(value)
                                                 if flag != "--text" else "text", h, name)
                    if got is None:
                        failures.append(what + ": not printed")
                        continue
                    checked += got.size
                    if got.shape != want.shape:
                        failures.append("%s: shape %s, example %s" % (what, got.shape, want.shape))
                        continue
                    err = np.abs(got - want).max()
                    if err > TOL:
                        failures.append("%s: differs from the float64 example by %.3g"
                                        % (what, err))
                    printed.setdefault((h, name), []).append((flag + " " + value, got))
        for (h, name), runs in printed.items():
            for label, got in runs[1:]:
                if not np.array_equal(got, runs[0][1]):
                    failures.append("head %d %s: %s prints other numbers than %s"
                                    % (h, name, label, runs[0][0]))
    failures += check_help(os.path.join(root, "tools", "seed_attention.py"))
    for f in failures[:30]:
        print("FAIL:", f)
    print("seed-attention worked example: %d numbers checked, %d failures"
          % (checked, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
