"""The HTML head view, `attn run ... --html FILE` (docs/html.md; issue 11, item 7).

  test_html.py ATTN_EXE SOURCE_ROOT

Without a browser (always):
  - the page is self-contained: no http://, https://, src=, <link, @import or
    url( anywhere, every <script> is closed once;
  - hostile token texts (</script>, <!--, quotes, &, control bytes, bytes that
    are not UTF-8, U+2028) and a hostile config path (the title) cannot end
    an element early: the page's data parses back (Python's html.parser and
    json) to the labels the CSV maps of the same run show;
  - --layers/--heads select the maps of the page; usage errors exit 2 and
    leave no file; '-' writes the same page to standard output.
In headless Chromium (Debian's `chromium`; the test exits 77, meson's skip,
when it is absent), each page is loaded with #selftest, which makes the
page's script check itself and write a JSON result into <pre id="attn-selftest">
(printed by --dump-dom):
  - no JavaScript errors (window.onerror and console.error);
  - switching the layer, the head, "all heads", the attention kind, the input,
    and choosing a query or a key token change the canvas pixels;
  - the weights the page decodes equal the CSV maps of the same run within
    the documented precision (uint8: |error| <= 1/510), masked cells exactly
    where the CSV leaves entries out, for tiny-decoder, tiny-translator
    (cross-attention keys: the source tokens) and a batch;
  - a 512-token page of a random 12-layer, 12-head decoder loads and switches
    within a generous bound (the measured times are printed).
"""
import csv
import html
import html.parser
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

