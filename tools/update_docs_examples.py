"""Rewrites the outputs that the docs' command examples show, from real runs.

    /usr/bin/python3 tools/update_docs_examples.py [--attn build/src/attn] [--check]
                                                   [--no-attention-doc]

Runs every command block of README.md, docs/*.md, models/*/README.md,
bench/README.md and data/README.md as tests/docs/test_docs_examples.py does
(the markup: tests/docs/README.md) and, where a block shows other output
than the command prints, writes what it printed into the document: the whole
output, or for an `<!-- output: excerpt -->` block each run of lines between
`...` lines replaced by the output lines it stands for (found by their text
with the numbers ignored). Then regenerates docs/attention.md with
tools/make_attention_doc.py (unless --no-attention-doc). Commands that exit
otherwise than their block says, and excerpts it cannot place, are listed
for a fix by hand (exit status 1). --check changes nothing and lists what
would change. Review the changes with `git diff` before committing: the
prose around an example may have to change too.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "docs"))
import docs_examples  # noqa: E402


def replacement(r):
    """(first, end, new lines) in block-line indices, or None."""
    b = r.block
    if r.cmd is None:
        first, end = 0, len(b.lines)
    else:
        first, end = r.cmd.out_start, r.cmd.out_end
    old = b.lines[first:end]
    trailing = len(old) - len(docs_examples.normalize(old))
    if r.cmd is None:
        trailing = 0
    return first, end, list(r.new_shown) + [""] * trailing


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attn", default=os.path.join(ROOT, "build", "src", "attn"))
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--check", action="store_true", help="change nothing, list the changes")
    ap.add_argument("--no-attention-doc", action="store_true",
                    help="leave docs/attention.md alone")
    args = ap.parse_args(argv)
    exe, root = os.path.abspath(args.attn), os.path.abspath(args.root)
    if not os.access(exe, os.X_OK):
        sys.exit("update_docs_examples: %s is not executable (build first, or give --attn)"
                 % exe)
    bad = 0
    for path in docs_examples.documents(root):
        results = docs_examples.check_document(exe, root, path)
        edits = []
        for r in results:
            if r.status == "skip" and r.block is not None:
                print(r.message)
            if r.status != "fail":
                continue
            if r.new_shown is None:
                print("by hand: " + r.message.split("\n")[0])
                bad += 1
                continue
            first, end, new = replacement(r)
            b = r.block
            edits.append((b.line - 1 + first, b.line - 1 + end,
                          [(b.indent + l) if l else "" for l in new]))
            print("%s %s:%d" % ("would update" if args.check else "updated", path, r.line))
        if edits and not args.check:
            full = os.path.join(root, path)
            with open(full, encoding="utf-8") as f:
                lines = f.read().split("\n")
            for first, end, new in sorted(edits, reverse=True):
                lines[first:end] = new
            with open(full, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
    if not args.no_attention_doc and not args.check:
        p = subprocess.run([sys.executable, os.path.join(root, "tools", "make_attention_doc.py"),
                            "--attn", exe, "--root", root,
                            "--out", os.path.join(root, "docs", "attention.md")])
        if p.returncode != 0:
            print("by hand: tools/make_attention_doc.py failed (above)")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
