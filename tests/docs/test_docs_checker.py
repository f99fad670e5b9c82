"""The docs-examples checker can fail: made-up documents with drifted,
reordered, failing and marked examples, checked against the built attn.

    /usr/bin/python3 test_docs_checker.py ATTN_EXE SOURCE_ROOT

Each case writes a README.md into a temporary source root (models/ and data/
link to the real ones; no ../shared beside it, so stories260K is absent) and
runs tests/docs/test_docs_examples.py and tools/update_docs_examples.py on
it. The expected output is known without attn: a one-token input has one
key, which gets all the weight (softmax of one score is 1).

Exit status: 0 pass, 1 fail, 77 skip (no executable).
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = "models/seed-attention/config.json"
CMD = 'attn run --config %s --text "the" --maps -' % SEED
HEADER = "input,stack,layer,kind,head,query_pos,query_token,key_pos,key_token,weight"
ROW0 = "0,encoder,0,self,0,0,the,0,the,1"
ROW1 = "0,encoder,0,self,1,0,the,0,the,1"
FAILS = []


def check(name, cond, detail=""):
    if cond:
        print("ok   %s" % name)
    else:
        print("FAIL %s\n%s" % (name, detail))
        FAILS.append(name)


def make_root(tmp, source_root, text, extra=None):
    root = os.path.join(tmp, "src")
    os.mkdir(root)
    for name in ("models", "data"):
        os.symlink(os.path.join(source_root, name), os.path.join(root, name))
    os.makedirs(os.path.join(root, "tests", "explain"))
    open(os.path.join(root, "tests", "explain", "test_attention_doc.py"), "w").close()
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)
    for path, body in (extra or {}).items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "w", encoding="utf-8") as f:
            f.write(body)
    return root


def run_check(exe, source_root, text, extra=None):
    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(tmp, source_root, text, extra)
        p = subprocess.run([sys.executable, os.path.join(HERE, "test_docs_examples.py"), exe,
                            root], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


def console(shown, marks=""):
    return "# t\n\nintro\n\n%s```console\n$ %s\n%s\n```\n" % (marks, CMD, "\n".join(shown))


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    exe, source_root = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not executable" % exe)
        return 77

    rc, out = run_check(exe, source_root, console([HEADER, ROW0, ROW1]))
    check("exact output as shown passes", rc == 0, out)

    drifted = ROW1[:-1] + "0.5"
    rc, out = run_check(exe, source_root, console([HEADER, ROW0, drifted]))
    check("a drifted number fails with a diff and file:line", rc == 1 and "README.md:6:" in out
          and "-" + drifted in out and "+" + ROW1 in out, out)

    rc, out = run_check(exe, source_root, console([HEADER, ROW0]))
    check("a missing line fails (exact is the default)", rc == 1, out)

    rc, out = run_check(exe, source_root, console([HEADER, "...", ROW1],
                                                  "<!-- output: excerpt -->\n"))
    check("an excerpt with a gap passes", rc == 0, out)

    rc, out = run_check(exe, source_root, console([HEADER, ROW1], "<!-- output: excerpt -->\n"))
    check("excerpt lines without `...` must be consecutive", rc == 1, out)

    rc, out = run_check(exe, source_root, console([ROW1, "...", ROW0],
                                                  "<!-- output: excerpt -->\n"))
    check("excerpt lines out of order fail", rc == 1, out)

    bad = "# t\n\n```sh\nattn run --config nope/config.json --text the\n```\n"
    rc, out = run_check(exe, source_root, bad)
    check("an unmarked failing command fails", rc == 1 and "README.md:4:" in out and
          "exits 1, not 0" in out, out)

    rc, out = run_check(exe, source_root, bad.replace("```sh", "```text") + console([HEADER, ROW0, ROW1])[3:])
    check("a ```text block is never run", rc == 0, out)

    rc, out = run_check(exe, source_root, "# t\n\n<!-- exit: 1 -->\n" + bad[5:])
    check("`exit: 1` accepts it", rc == 0, out)

    rc, out = run_check(exe, source_root, "# t\n\n<!-- skip: needs root -->\n" + bad[5:])
    check("`skip:` skips with its reason", rc == 0 and "skipped: needs root" in out, out)

    sudo = "# t\n\n```sh\nsudo meson install -C build\nattn run --config %s --text the\n```\n" % SEED
    rc, out = run_check(exe, source_root, sudo)
    check("a command that needs root is not run, and fails unmarked",
          rc == 1 and "would install" in out and "README.md:4:" in out, out)
    rc, out = run_check(exe, source_root, "# t\n\n<!-- skip: installs -->\n" + sudo[5:])
    check("... and is skipped when marked", rc == 0 and "skipped: installs" in out, out)

    indented = "# t\n\nSee:\n\n    attn run --config nope/config.json --text the\n\nmore\n"
    rc, out = run_check(exe, source_root, indented)
    check("an indented code block is checked too", rc == 1 and "README.md:5:" in out, out)

    unk = "# t\n\n```sh\nattn run --config %s --text \"the moon\" --maps -\n```\n" % SEED
    rc, out = run_check(exe, source_root, unk)
    check("an example with an unknown word fails", rc == 1 and "prints <unk>" in out, out)
    rc, out = run_check(exe, source_root, "# t\n\n<!-- unk: shows the unknown word -->\n" +
                        unk[5:])
    check("`unk:` allows it", rc == 0, out)

    stories = "# t\n\n```sh\nattn run --config stories260K/config.json --text x\n```\n"
    rc, out = run_check(exe, source_root, stories)
    check("a stories260K block is skipped when it is absent", rc == 0 and "absent" in out, out)

    rc, out = run_check(exe, source_root, "# t\n\n<!-- output: excerpt -->\n\ntext\n")
    check("a directive without its block is an error", rc == 1 and "not followed" in out, out)

    rc, out = run_check(exe, source_root, "# t\n\n<!-- output: excerpt -->\n```\nls\n```\n")
    check("a directive on a block without attn is an error",
          rc == 1 and "without an attn command" in out, out)

    filedoc = ("# t\n\n```sh\nattn run --config %s --text the --maps m.csv\n```\n\n"
               "<!-- file: m.csv -->\n```\n%s\n%s\n%s\n```\n")
    rc, out = run_check(exe, source_root, filedoc % (SEED, HEADER, ROW0, ROW1))
    check("`file:` compares a written file", rc == 0, out)
    rc, out = run_check(exe, source_root, filedoc % (SEED, HEADER, ROW0, drifted))
    check("`file:` fails on a drifted file", rc == 1 and "README.md:9:" in out, out)

    rc, out = run_check(exe, source_root, "# t\n", {"docs/attention.md": bad})
    check("docs/attention.md is left to its own test", rc == 1 and "does not exist" not in out and
          "found no command block in README.md" in out and
          "tests/explain/test_attention_doc.py regenerates it" in out, out)

    # the update tool rewrites drifted outputs so that the check passes, and keeps gaps
    with tempfile.TemporaryDirectory() as tmp:
        text = (console([HEADER, ROW0, drifted]) + "\n" +
                console([HEADER, "...", "0,encoder,0,self,1,0,the,0,the,7"],
                        "<!-- output: excerpt -->\n"))
        root = make_root(tmp, source_root, text)
        p = subprocess.run([sys.executable, os.path.join(source_root, "tools",
                                                         "update_docs_examples.py"),
                            "--attn", exe, "--root", root, "--no-attention-doc"],
                           capture_output=True, text=True)
        with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
            new = f.read()
        want = (console([HEADER, ROW0, ROW1]) + "\n" +
                console([HEADER, "...", ROW1], "<!-- output: excerpt -->\n"))
        check("update_docs_examples.py writes what attn prints", p.returncode == 0 and
              new == want, p.stdout + p.stderr + "\n---\n" + new)
        q = subprocess.run([sys.executable, os.path.join(HERE, "test_docs_examples.py"), exe,
                            root], capture_output=True, text=True)
        check("... and the check passes afterwards", q.returncode == 0, q.stdout)

    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
