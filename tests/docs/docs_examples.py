"""The command examples of attn's Markdown docs: find them, run them, compare.

Used by tests/docs/test_docs_examples.py (compares only) and
tools/update_docs_examples.py (rewrites the shown outputs from real runs).
The markup convention is described in tests/docs/README.md; in short:

- A code block (fenced, or indented by 4 spaces after a blank line) is a
  *command block* when a command in it starts with `attn` (after optional
  `VAR=value` assignments), or when it has `$ ` lines and one of those runs
  `attn`.
- Console style: lines starting with `$ ` are commands (a trailing `\\`
  continues one on the next line); the lines after a command, up to the next
  `$ ` line, are what it prints (standard output and standard error as a
  terminal shows them). Compared exactly, after trailing spaces and trailing
  empty lines are dropped.
- Script style (no `$ ` line): every line is a command (comments and empty
  lines aside); nothing is shown, so each must exit 0.
- HTML comments on the lines just before a block change how it is checked:
    <!-- output: excerpt -->  shown lines are an excerpt: they appear in the
                              output in this order; lines not separated by a
                              line `...` are consecutive in the output
    <!-- output: none -->     run, check the exit status, compare nothing
    <!-- exit: N -->          every command of the block exits N (default 0)
    <!-- file: PATH -->       the block is the content of PATH, a file that
                              an earlier command of the same document wrote
    <!-- skip: REASON -->     not run; the reason is printed
    <!-- unk: REASON -->      the output may contain <unk> (otherwise an
                              example whose output has it fails: it uses a
                              word the model does not know)
- Every document runs in its own temporary folder (the commands of one
  document share it, in order): `models` and `data` link to the source tree,
  `stories260K.bin` and `tok512.bin` to ../shared/models/stories260K. A block
  that mentions stories260K is skipped, with that reason, when the folder is
  absent. Each command runs on its own with `bash -c`, standard input
  /dev/null, PATH with the built attn first, COLUMNS=80, NO_COLOR=1,
  TERM=dumb, LC_ALL=C.UTF-8. A command that would install, fetch or need
  root (sudo, apt-get, pip, curl, git, `meson install`, tools/deps.sh, ...)
  is never run: its block must be marked `skip:`.
- Numbers are compared exactly: src/compute/kernels.c gives the same bytes
  whichever CPU clone (AVX-512, AVX2, baseline) runs, so the docs show what
  every build prints. ATTN_DOCS_RTOL=1e-5 (say) compares the numbers of a
  line with that relative tolerance instead, for a platform whose libm
  rounds otherwise.
"""
import difflib
import glob
import os
import re
import shlex
import subprocess
import tempfile

# the documents whose code blocks are examples, relative to the source root
DOCUMENTS = ["README.md", "docs/*.md", "models/*/README.md", "bench/README.md",
             "data/README.md"]
# documents that another test checks as a whole: not run here
GENERATED = {
    "docs/attention.md": "generated from real runs by tools/make_attention_doc.py; "
                         "tests/explain/test_attention_doc.py regenerates it and fails on "
                         "any difference",
}
STORIES = os.path.join("..", "shared", "models", "stories260K")
DIRECTIVE = re.compile(r"^\s*<!--\s*(output|exit|file|skip|unk)\s*:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
GAP = ("...", "…")
UNK = "<unk>"  # the word tokenizers' unknown token: an example should not need it


class DocError(Exception):
    """A malformed example (a directive without a block, a bad value)."""


class Block:
    def __init__(self, path, line, lines, directives, indent=""):
        self.path = path            # relative to the source root
        self.indent = indent        # what each content line starts with in the document
        self.line = line            # 1-based line of the block's first content line
        self.lines = lines          # content lines, trailing spaces dropped
        self.directives = directives
        self.commands = []          # Command list
        self.console = False

    def where(self, line=None):
        return "%s:%d" % (self.path, line if line is not None else self.line)

    def directive(self, name):
        return self.directives.get(name)


class Command:
    def __init__(self, text, line, first, shown):
        self.text = text            # the command, continuations joined
        self.line = line            # 1-based line in the document
        self.first = first          # index of its first line in the block
        self.shown = shown          # shown output lines (console style), else None
        self.out_start = None       # index in block.lines of the first shown line
        self.out_end = None


def runs_attn(cmd):
    """Whether the command starts with attn (after VAR=value assignments)."""
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        words = cmd.split()
    for w in words:
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w):
            continue
        return w == "attn"
    return False


