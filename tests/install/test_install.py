#!/usr/bin/python3
"""meson install, the man page, the bash completion and the --help examples.

1. 'meson install --destdir' into a temporary folder installs the binary,
   libattn.a, include/attn/*.h, attn.pc, the man page and the completion.
2. A C program compiled with 'pkg-config --cflags --libs attn' (pointed at
   the installed attn.pc) links against the installed library and runs a
   bundled model.
3. Every flag that a command's --help lists appears in the man page and in
   the completion script's list of that command; the completion completes
   commands, flags and paths.
4. The --help of every command in EXAMPLES has an "Examples:" section whose
   commands run (on the bundled models, in a temporary folder) with exit 0.
5. groff -man -ww and man -l render the man page without a warning (skipped
   when they are not installed).

Usage: test_install.py ATTN_EXE SOURCE_ROOT BUILD_ROOT MESON [CC [SANITIZE]]
  CC, SANITIZE: the build's compiler and b_sanitize (e.g. address,undefined),
  which the program is built with too (a sanitized libattn.a needs them).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ATTN, ROOT, BUILD, MESON = sys.argv[1:5]
CC = sys.argv[5] if len(sys.argv) > 5 else "cc"
SANITIZE = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] not in ("", "none") else None
sys.path.insert(0, os.path.join(ROOT, "tests", "info"))
from checklist import Checklist  # noqa: E402
SHARED = os.path.join(ROOT, "..", "shared", "models", "stories260K")
MAN = os.path.join(ROOT, "docs", "attn.1")
COMPLETION = os.path.join(ROOT, "data", "bash-completion", "attn")

# Every command, and the ones whose --help must show examples that run.
# run and stats get theirs with their own work (issue 11); add them here.
COMMANDS = ["run", "stats", "lens", "patch", "ablate", "generate", "explain", "import", "info", "tokenize"]
EXAMPLES = ["", "run", "generate", "explain", "import", "info", "tokenize", "stats", "lens", "patch", "ablate"]  # "" = attn --help

check = Checklist()


def help_text(cmd):
    args = [ATTN] + ([cmd] if cmd else []) + ["--help"]
    p = subprocess.run(args, capture_output=True, text=True)
    check(p.returncode == 0, "%s --help: exit %d" % (cmd or "attn", p.returncode))
    return p.stdout


def help_flags(text):
    """The flags of the option lines (those that start with '-') and of the
    usage lines."""
    flags = set()
    usage = True
    for line in text.splitlines():
        if not line.strip():
            usage = False
        if usage or line.lstrip().startswith("-"):
            flags.update(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line))
    return flags


# ---- 1. the installed files ----

def check_install(dest):
    p = subprocess.run([MESON, "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir",
                        dest], capture_output=True, text=True)
    check(p.returncode == 0, "meson install: %s %s" % (p.stdout, p.stderr))
    pcs = glob.glob(os.path.join(dest, "**", "pkgconfig", "attn.pc"), recursive=True)
    check(len(pcs) == 1, "attn.pc installed: %s" % pcs)
    if len(pcs) != 1:
        return None
    libdir = os.path.dirname(os.path.dirname(pcs[0]))
    # the prefix: where bin/ is
    bins = glob.glob(os.path.join(dest, "**", "bin", "attn"), recursive=True)
    check(len(bins) == 1, "bin/attn installed: %s" % bins)
    prefix = os.path.dirname(os.path.dirname(bins[0]))
    want = [
        os.path.join(libdir, "libattn.a"),
        os.path.join(prefix, "include", "attn", "attn.h"),
        os.path.join(prefix, "include", "attn", "write.h"),
        os.path.join(prefix, "share", "man", "man1", "attn.1"),
        os.path.join(prefix, "share", "bash-completion", "completions", "attn"),
    ]
    for path in want:
        check(os.path.isfile(path), "installed: %s" % os.path.relpath(path, dest))
    for src in glob.glob(os.path.join(ROOT, "include", "attn", "*.h")):
        inst = os.path.join(prefix, "include", "attn", os.path.basename(src))
        check(os.path.isfile(inst) and open(inst, "rb").read() == open(src, "rb").read(),
              "header %s installed as it is" % os.path.basename(src))
    check(open(want[3], "rb").read() == open(MAN, "rb").read(), "man page installed as it is")
    p = subprocess.run([bins[0], "--version"], capture_output=True, text=True)
    check(p.returncode == 0 and p.stdout.startswith("attn "), "installed attn --version")
    return prefix, pcs[0]


# ---- 2. a program built against attn.pc ----

PROGRAM = r"""
#include <attn/attn.h>
#include <attn/write.h>
#include <stdio.h>
#include <string.h>

