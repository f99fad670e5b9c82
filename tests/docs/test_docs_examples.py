"""Every `attn ...` example of the Markdown docs, run against the build.

    /usr/bin/python3 test_docs_examples.py ATTN_EXE SOURCE_ROOT

Finds the command blocks of README.md, docs/*.md, models/*/README.md,
bench/README.md and data/README.md (tests/docs/README.md gives the markup),
runs each command with the built attn first on PATH, in a temporary folder
per document, and fails when a command exits otherwise than the block says
or prints other output than the block shows (a unified diff and the file:line
of the command). docs/attention.md is left to tests/explain/test_attention_doc.py,
which regenerates it. Blocks that need ../shared/models/stories260K are
skipped, with that reason, when it is absent.

After a change of output: /usr/bin/python3 tools/update_docs_examples.py
rewrites the shown outputs from real runs.

Exit status: 0 pass, 1 fail, 77 skip (no executable).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_examples  # noqa: E402


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    exe, root = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not executable" % exe)
        return 77
    for path, reason in docs_examples.GENERATED.items():
        checker = os.path.join(root, "tests", "explain", "test_attention_doc.py")
        if not os.path.exists(checker):
            print("FAIL: %s is left to %s, which does not exist" % (path, checker))
            return 1
    rtol = float(os.environ.get("ATTN_DOCS_RTOL", "0") or 0)
    try:
        results = docs_examples.check_all(exe, root, rtol)
    except docs_examples.DocError as e:
        print("FAIL: %s" % e)
        return 1
    failed = [r for r in results if r.status == "fail"]
    ok = [r for r in results if r.status == "ok"]
    for r in results:
        if r.status == "skip":
            print(r.message)
    for r in failed:
        print("FAIL: " + r.message + "\n")
    docs = sorted({r.block.path for r in results if r.block is not None})
    readme = [r for r in results if r.block is not None and r.block.path == "README.md"]
    print("%d commands and shown files checked, %d failed, %d blocks skipped, in %s; "
          "%d generated document(s) left to their own test"
          % (len(ok) + len(failed), len(failed),
             sum(1 for r in results if r.status == "skip" and r.block is not None),
             ", ".join(docs), sum(1 for r in results if r.block is None)))
    if not readme:
        print("FAIL: found no command block in README.md: the parser is broken")
        return 1
    if failed:
        print("To show what the build prints: /usr/bin/python3 tools/update_docs_examples.py "
              "--attn %s" % exe)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