SYSTEM = re.compile(r"(^|[\s;&|(])(sudo|su|apt|apt-get|dpkg|pip3?|curl|wget|git)(\s|$)|"
                    r"\b(meson|ninja|make)\s+(\S+\s+)*install\b|(^|[\s;&|])tools/(deps\.sh|"
                    r"quickstart|test)\b")


def changes_system(cmd):
    """Whether a command installs, fetches or needs root: never run by the
    test (its block must say `skip:`)."""
    return bool(SYSTEM.search(cmd))


def pipeline_runs_attn(cmd):
    return any(runs_attn(part) for part in re.split(r"\|\|?|&&|;", cmd))


def join_continuations(lines, start):
    """The command starting at lines[start] and the index after it."""
    text = lines[start]
    i = start + 1
    while text.endswith("\\") and i < len(lines):
        text = text + "\n" + lines[i]
        i += 1
    return text, i


def parse_block(block):
    lines = block.lines
    if any(line.startswith("$ ") or line == "$" for line in lines):
        block.console = True
        i = 0
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i < len(lines) and not lines[i].startswith("$"):
            raise DocError("%s: a console block must start with a `$ ` line"
                           % block.where(block.line + i))
        while i < len(lines):
            text, j = join_continuations(lines, i)
            cmd = Command(text[2:], block.line + i, i, [])
            cmd.out_start = j
            while j < len(lines) and not lines[j].startswith("$ "):
                j += 1
            cmd.out_end = j
            cmd.shown = lines[cmd.out_start:j]
            block.commands.append(cmd)
            i = j
        return any(pipeline_runs_attn(c.text) for c in block.commands)
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        text, j = join_continuations(lines, i)
        block.commands.append(Command(text, block.line + i, i, None))
        i = j
    return any(runs_attn(c.text) for c in block.commands)