/* Counts the attention maps of a forward pass and sums their rows. */
typedef struct counter { int maps; double sum; } counter;
static bool wants(void *user, const attn_capture_key *key) {
    (void)user;
    return key->value == ATTN_V_WEIGHTS;
}
static attn_status emit(void *user, const attn_capture_key *key, const attn_capture_view *v,
                        attn_error *err) {
    (void)key; (void)err;
    counter *c = user;
    c->maps++;
    for (int i = 0; i < v->rows * v->cols; i++) c->sum += v->data[i];
    return ATTN_OK;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    attn_error err = {0};
    attn_model *m = NULL;
    if (attn_model_open(&m, argv[1], &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    const attn_config *cfg = attn_model_config(m);
    const attn_safetensors *st = attn_model_weights(m);
    size_t params = 0;
    for (size_t i = 0; i < attn_safetensors_count(st); i++)
        params += attn_safetensors_at(st, i)->numel;
    int *ids = NULL;
    size_t n = 0;
    attn_session *s = NULL;
    counter c = {0, 0};
    attn_capture cap = {wants, emit, &c};
    if (attn_tokenizer_encode(attn_model_tokenizer(m), "the cat sat", 11, &ids, &n, &err) ||
        attn_session_new(&s, m, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    attn_input in = {.ids = ids, .n = n};
    if (attn_session_forward(s, &in, &cap, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    printf("%s %d %d %zu %zu %d %.6f\n", attn_version(), cfg->n_layers, cfg->n_heads, params, n,
           c.maps, c.sum);
    attn_session_free(s);
    free(ids);
    attn_model_close(m);
    return 0;
}
"""


def check_program(prefix, pc, tmp):
    if not shutil.which("pkg-config") or not shutil.which(CC):
        print("skip: pkg-config or %s is absent" % CC)
        return
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc))
    p = subprocess.run(["pkg-config", "--define-variable=prefix=" + prefix, "--cflags", "--libs",
                        "attn"], capture_output=True, text=True, env=env)
    check(p.returncode == 0, "pkg-config attn: %s" % p.stderr)
    flags = p.stdout.split()
    check(any(f.startswith("-I" + prefix) for f in flags) and "-lattn" in flags,
          "pkg-config flags name the installed tree: %s" % flags)
    src = os.path.join(tmp, "prog.c")
    with open(src, "w") as f:
        f.write("#include <stdlib.h>\n" + PROGRAM)
    exe = os.path.join(tmp, "prog")
    sanitize = ["-fsanitize=" + SANITIZE] if SANITIZE else []
    p = subprocess.run([CC, "-std=c11", "-Wall", "-Werror", "-o", exe, src] + sanitize + flags,
                       capture_output=True, text=True)
    check(p.returncode == 0, "compiling against attn.pc: %s" % p.stderr)
    if p.returncode:
        return
    p = subprocess.run([exe, os.path.join(ROOT, "models", "tiny-decoder", "config.json")],
                       capture_output=True, text=True)
    out = p.stdout.split()
    check(p.returncode == 0 and len(out) == 7, "program: %s %s" % (p.stdout, p.stderr))
    if len(out) == 7:
        # 2 layers x 4 heads of 3 rows that each sum to 1
        check(out[:3] == ["0.1.0", "2", "4"] and out[4] == "3" and out[5] == "8" and
              abs(float(out[6]) - 24.0) < 1e-4, "program output %s" % out)
        info = subprocess.run([ATTN, "info", "--config", os.path.join(ROOT, "models",
                                                                      "tiny-decoder")],
                              capture_output=True, text=True).stdout
        check(" %s (" % out[3] in info, "program's parameter count %s is info's" % out[3])


# ---- 3. flags in the man page and the completion ----

def man_text():
    """The man page's source with the font escapes dropped and \\- as -."""
    s = open(MAN, encoding="utf-8").read()
    s = re.sub(r"\\f[BIRP]", "", s)
    return s.replace("\\-", "-")


def completion_lists():
    s = open(COMPLETION, encoding="utf-8").read()
    return {m.group(1): set(m.group(2).split())
            for m in re.finditer(r'_attn_flags_(\w+)="([^"]*)"', s)}


def check_flags():
    man = man_text()
    comp = completion_lists()
    main_help = help_text("")
    for cmd in COMMANDS:
        check(re.search(r"^  %s\b" % cmd, main_help, re.M) is not None,
              "attn --help lists %s" % cmd)
        check('.SS "attn %s' % cmd in man, "man page has a section for %s" % cmd)
        flags = help_flags(help_text(cmd))
        check(len(flags) > 0, "%s --help lists flags" % cmd)
        for flag in sorted(flags):
            check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), man) is not None,
                  "man page lacks %s %s" % (cmd, flag))
            check(flag in comp.get(cmd, set()), "completion lacks %s %s" % (cmd, flag))


def complete(line):
    """What the completion offers for the words of line (the last one being
    completed), run in bash."""
    words = line.split(" ")
    script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_attn\nprintf '%%s\\n' "
              "\"${COMPREPLY[@]}\"\n") % (
        COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1)
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT)
    check(p.returncode == 0, "completion of %r: %s" % (line, p.stderr))
    return set(p.stdout.split())


def check_completion():
    p = subprocess.run(["bash", "-n", COMPLETION], capture_output=True, text=True)
    check(p.returncode == 0, "bash -n completion: %s" % p.stderr)
    check({"tokenize"} == complete("attn tok"), "completes a command")
    check(set(COMMANDS) <= complete("attn "), "completes every command")
    check({"--json"} == complete("attn info --j"), "completes a flag")
    check({"--ids", "--ids-input"} == complete("attn tokenize --id"), "completes flags")
    check("models/tiny-decoder" in complete("attn info --config models/tiny-d"),
          "completes a model folder")
    check({"text", "csv", "jsonl"} == complete("attn tokenize --format "), "completes values")
    check({"llama2c"} == complete("attn import ll"), "completes the import format")


# ---- 4. the examples of --help ----

def examples(text):
    """The command lines of the "Examples:" section."""
    lines = text.splitlines()
    if "Examples:" not in lines:
        return None
    out = []
    for line in lines[lines.index("Examples:") + 1:]:
        if not line.strip():
            break
        out.append(line.strip())
    return out


def check_examples(tmp):
    bindir = os.path.dirname(os.path.abspath(ATTN))
    work = os.path.join(tmp, "examples")
    os.makedirs(work)
    os.symlink(os.path.join(ROOT, "models"), os.path.join(work, "models"))
    have_shared = os.path.exists(os.path.join(SHARED, "stories260K.bin"))
    if have_shared:
        for f in ("stories260K.bin", "tok512.bin"):
            os.symlink(os.path.join(SHARED, f), os.path.join(work, f))
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    for cmd in EXAMPLES:
        ex = examples(help_text(cmd))
        check(ex is not None and len(ex) > 0, "%s --help has an Examples section" %
              (cmd or "attn"))
        for line in ex or []:
            check(line.startswith("attn ") or "| attn " in line,
                  "%s example runs attn: %s" % (cmd, line))
            if "stories260K" in line and not have_shared:
                print("skip: %s (no %s)" % (line, SHARED))
                continue
            p = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, env=env,
                               capture_output=True, text=True)
            check(p.returncode == 0, "example of %s exits %d: %s\n%s" % (cmd or "attn",
                                                                      p.returncode, line,
                                                                      p.stderr))


# ---- 5. the man page renders cleanly ----

def check_render():
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-ww", "-z", MAN], capture_output=True, text=True)
        check(p.returncode == 0 and p.stderr == "", "groff -man -ww: %s" % p.stderr)
    else:
        print("skip: groff is absent")
    if shutil.which("man"):
        env = dict(os.environ, MANWIDTH="80", MANROFFSEQ="")
        p = subprocess.run(["man", "--warnings", "-l", MAN], capture_output=True, text=True,
                           env=env)
        check(p.returncode == 0 and p.stderr == "" and "attn tokenize" in p.stdout,
              "man -l: %s" % p.stderr)
    else:
        print("skip: man is absent")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        got = check_install(os.path.join(tmp, "dest"))
        if got:
            check_program(got[0], got[1], tmp)
        check_flags()
        check_completion()
        check_examples(tmp)
        check_render()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
