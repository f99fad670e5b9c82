"""docs/attention.md is what tools/make_attention_doc.py generates from the
built attn and the models in this checkout.

    /usr/bin/python3 test_attention_doc.py ATTN_EXE SOURCE_ROOT

Regenerates the guide into a temporary file and fails, showing the first
differences, when it differs from the committed docs/attention.md (then run
`/usr/bin/python3 tools/make_attention_doc.py --attn ATTN_EXE` and commit).
The generator itself stops when the worked example's float64 numbers
disagree with attn's output, or when the translator's output is not the
translation of data/parallel.tsv.

Also runs every `attn generate` command the committed guide shows (its
translation) and fails when the binary prints anything else than the
output shown under it.

Exit status: 0 pass, 1 fail, 77 skip (no numpy, no executable).
"""
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401
except ImportError:
    print("SKIP: numpy not available to %s" % sys.executable)
    sys.exit(77)


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    exe, root = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not executable" % exe)
        return 77
    committed = os.path.join(root, "docs", "attention.md")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "attention.md")
        p = subprocess.run([sys.executable, os.path.join(root, "tools", "make_attention_doc.py"),
                            "--attn", exe, "--out", out, "--root", root],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print("FAIL: tools/make_attention_doc.py failed:\n%s%s" % (p.stdout, p.stderr))
            return 1
        with open(out, encoding="utf-8") as f:
            fresh = f.read()
    if not os.path.exists(committed):
        print("FAIL: %s does not exist" % committed)
        return 1
    with open(committed, encoding="utf-8") as f:
        old = f.read()
    if fresh != old:
        diff = list(difflib.unified_diff(old.splitlines(), fresh.splitlines(),
                                         "docs/attention.md (committed)",
                                         "docs/attention.md (regenerated)", lineterm=""))
        print("FAIL: docs/attention.md is out of date with the program or the models:")
        print("\n".join(diff[:60]))
        return 1
    # the outputs of attn generate shown in the guide, against the binary
    shown = re.findall(r"```\n\$ attn (generate [^\n]*)\n(.*?)```", old, re.S)
    if not shown:
        print("FAIL: docs/attention.md shows no `attn generate` command")
        return 1
    env = dict(os.environ, COLUMNS="80", NO_COLOR="1")
    for cmd, want in shown:
        p = subprocess.run([exe] + shlex.split(cmd), cwd=root, env=env, capture_output=True,
                           text=True)
        if p.returncode != 0 or p.stdout != want:
            print("FAIL: docs/attention.md shows\n  $ attn %s\n  %s\nbut the binary prints "
                  "(exit %d)\n  %s%s" % (cmd, want.strip(), p.returncode, p.stdout.strip(),
                                         p.stderr.strip()))
            return 1
        print("docs/attention.md: `attn %s` prints %r, as shown" % (cmd, want.strip()))
    print("docs/attention.md matches the program (%d lines)" % old.count("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