def blocks_of(root, path):
    """Every code block of a document: (Block, is_command_block) in order.
    Blocks with a `file:` directive count as checked blocks too."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    pending, pending_line = {}, None
    i = 0
    prev_blank, prev_text = True, ""
    while i < len(lines):
        line = lines[i]
        m = DIRECTIVE.match(line)
        if m:
            if m.group(1) in pending:
                raise DocError("%s:%d: a second `%s:` directive for one block"
                               % (path, i + 1, m.group(1)))
            pending[m.group(1)] = m.group(2)
            pending_line = i + 1
            i += 1
            continue
        fm = FENCE.match(line)
        content, plain = None, False
        if fm:
            indent, fence = len(fm.group(1)), fm.group(2)
            j = i + 1
            while j < len(lines):
                cm = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[j])
                if cm and cm.group(1)[0] == fence[0] and len(cm.group(1)) >= len(fence):
                    break
                j += 1
            content = [l[indent:] if l[:indent].strip() == "" else l.lstrip()
                       for l in lines[i + 1:j]]
            # ```text: prose laid out (a tree, a table), never commands
            plain = fm.group(3).strip() == "text"
            start, i, prefix = i + 2, j + 1, " " * indent
        elif (line.startswith("    ") or line.startswith("\t")) and prev_blank and \
                not re.match(r"^(\s*[-*+] |\s*\d+[.)] |\s+\S)", prev_text):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or lines[j].startswith("\t")
                                      or not lines[j].strip()):
                j += 1
            while j > i and not lines[j - 1].strip():
                j -= 1
            content = [l[4:] if l.startswith("    ") else l[1:] for l in lines[i:j]]
            start, i, prefix = i + 1, j, "    "
        if content is not None:
            b = Block(path, start, [l.rstrip() for l in content], pending, prefix)
            is_cmd = (not plain and parse_block(b)) or "file" in pending
            if pending and not is_cmd:
                raise DocError("%s:%d: the directive is for a block without an attn command "
                               "(and without `file:`)" % (path, pending_line))
            out.append((b, is_cmd))
            pending, pending_line = {}, None
            prev_blank, prev_text = False, "```"
            continue
        if line.strip():
            if pending:
                raise DocError("%s:%d: the directive is not followed by a code block"
                               % (path, pending_line))
            prev_text = line
        prev_blank = not line.strip()
        i += 1
    if pending:
        raise DocError("%s:%d: the directive is not followed by a code block"
                       % (path, pending_line))
    return out


def documents(root):
    found = []
    for pattern in DOCUMENTS:
        for p in sorted(glob.glob(os.path.join(root, pattern))):
            rel = os.path.relpath(p, root)
            if rel not in found:
                found.append(rel)
    return found


# ---------------------------------------------------------------------------
# running

class Session:
    """One document's folder: a temporary cwd, the PATH with attn first."""

    def __init__(self, exe, root):
        self.exe, self.root = exe, root
        self.tmp = tempfile.TemporaryDirectory(prefix="attn-docs-")
        self.cwd = os.path.join(self.tmp.name, "work")
        os.mkdir(self.cwd)
        bindir = os.path.join(self.tmp.name, "bin")
        os.mkdir(bindir)
        os.symlink(exe, os.path.join(bindir, "attn"))
        for name in ("models", "data"):
            os.symlink(os.path.join(root, name), os.path.join(self.cwd, name))
        stories = os.path.join(root, STORIES)
        self.have_stories = os.path.isfile(os.path.join(stories, "stories260K.bin"))
        if self.have_stories:
            for name in ("stories260K.bin", "tok512.bin"):
                os.symlink(os.path.abspath(os.path.join(stories, name)),
                           os.path.join(self.cwd, name))
        self.env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
                        COLUMNS="80", NO_COLOR="1", TERM="dumb", LC_ALL="C.UTF-8")
        self.env.pop("CLICOLOR_FORCE", None)

    def run(self, cmd):
        """(exit status, what the terminal shows: stdout and stderr merged)."""
        p = subprocess.run(["bash", "-c", cmd], cwd=self.cwd, env=self.env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
        return p.returncode, p.stdout.decode("utf-8", "backslashreplace")

    def read(self, path):
        with open(os.path.join(self.cwd, path), encoding="utf-8", errors="backslashreplace") as f:
            return f.read()

    def close(self):
        self.tmp.cleanup()


def normalize(lines):
    lines = [l.rstrip() for l in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def same_line(shown, actual, rtol):
    if shown == actual:
        return True
    if not rtol:
        return False
    if NUMBER.split(shown) != NUMBER.split(actual):
        return False
    a, b = NUMBER.findall(shown), NUMBER.findall(actual)
    for x, y in zip(a, b):
        x, y = float(x), float(y)
        if abs(x - y) > rtol * max(abs(x), abs(y)):
            return False
    return True


def chunks(shown):
    """Excerpt lines split at `...` lines: a list of line lists."""
    out, cur = [], []
    for line in shown:
        if line.strip() in GAP:
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(line)
    if cur:
        out.append(cur)
    return out


def excerpt_matches(shown, actual, rtol):
    pos = 0
    for chunk in chunks(shown):
        for start in range(pos, len(actual) - len(chunk) + 1):
            if all(same_line(c, actual[start + k], rtol) for k, c in enumerate(chunk)):
                pos = start + len(chunk)
                break
        else:
            return False
    return True


def skeleton(line):
    return NUMBER.sub("#", line)


def updated_excerpt(shown, actual):
    """The excerpt with each contiguous chunk replaced by the output lines it
    stands for: of the places after the previous chunk where every line
    matches the chunk's lines with the numbers ignored, the one with the most
    numbers equal (the first of those). None when a chunk is not found."""
    result, pos, cur = [], 0, []
    for line in shown + [None]:
        if line is not None and line.strip() not in GAP:
            cur.append(line)
            continue
        if cur:
            best = None
            for start in range(pos, len(actual) - len(cur) + 1):
                if all(skeleton(c) == skeleton(actual[start + k]) for k, c in enumerate(cur)):
                    score = sum(x == y for k, c in enumerate(cur)
                                for x, y in zip(NUMBER.findall(c),
                                                NUMBER.findall(actual[start + k])))
                    if best is None or score > best[0]:
                        best = (score, start)
            if best is None:
                return None
            result.extend(actual[best[1]:best[1] + len(cur)])
            pos = best[1] + len(cur)
            cur = []
        if line is not None:
            result.append(line)
    return result


def expected_exit(block):
    v = block.directive("exit")
    if v is None:
        return 0
    if not re.fullmatch(r"\d+", v):
        raise DocError("%s: `exit:` needs a number, not %r" % (block.where(), v))
    return int(v)


def output_mode(block):
    v = block.directive("output")
    if v is None:
        return "exact"
    if v not in ("excerpt", "none", "exact"):
        raise DocError("%s: `output:` is excerpt, none or exact, not %r" % (block.where(), v))
    return v


class Result:
    def __init__(self, block, line, status, message="", new_shown=None, cmd=None):
        self.block, self.line, self.status, self.message = block, line, status, message
        self.new_shown = new_shown  # what the shown lines should be (for --update)
        self.cmd = cmd              # the Command, or None for a file block


def check_shown(block, line, what, shown, actual_text, rtol, cmd=None):
    """Compare shown lines with actual output; a Result."""
    mode = output_mode(block)
    actual = normalize(actual_text.split("\n"))
    want = normalize(shown)
    if mode == "none":
        return Result(block, line, "ok", cmd=cmd)
    if mode == "exact":
        ok = len(want) == len(actual) and all(same_line(a, b, rtol) for a, b in zip(want, actual))
        new = actual
    else:
        ok = excerpt_matches(want, actual, rtol)
        new = updated_excerpt(want, actual)
    if ok:
        return Result(block, line, "ok", cmd=cmd)
    other = new if new is not None else actual
    diff = "\n".join(difflib.unified_diff(want, other, "%s:%d (shown)" % (block.path, line),
                                          "%s (printed%s)" % (what, ", the matching part"
                                                              if mode == "excerpt" and new
                                                              is not None else ""),
                                          lineterm=""))
    msg = "%s:%d: `%s` prints other output than the docs show%s:\n%s" % (
        block.path, line, what, " (an excerpt: lines in this order, `...` for left-out lines)"
        if mode == "excerpt" else "", diff)
    if mode == "excerpt" and new is None:
        msg += "\n(no place in the output matches the excerpt's lines, even with other numbers)"
    return Result(block, line, "fail", msg, new_shown=new, cmd=cmd)


def check_document(exe, root, path, rtol=0.0):
    """Results of every command block and file block of one document."""
    results = []
    if path in GENERATED:
        return [Result(None, 0, "skip", "%s: %s" % (path, GENERATED[path]))]
    session = Session(exe, root)
    try:
        for block, is_cmd in blocks_of(root, path):
            if not is_cmd:
                continue
            skip = block.directive("skip")
            if skip is not None:
                if not skip:
                    raise DocError("%s: `skip:` needs a reason" % block.where())
                results.append(Result(block, block.line, "skip",
                                      "%s: skipped: %s" % (block.where(), skip)))
                continue
            if "stories260K" in "\n".join(block.lines) and not session.have_stories:
                results.append(Result(block, block.line, "skip",
                                      "%s: skipped: needs %s, which is absent"
                                      % (block.where(), STORIES)))
                continue
            want_exit = expected_exit(block)
            fpath = block.directive("file")
            if fpath is not None:
                if block.commands and block.console:
                    raise DocError("%s: a `file:` block shows a file, not commands"
                                   % block.where())
                try:
                    text = session.read(fpath)
                except OSError as e:
                    results.append(Result(block, block.line, "fail",
                                          "%s: the block shows the file %s, which no earlier "
                                          "command wrote (%s)" % (block.where(), fpath,
                                                                  e.strerror)))
                    continue
                results.append(check_shown(block, block.line, fpath, block.lines, text, rtol))
                continue
            for cmd in block.commands:
                shown_cmd = re.sub(r"\s*\\\n\s*", " ", cmd.text)
                if changes_system(cmd.text):
                    results.append(Result(block, cmd.line, "fail",
                                          "%s: `%s` would install, fetch or need root: not "
                                          "run; mark its block <!-- skip: REASON -->"
                                          % (block.where(cmd.line), shown_cmd), cmd=cmd))
                    continue
                status, out = session.run(cmd.text)
                if status != want_exit:
                    results.append(Result(block, cmd.line, "fail",
                                          "%s: `%s` exits %d, not %d; it printed:\n%s"
                                          % (block.where(cmd.line), shown_cmd, status,
                                             want_exit, out.rstrip()[-3000:]), cmd=cmd))
                    continue
                if UNK in out and not block.directive("unk"):
                    results.append(Result(block, cmd.line, "fail",
                                          "%s: `%s` prints %s: the example has a word the "
                                          "model does not know (or say why with "
                                          "<!-- unk: REASON -->)" % (block.where(cmd.line),
                                                                     shown_cmd, UNK), cmd=cmd))
                elif cmd.shown is None:
                    results.append(Result(block, cmd.line, "ok", cmd=cmd))
                else:
                    results.append(check_shown(block, cmd.line, shown_cmd, cmd.shown, out, rtol,
                                               cmd))
    finally:
        session.close()
    return results


def check_all(exe, root, rtol=0.0):
    out = []
    for path in documents(root):
        out.extend(check_document(exe, root, path, rtol))
    return out
