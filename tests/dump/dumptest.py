"""What the dump and selection tests share: the reference's modules, the
tolerances, running attn run, and the list of failures."""
import os
import subprocess
import sys

try:
    import numpy  # noqa: F401
    import torch  # noqa: F401  (attn_ref needs it)
except ImportError:
    print("SKIP: /usr/bin/python3 has no numpy or torch")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import attn_ref  # noqa: E402,F401
import make_models  # noqa: E402,F401

WEIGHT_ABS_TOL = 2e-5  # attention weights (in [0, 1]), float32 against float64
VALUE_REL_TOL = 1e-4   # every other value: |a - b| <= VALUE_REL_TOL * max(1, |b|)

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run(exe, args, stdin=None):
    """attn run ARGS, standard input `stdin` (text or None); the CompletedProcess."""
    return subprocess.run([exe, "run"] + args, input=stdin, capture_output=True, text=True,
                          timeout=300)


def ids_arg(ids):
    return ",".join(str(i) for i in ids)


def check_usage_errors(run_one, cases, out):
    """Each case (label, args, word): run_one(args) (a CompletedProcess) must
    exit 2 with one line on standard error holding word, and leave no out."""
    for label, args, word in cases:
        p = run_one(args)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or word not in lines[0]:
            fail("%s %s: exit %d, stderr %r (expected 2 and one line with %r)"
                 % (label, args, p.returncode, p.stderr, word))
        if os.path.exists(out):
            fail("%s %s left %s" % (label, args, out))
            os.unlink(out)


def main(argv, doc, body):
    """The body of a test script: body(exe, tmp) with a temporary folder
    (kept with ATTN_KEEP_TMP=1); exit status 1 when anything failed."""
    import shutil
    import tempfile
    if len(argv) < 2:
        print(doc)
        return 2
    exe = os.path.abspath(argv[1])
    tmp = tempfile.mkdtemp(prefix="attn-dump-")
    try:
        body(exe, tmp)
    finally:
        if os.environ.get("ATTN_KEEP_TMP"):
            print("temporary files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0