ATTN, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(ROOT, "tests", "csv"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import csvtext  # noqa: E402
import make_models  # noqa: E402

TOL = 1 / 510 + 1e-6  # uint8 quantisation, plus float32 rounding
BIG_LOAD_BOUND_S = 30.0  # in the page: from navigation start to the first view drawn
BIG_WALL_BOUND_S = 240.0  # the whole chromium run, startup and self-test included
CHROMIUM = shutil.which("chromium")
MODELS = os.path.join(ROOT, "models")
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(args, stdin=None):
    return subprocess.run([ATTN, "run"] + args, input=stdin, capture_output=True, timeout=600)


# ---- reading what attn wrote -------------------------------------------------

def read_maps(path):
    """{(input, stack, layer, kind, head): {(q, k): weight}} and the token
    texts {(input, stack, layer, kind, head): ({q: text}, {k: text})}."""
    maps, toks = {}, {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows)
        assert header[0] == "input" and header[-1] == "weight", header
        for r in rows:
            key = (r[0], r[1], int(r[2]), r[3], r[4])
            q, k = int(r[5]), int(r[7])
            maps.setdefault(key, {})[(q, k)] = float(r[9])
            qt, kt = toks.setdefault(key, ({}, {}))
            qt[q] = r[6]
            kt[k] = r[8]
    return maps, toks


class Scripts(html.parser.HTMLParser):
    """The <script> elements of a page: [(attrs dict, text)], and the title."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts, self.title, self._in, self._title = [], None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in = (dict(attrs), [])
        elif tag == "title":
            self._title, self.title = True, ""

    def handle_endtag(self, tag):
        if tag == "script" and self._in:
            self.scripts.append((self._in[0], "".join(self._in[1])))
            self._in = None
        elif tag == "title":
            self._title = False

    def handle_data(self, data):
        if self._in:
            self._in[1].append(data)
        elif self._title:
            self.title += data


def parse_page(text):
    p = Scripts()
    p.feed(text)
    p.close()
    return p


def static_checks(name, text):
    low = text.lower()
    for bad in ("http://", "https://", "src=", "<link", "@import", "url("):
        check(bad not in low, "%s: the page holds %r (it must be self-contained)" % (name, bad))
    p = parse_page(text)
    opened = len(re.findall(r"<script\b", text, re.I))
    closed = len(re.findall(r"</script", text, re.I))
    check(opened == closed == len(p.scripts),
          "%s: %d <script, %d </script, %d script elements" % (name, opened, closed, len(p.scripts)))
    kinds = [a.get("type", "code") for a, _ in p.scripts]
    check(kinds.count("code") == 1 and kinds[-1] == "code",
          "%s: one script of code, last (got %s)" % (name, sorted(set(kinds))))
    for a, t in p.scripts:
        if a.get("type") == "application/json":
            try:
                json.loads(t)
            except ValueError as e:
                check(False, "%s: a JSON block does not parse: %s" % (name, e))
    return p


def page_inputs(p):
    return [json.loads(t) for a, t in p.scripts if a.get("class") == "attn-input"]


def page_map_names(p):
    return sorted((a["data-seq"], a["data-name"]) for a, _ in p.scripts if a.get("class") == "attn-map")


# ---- the browser ------------------------------------------------------------

def selftest(path, tmp, nodata=False):
    """Loads path#selftest in headless Chromium: (the page's JSON result or
    None, the wall time in seconds, the browser's standard error)."""
    url = "file://" + urllib.parse.quote(os.path.abspath(path)) + ("#selftest=nodata" if nodata else "#selftest")
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    t0 = time.monotonic()
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--user-data-dir=" + profile,
                        "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                       capture_output=True, timeout=900)
    wall = time.monotonic() - t0
    shutil.rmtree(profile, ignore_errors=True)
    out = r.stdout.decode("utf-8", "replace")
    # the last one: the element the self-test appended to the body
    m = None
    for m in re.finditer(r'<pre id="attn-selftest">(.*?)</pre>', out, re.S):
        pass
    err = r.stderr.decode("utf-8", "replace")
    if not m:
        return None, wall, err
    return json.loads(html.unescape(m.group(1))), wall, err


def console_errors(stderr):
    """The page's console messages of level error that Chromium logs."""
    return [l for l in stderr.splitlines() if "CONSOLE" in l and ("ERROR" in l or "error" in l)]


def browser_checks(name, res, stderr, groups=1, inputs=1, layers=2):
    check(res is not None, "%s: the self-test wrote no result" % name)
    if res is None:
        print(stderr[-3000:])
        return False
    check(res["ok"] and not res["errors"], "%s: JavaScript errors %s" % (name, res["errors"]))
    check(not console_errors(stderr), "%s: console errors %s" % (name, console_errors(stderr)))
    ck = res["checks"]
    check(isinstance(ck.get("matrix_tip"), str) and "query 0" in ck["matrix_tip"],
          "%s: the matrix's tooltip %r" % (name, ck.get("matrix_tip")))
    for k in ("layer", "head", "all", "select_query", "select_key", "unchanged", "hover_token",
              "click_token"):
        if k == "layer" and layers < 2:
            continue
        check(ck.get(k) is True, "%s: check %s is %r (canvas pixels did not change)" % (name, k, ck.get(k)))
    if groups > 1:
        check(ck.get("group") is True, "%s: switching the attention kind changed nothing" % name)
    if inputs > 1:
        check(ck.get("input") is True, "%s: switching the input changed nothing" % name)
    return True


def compare(name, res, maps, toks, input_col):
    """The page's decoded maps against the CSV of the same run. input_col:
    {seq: the CSV's input column}."""
    seen = set()
    worst = 0.0
    inputs = {d["seq"]: d for d in res["inputs"]}
    for m in res["maps"]:
        stack, kind = m["group"].split(" ")
        key = (input_col[m["seq"]], stack, m["layer"], kind, m["head"])
        seen.add(key)
        ref = maps.get(key)
        check(ref is not None, "%s: the page has %s of input %s, the CSV not" % (name, m["name"], key[0]))
        if ref is None:
            continue
        bad = 0
        for i, row in enumerate(m["w"]):
            for j, q in enumerate(row):
                if q < 0:
                    if (i, j) in ref or not (m["causal"] and j > i):
                        bad += 1
                else:
                    d = abs(q / 255 - ref.get((i, j), float("nan")))
                    if not d <= TOL:
                        bad += 1
                    else:
                        worst = max(worst, d)
        check(bad == 0, "%s: %s: %d weights differ from the CSV by more than 1/510" % (name, m["name"], bad))
        check(len(m["w"]) == 1 + max(q for q, _ in ref) and m["K"] == 1 + max(k for _, k in ref),
              "%s: %s: %dx%d, the CSV %dx%d" % (name, m["name"], m["T"], m["K"],
                                               1 + max(q for q, _ in ref), 1 + max(k for _, k in ref)))
        # labels: the query side and the key side (the source for cross-attention)
        d = inputs[m["seq"]]
        ql, kl = d[m["q"]], d[m["k"]]
        qt, kt = toks[key]
        check(all(ql[i] == t for i, t in qt.items()) and all(kl[j] == t for j, t in kt.items()),
              "%s: %s: labels %s / %s, the CSV's %s / %s" % (name, m["name"], ql, kl, qt, kt))
    check(seen == set(maps), "%s: maps only in the CSV: %s" % (name, sorted(set(maps) - seen)[:5]))
    print("  %s: %d maps equal the CSV, largest |page - CSV| = %.6f (bound %.6f)" %
          (name, len(res["maps"]), worst, 1 / 510))


# ---- the cases ----------------------------------------------------------------

def page_and_csv(tmp, name, args, stdin=None, status=0):
    page, maps = os.path.join(tmp, name + ".html"), os.path.join(tmp, name + ".csv")
    r = run(args + ["--html", page, "--maps", maps], stdin)
    check(r.returncode == status, "%s: exit %d (want %d): %s" % (name, r.returncode, status, r.stderr[-500:]))
    with open(page, encoding="utf-8") as f:
        text = f.read()
    return page, text, read_maps(maps)


def case_model(tmp, name, args, groups, stdin=None, status=0, inputs=None):
    page, text, (maps, toks) = page_and_csv(tmp, name, args, stdin, status)
    p = static_checks(name, text)
    got = [d["input"] for d in page_inputs(p)]
    want = inputs if inputs is not None else [0]
    check(got == want, "%s: page inputs %s, want %s" % (name, got, want))
    if not CHROMIUM:
        return
    res, wall, err = selftest(page, tmp)
    print("  %s: %d bytes, chromium run %.1f s" % (name, len(text), wall))
    if browser_checks(name, res, err, groups=groups, inputs=len(want)):
        compare(name, res, maps, toks, {d["seq"]: str(d["input"]) for d in res["inputs"]})
        check(sorted({m["group"] for m in res["maps"]}) == sorted(groups_of(maps)),
              "%s: attention kinds %s" % (name, sorted({m["group"] for m in res["maps"]})))


def case_aggregate(tmp):
    """Maps made from several heads (--reduce, --rollout) and keyed batches:
    the page holds what the CSV of the same run holds, under the same head
    names ("mean", "rollout") and input keys, and loads without errors."""
    dec = os.path.join(MODELS, "tiny-decoder")
    cases = [("reduce-mean", ["--config", dec, "--text", "The cat sits on the mat", "--reduce", "mean"], None, [0]),
             ("rollout", ["--config", dec, "--text", "The cat sits on the mat", "--rollout"], None, [0]),
             ("keyed", ["--config", dec, "--keyed"], b"doc-a\tthe cat sits\ndoc-b\ta dog runs\n",
              ["doc-a", "doc-b"])]
    def shown(d):  # the input's name in the page: its key, else its number
        return d["key"] if d.get("key") is not None else d["input"]

    for name, args, stdin, want in cases:
        page, text, (maps, toks) = page_and_csv(tmp, name, args, stdin)
        p = static_checks(name, text)
        got = [shown(d) for d in page_inputs(p)]
        check(got == want, "%s: page inputs %s, want %s" % (name, got, want))
        heads = sorted({k[4] for k in maps})
        if name != "keyed":
            check(heads == [name.split("-")[-1]], "%s: the CSV's heads %s" % (name, heads))
        if not CHROMIUM:
            continue
        res, wall, err = selftest(page, tmp)
        if check(res is not None, "%s: the self-test wrote no result" % name):
            check(res["ok"] and not res["errors"], "%s: JavaScript errors %s" % (name, res["errors"]))
            check(not console_errors(err), "%s: console errors %s" % (name, console_errors(err)))
            compare(name, res, maps, toks, {d["seq"]: str(shown(d)) for d in res["inputs"]})


def groups_of(maps):
    return {"%s %s" % (k[1], k[3]) for k in maps}


HOSTILE = [b"</script>", b"<!--", b"\"q'uote\"", b"a&amp;b", b"\x01ctl", b"\xff\xfe",
           b"\xe2\x80\xa8", b"<b>", b"back\\slash", b"]]>"]


def case_hostile(tmp):
    """Token texts and a config path that would break a page written naively."""
    folder = os.path.join(tmp, "m<b>&\"'x")
    shutil.copytree(os.path.join(MODELS, "tiny-decoder"), folder)
    vpath = os.path.join(folder, "vocab.txt")
    with open(vpath, "rb") as f:
        vocab = f.read().split(b"\n")
    if vocab[-1] == b"":
        vocab.pop()
    # replace the last ids with the hostile tokens
    for i, t in enumerate(HOSTILE):
        vocab[len(vocab) - 1 - i] = t
    with open(vpath, "wb") as f:
        f.write(b"\n".join(vocab) + b"\n")
    cfg_path = os.path.join(folder, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    # the ones with punctuation are matched whole as listed special tokens
    cfg["tokenizer"]["special"] = [t.decode() for t in HOSTILE
                                   if re.search(rb"[!-/:-@\[-`{-~]", t) and not re.fullmatch(rb"<[^<>]+>", t)]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    text = b"the " + b" ".join(HOSTILE) + b" cat"
    name = "hostile"
    page, maps = os.path.join(tmp, name + ".html"), os.path.join(tmp, name + ".csv")
    r = subprocess.run([ATTN, "run", "--config", cfg_path, "--text", text, "--html", page,
                        "--maps", maps, "--layers", "0"], capture_output=True, timeout=600)
    check(r.returncode == 0, "hostile: exit %d: %s" % (r.returncode, r.stderr[-500:]))
    with open(page, encoding="utf-8") as f:  # the page is valid UTF-8
        page_text = f.read()
    p = static_checks(name, page_text)
    labels = page_inputs(p)[0]["main"]
    want = ["the"] + [csvtext.escape(t) for t in HOSTILE] + ["cat"]
    check(labels == want, "hostile: page labels %r, want %r" % (labels, want))
    check(p.title == "attn head view: " + cfg_path, "hostile: title %r" % p.title)
    meta = [json.loads(t) for a, t in p.scripts if a.get("id") == "attn-meta"]
    check(meta and meta[0]["title"] == cfg_path, "hostile: meta title %r" % (meta and meta[0]["title"]))
    for bad in ("\u2028", "\x01", "<!--", "</script><"):
        check(bad not in page_text, "hostile: the page holds %r" % bad)
    mp, tk = read_maps(maps)
    if CHROMIUM:
        res, wall, err = selftest(page, tmp)
        if browser_checks(name, res, err, layers=1):
            check(res["inputs"][0]["main"] == want, "hostile: labels in the browser %r" % res["inputs"][0]["main"])
            compare(name, res, mp, tk, {0: "0"})


def case_selection(tmp):
    page = os.path.join(tmp, "sel.html")
    r = run(["--config", os.path.join(MODELS, "tiny-decoder"), "--text", "the cat sits",
             "--layers", "1", "--heads", "0", "--html", page])
    check(r.returncode == 0, "selection: exit %d: %s" % (r.returncode, r.stderr))
    with open(page, encoding="utf-8") as f:
        p = static_checks("selection", f.read())
    names = page_map_names(p)
    check(names == [("0", "blocks.1.attn.weights.h0")], "selection: maps %s" % names)


def case_stdout(tmp):
    page = os.path.join(tmp, "file.html")
    args = ["--config", os.path.join(MODELS, "tiny-decoder"), "--text", "the cat sits on the mat"]
    a = run(args + ["--html", page])
    b = run(args + ["--html", "-"])
    with open(page, "rb") as f:
        data = f.read()
    check(a.returncode == 0 and b.returncode == 0 and b.stdout == data and b"</html>" in data,
          "stdout: --html - differs from --html FILE (%d, %d bytes)" % (len(b.stdout), len(data)))


def case_usage(tmp):
    model = os.path.join(MODELS, "tiny-decoder")
    out = os.path.join(tmp, "usage")
    os.mkdir(out)
    page = os.path.join(out, "p.html")
    cases = [
        (["--html", ""], 2, "--html: expected a file name"),
        (["--html", "-", "--maps", "-"], 2, "standard output"),
        (["--html", page, "--maps", page], 2, "the same file"),
        (["--html", "-", "--top-k", "2"], 2, "standard output"),
        (["--html", os.path.join(out, "no", "such", "p.html")], 1, "no/such"),
        (["--html", page, "--layers", "7"], 2, "--layers"),
    ]
    for extra, status, msg in cases:
        r = run(["--config", model, "--text", "the cat"] + extra)
        err = r.stderr.decode("utf-8", "replace")
        check(r.returncode == status and msg in err and err.count("\n") == 1,
              "usage %s: exit %d, %r" % (extra, r.returncode, err))
        check(os.listdir(out) == [] and not r.stdout, "usage %s: left %s" % (extra, os.listdir(out)))


def case_big(tmp):
    """512 tokens x 12 layers x 12 heads of a random decoder."""
    cfg = dict(architecture="decoder", vocab_size=64, d_model=48, n_heads=12, d_ff=64,
               max_seq_len=512, n_layers=12, positional="learned", norm="layernorm",
               norm_position="pre", mlp="gelu", bias=True, lm_head="none")
    spec = make_models.build(make_models.Spec("big", cfg, seq_len=512, seed=1107), tmp)
    rng = random.Random(11)
    ids = ",".join(str(rng.randrange(64)) for _ in range(512))
    page = os.path.join(tmp, "big.html")
    t0 = time.monotonic()
    r = run(["--config", spec.config, "--ids", ids, "--html", page])
    t_write = time.monotonic() - t0
    check(r.returncode == 0, "big: exit %d: %s" % (r.returncode, r.stderr))
    size = os.path.getsize(page)
    with open(page, encoding="utf-8") as f:
        p = static_checks("big", f.read())
    n_maps = len(page_map_names(p))
    check(n_maps == 144, "big: %d maps" % n_maps)
    print("  big: 512 tokens x 12 layers x 12 heads: %d maps, %.1f MB, written in %.1f s" %
          (n_maps, size / 1e6, t_write))
    if not CHROMIUM:
        return
    res, wall, err = selftest(page, tmp, nodata=True)
    if not browser_checks("big", res, err):
        return
    ck = res["checks"]
    loaded = ck["first_drawn_ms"] / 1000
    print("  big: chromium run %.1f s; in the page (from navigation start): parsed, script run %.1f s, "
          "first view drawn %.1f s; 8 redraws (render, pixel read ms: %s) %.1f s; all 144 maps "
          "decoded %.1f s" % (wall, res["load_ms"] / 1000, loaded, ck.get("render_hash_ms"),
                              ck["switch_ms"] / 1000, ck["decode_all_ms"] / 1000))
    check(loaded < BIG_LOAD_BOUND_S, "big: the page took %.1f s to load and draw (bound %.0f s)" %
          (loaded, BIG_LOAD_BOUND_S))
    check(wall < BIG_WALL_BOUND_S, "big: chromium ran %.1f s (bound %.0f s)" % (wall, BIG_WALL_BOUND_S))
    cells = 512 * 513 // 2
    check(len(res["maps"]) == 144 and all(m["cells"] == cells and m["causal"] for m in res["maps"]),
          "big: decoded maps %d, cells %s" % (len(res["maps"]), sorted({m["cells"] for m in res["maps"]})))
    # each row of a softmax sums to 1: the bytes of a row sum to 255 within 1/2 per weight
    check(all(abs(m["sum"] - 255 * 512) <= cells / 2 for m in res["maps"]),
          "big: byte sums %s" % sorted({m["sum"] for m in res["maps"]})[:4])


def main():
    with tempfile.TemporaryDirectory(prefix="attn-html-") as tmp:
        case_usage(tmp)
        case_selection(tmp)
        case_stdout(tmp)
        case_hostile(tmp)
        dec = os.path.join(MODELS, "tiny-decoder")
        tr = os.path.join(MODELS, "tiny-translator")
        case_model(tmp, "tiny-decoder", ["--config", dec, "--text", "The cat sits on the mat"], 1)
        case_model(tmp, "tiny-translator", ["--config", tr, "--source", "the cat sits on the mat .",
                                            "--text", "dine fobu dapo fobu losotu pofo ."], 3)
        # batch: line 2 is bad (no tokens) and is not in the page; the numbering goes on
        case_model(tmp, "batch", ["--config", dec], 1, stdin=b"the cat sits\n\na dog runs on the mat\n",
                   status=1, inputs=[0, 2])
        case_aggregate(tmp)
        case_big(tmp)
    print("%d checks, %d failures%s" % (checks, len(failures),
                                        "" if CHROMIUM else " (no chromium: the browser checks were skipped)"))
    if failures:
        sys.exit(1)
    if not CHROMIUM:
        sys.exit(77)


if __name__ == "__main__":
    main()
