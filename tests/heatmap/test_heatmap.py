"""attn run --heatmap DIR [--heatmap-grid] (docs/heatmaps.md): the PNGs,
decoded here (png.py: zlib and struct, no imaging library), against the
maps CSV of the same run and, for random models, the float64 reference
(tests/reference/attn_ref.py).

  test_heatmap.py ATTN_EXE SOURCE_ROOT

For every map: (a) the image size is the layout formula of docs/heatmaps.md;
(b) the colour of each cell is monotonic in its weight (the relative
luminance of the cell's colour never falls as the weight rises, and rises
between weights more than two colormap steps apart); (c) the strongest cell
of each row in the image is the row's largest weight in the CSV (and in the
reference); (d) masked cells (a decoder's self-attention, key after query)
carry the documented grey hatch, every other cell one flat colour that is no
grey; the colour bar's top is the colour of the map's largest weight. Long
inputs (200 positions) get 4-pixel cells and every 4th label only; both
fonts (ATTN_FONT=none and DejaVu Sans when installed); grids; selection;
batch mode (a bad line leaves no folder); and bad values exit 2 or 1 with one
line and leave nothing behind.
"""
import bisect
import csv
import glob
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import png  # noqa: E402

ATTN, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import attn_ref  # noqa: E402
import make_models  # noqa: E402

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


class Tally:
    """The checks made and the names of those that failed (each printed)."""

    def __init__(self):
        self.count, self.failed = 0, []

    def __call__(self, name, ok, detail=""):
        self.count += 1
        if not ok:
            self.failed.append(name)
            print("FAIL %s%s" % (name, ": " + detail if detail else ""))
        return ok


check = Tally()


# -- the layout of docs/heatmaps.md ------------------------------------------
PAD, TITLE, LABELS, GAP, SEP, AREA_MIN = 8, 20, 80, 4, 16, 120
BAR_GAP, BAR_W, TICK, TICK_LABELS = 16, 14, 4, 48
CELL_MAX, CELL_MIN, BUDGET, PITCH = 24, 4, 800, 14
MAX_SIDE, MAX_PIXELS = 8192, 1 << 25
MASK_GROUND, MASK_LINE = 0x90, 0xC8


class Layout:
    def __init__(self, T, Tk, n, title):
        self.cols = 1
        while self.cols * self.cols < n:
            self.cols += 1
        self.rows = -(-n // self.cols)
        self.title = title
        cell = min(max(BUDGET // max(T, Tk), CELL_MIN), CELL_MAX)
        self._size(T, Tk, cell)
        while (self.width > MAX_SIDE or self.height > MAX_SIDE or
               self.width * self.height > MAX_PIXELS) and cell > 1:
            cell -= 1
            self._size(T, Tk, cell)
        self.cell = cell
        self.step = -(-PITCH // cell)

    def _size(self, T, Tk, c):
        self.area_w, self.area_h = max(Tk * c, AREA_MIN), max(T * c, AREA_MIN)
        self.panel_w = LABELS + GAP + self.area_w
        self.panel_h = TITLE + LABELS + GAP + self.area_h
        self.width = (2 * PAD + self.cols * self.panel_w + (self.cols - 1) * SEP + BAR_GAP +
                      BAR_W + TICK + TICK_LABELS)
        self.height = (2 * PAD + (TITLE if self.title else 0) + self.rows * self.panel_h +
                       (self.rows - 1) * SEP)

    def panel(self, i):
        """Top left corner of panel i and of its grid of cells."""
        x0 = PAD + (i % self.cols) * (self.panel_w + SEP)
        y0 = PAD + (TITLE if self.title else 0) + (i // self.cols) * (self.panel_h + SEP)
        return x0, y0, x0 + LABELS + GAP, y0 + TITLE + LABELS + GAP

    def bar(self):
        x = PAD + self.cols * self.panel_w + (self.cols - 1) * SEP + BAR_GAP
        y = PAD + (TITLE if self.title else 0) + TITLE + LABELS + GAP
        return x, y, self.area_h


def luminance(rgb):
    def lin(v):
        v /= 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def is_grey(p):
    return p[0] == p[1] == p[2]


# -- running attn --------------------------------------------------------------
def run(args, stdin=None, font=None):
    env = dict(os.environ)
    env.pop("ATTN_FONT", None)
    if font is not None:
        env["ATTN_FONT"] = font
    p = subprocess.run([ATTN] + args, input=stdin, capture_output=True, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def read_maps(path):
    """{(input, stack, layer, kind, head): {(q, k): weight}} of a maps CSV."""
    maps = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["input"], row["stack"], int(row["layer"]), row["kind"], row["head"])
            maps.setdefault(key, {})[(int(row["query_pos"]), int(row["key_pos"]))] = \
                float(row["weight"])
    return maps


def capture_name(stack, layer, kind, head, pair):
    """attn_capture_name of a weights map (docs/dumps names): encoder.blocks
    for the encoder of an encoder-decoder, attn or cross."""
    prefix = "encoder.blocks" if pair and stack == "encoder" else "blocks"
    part = "cross" if kind == "cross" else "attn"
    name = "%s.%d.%s.weights" % (prefix, layer, part)
    if head is None:
        return name
    return name + (".h%s" % head if head.isdigit() else "." + head)


def ink_runs(img, x0, x1, y0, y1, vertical):
    """Runs of lines (rows when vertical, else columns) of the box that hold
    a dark pixel (a label's ink); a gap of one line (the dot of an i) does
    not end a run: labels are at least 2 lines apart (LABEL_PITCH 14, lines
    of 12)."""
    outer = range(y0, y1) if vertical else range(x0, x1)
    inner = range(x0, x1) if vertical else range(y0, y1)
    dark = [any(luminance(img.pixel(b, a) if vertical else img.pixel(a, b)) < 0.5 for b in inner)
            for a in outer]
    for j in range(1, len(dark) - 1):
        if not dark[j] and dark[j - 1] and dark[j + 1]:
            dark[j] = True
    return sum(1 for j, d in enumerate(dark) if d and (j == 0 or not dark[j - 1]))


def check_panel(name, img, lay, i, weights, T, Tk, causal, vmax, labels=True, ref=None):
    """One map [T, Tk] (weights {(q, k): w}, masked entries absent) in panel i."""
    x0, y0, gx, gy = lay.panel(i)
    c = lay.cell
    cells = {}
    masked_ok = flat_ok = True
    for q in range(T):
        for k in range(Tk):
            px = [img.pixel(gx + k * c + dx, gy + q * c + dy) for dy in range(c) for dx in range(c)]
            if causal and k > q:
                want = [MASK_LINE if (gx + k * c + dx + gy + q * c + dy) % 4 == 0 else MASK_GROUND
                        for dy in range(c) for dx in range(c)]
                if [p[0] if is_grey(p) else -1 for p in px] != want:
                    masked_ok = False
                continue
            if any(p != px[0] for p in px) or is_grey(px[0]):
                flat_ok = False
            cells[(q, k)] = px[0]
    check(name + ": masked cells hatched grey", masked_ok)
    check(name + ": other cells flat, not grey", flat_ok)
    check(name + ": a cell for every CSV weight", set(cells) == set(weights),
          "%d cells, %d weights" % (len(cells), len(weights)))
    if set(cells) != set(weights):
        return
    # (b) monotonic: luminance never falls as the weight rises
    order = sorted(cells, key=lambda qk: weights[qk])
    lum = [luminance(cells[qk]) for qk in order]
    bad = [(order[j], order[j + 1]) for j in range(len(order) - 1) if lum[j + 1] < lum[j] - 1e-12]
    check(name + ": colour monotonic in the weight", not bad, str(bad[:3]))
    step = vmax / 255.0
    ws = [weights[qk] for qk in order]
    apart = []
    for j in range(len(order)):
        j2 = bisect.bisect_right(ws, ws[j] + 2 * step)
        if j2 < len(order) and lum[j2] <= lum[j]:
            apart.append((order[j], order[j2]))
    check(name + ": weights apart have colours apart", not apart, str(apart[:3]))
    # (c) the strongest cell of each row
    for q in range(T):
        row = [k for k in range(Tk) if (q, k) in cells]
        best_img = max(row, key=lambda k: luminance(cells[(q, k)]))
        best_csv = max(row, key=lambda k: weights[(q, k)])
        ok = (cells[(q, best_csv)] == cells[(q, best_img)] and
              weights[(q, best_img)] >= weights[(q, best_csv)] - step)
        check("%s: row %d strongest cell" % (name, q), ok,
              "image key %d, CSV key %d" % (best_img, best_csv))
        if ref is not None:
            best_ref = max(row, key=lambda k: ref[q][k])
            check("%s: row %d strongest cell = reference" % (name, q),
                  ref[q][best_img] >= ref[q][best_ref] - step - 1e-6,
                  "image key %d, reference key %d" % (best_img, best_ref))
    # the colour bar: from vmax (top) down to 0
    bx, by, bh = lay.bar()
    bar = [img.pixel(bx + BAR_W // 2, by + y) for y in range(bh)]
    check(name + ": colour bar falls from top to bottom",
          all(luminance(bar[y + 1]) <= luminance(bar[y]) for y in range(bh - 1)))
    top = max(cells, key=lambda qk: weights[qk])
    if abs(weights[top] - vmax) < 1e-9:
        check(name + ": colour bar top = the largest weight's colour", bar[0] == cells[top],
              "%s vs %s" % (bar[0], cells[top]))
    if labels:
        rows_drawn = len(range(0, T, lay.step))
        got = ink_runs(img, x0, gx - GAP, gy - GAP, min(img.height, gy + lay.area_h + 8), True)
        check(name + ": %d row labels (every %d)" % (rows_drawn, lay.step), got == rows_drawn,
              "%d ink runs" % got)
        cols_drawn = len(range(0, Tk, lay.step))
        got = ink_runs(img, gx - GAP, gx + lay.area_w + 12, y0 + TITLE, gy - GAP, False)
        check(name + ": %d column labels" % cols_drawn, got == cols_drawn, "%d ink runs" % got)
    # the title band holds a text
    check(name + ": title drawn", ink_runs(img, x0, x0 + lay.panel_w, y0, y0 + TITLE, True) >= 1)


class Case:
    """One input of one model, run with --maps and --heatmap."""

    def __init__(self, name, config, args, pair, ref=None):
        self.name, self.config, self.args, self.pair, self.ref = name, config, args, pair, ref


def map_shapes(maps):
    shapes = {}
    for key, w in maps.items():
        T = max(q for q, _ in w) + 1
        Tk = max(k for _, k in w) + 1
        shapes[key] = (T, Tk)
    return shapes


def check_case(case, tmp, font, grid=False):
    tag = "%s [%s%s]" % (case.name, "font " + font if font else "default font",
                         ", grid" if grid else "")
    out = os.path.join(tmp, "hm-%d" % random.randrange(1 << 30))
    csv_path = out + ".csv"
    args = ["run", "--config", case.config] + case.args + ["--maps", csv_path, "--heatmap", out]
    if grid:
        args.append("--heatmap-grid")
    rc, _, err = run(args, font=font)
    if not check(tag + ": exit 0", rc == 0, err.strip()):
        return
    maps = read_maps(csv_path)
    shapes = map_shapes(maps)
    files = set(os.listdir(out))
    if not grid:
        want = {capture_name(s, l, k, h, case.pair) + ".png" for (_, s, l, k, h) in maps}
        check(tag + ": one PNG per map", files == want, "%s vs %s" % (sorted(files), sorted(want)))
        for key, w in sorted(maps.items()):
            _, s, l, k, h = key
            T, Tk = shapes[key]
            name = capture_name(s, l, k, h, case.pair)
            img = png.read(os.path.join(out, name + ".png"))
            lay = Layout(T, Tk, 1, False)
            if not check("%s %s: size %dx%d" % (tag, name, lay.width, lay.height),
                         (img.width, img.height) == (lay.width, lay.height),
                         "got %dx%d" % (img.width, img.height)):
                continue
            causal = s == "decoder" and k == "self"
            ref = case.ref.maps[(s, l, k, int(h))] if case.ref is not None else None
            check_panel("%s %s" % (tag, name), img, lay, 0, w, T, Tk, causal, max(w.values()),
                        ref=ref)
        return
    groups = {}
    for key in maps:
        _, s, l, k, h = key
        groups.setdefault((s, l, k), []).append(key)
    want = {capture_name(s, l, k, None, case.pair) + ".png" for (s, l, k) in groups}
    check(tag + ": one PNG per layer", files == want, "%s vs %s" % (sorted(files), sorted(want)))
    for (s, l, k), keys in sorted(groups.items()):
        keys.sort(key=lambda key: int(key[4]))
        name = capture_name(s, l, k, None, case.pair)
        T, Tk = shapes[keys[0]]
        img = png.read(os.path.join(out, name + ".png"))
        lay = Layout(T, Tk, len(keys), True)
        if not check("%s %s: size %dx%d" % (tag, name, lay.width, lay.height),
                     (img.width, img.height) == (lay.width, lay.height),
                     "got %dx%d" % (img.width, img.height)):
            continue
        vmax = max(max(maps[key].values()) for key in keys)
        for i, key in enumerate(keys):
            check_panel("%s %s head %s" % (tag, name, key[4]), img, lay, i, maps[key], T, Tk,
                        s == "decoder" and k == "self", vmax)
        check(tag + " " + name + ": grid title drawn",
              ink_runs(img, PAD, img.width - PAD, PAD, PAD + TITLE, True) >= 1)


# -- the PNG decoder itself, on PNGs made here with each filter type -----------
def encode_png(w, h, rgb, filters):
    raw = bytearray()
    stride = w * 3
    prev = bytes(stride)
    for y in range(h):
        line = rgb[y * stride:(y + 1) * stride]
        ft = filters[y % len(filters)]
        out = bytearray()
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b = prev[i]
            c = prev[i - 3] if i >= 3 else 0
            pred = [0, a, b, (a + b) >> 1, png._paeth(a, b, c)][ft]
            out.append((line[i] - pred) & 255)
        raw += bytes([ft]) + out
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def test_decoder():
    rnd = random.Random(5)
    w, h = 7, 10
    rgb = bytes(rnd.randrange(256) for _ in range(w * h * 3))
    img = png.decode(encode_png(w, h, rgb, [0, 1, 2, 3, 4]))
    check("png decoder: five filter types", img.data == rgb)


# -- the models ------------------------------------------------------------------
def model_words(config):
    with open(config) as f:
        cfg = json.load(f)
    with open(os.path.join(os.path.dirname(config), cfg["tokenizer"]["vocab"]),
              encoding="utf-8") as f:
        vocab = [w for w in f.read().split("\n") if w]
    return [w for w in vocab if not w.startswith("<")]


def random_models(tmp):
    """A random decoder with room for 200 positions, and the random
    encoder-decoder of the reference tests, with float64 references."""
    cases = []
    spec = make_models.Spec("long", make_models._cfg(
        architecture="decoder", vocab_size=40, d_model=16, n_heads=2, d_ff=32, max_seq_len=256,
        n_layers=1, positional="learned", norm="layernorm", norm_position="pre", mlp="gelu",
        bias=True, lm_head="tied"), seq_len=200, seed=211)
    make_models.build(spec, tmp)
    words = [w for w in make_models.vocabulary(40)[1:] if w.isalnum()]
    rnd = random.Random(7)
    text = " ".join(rnd.choice(words) for _ in range(200))
    model = attn_ref.Model.load(spec.config)
    ids = model.encode_words(text)
    cases.append(Case("random long decoder", spec.config, ["--text", text], False, model.run(ids)))
    tr = [s for s in make_models.SPECS if s.name == "transformer"][0]
    make_models.build(tr, tmp)
    words = [w for w in make_models.vocabulary(tr.cfg["vocab_size"])[1:] if w.isalnum()]
    src = " ".join(rnd.choice(words) for _ in range(tr.src_len))
    tgt = " ".join(rnd.choice(words) for _ in range(tr.seq_len))
    model = attn_ref.Model.load(tr.config)
    ref = model.run(model.encode_words(tgt), model.encode_words(src))
    cases.append(Case("random encoder-decoder", tr.config, ["--source", src, "--text", tgt], True,
                      ref))
    return cases


def bundled():
    m = lambda name: os.path.join(ROOT, "models", name, "config.json")  # noqa: E731
    return [
        Case("tiny-decoder", m("tiny-decoder"), ["--text", "The cat sits on the mat"], False),
        Case("tiny-encoder", m("tiny-encoder"), ["--text", "the dog chases a ball in the park"],
             False),
        Case("tiny-translator", m("tiny-translator"),
             ["--source", "the cat sits on the mat .", "--text", "dine fobu dapo fobu losotu pofo ."],
             True),
    ]


def leftovers(path):
    return glob.glob(glob.escape(path.rstrip("/")) + ".tmp.*")


def test_bad_values(tmp):
    cfg = os.path.join(ROOT, "models", "tiny-decoder", "config.json")
    base = ["run", "--config", cfg, "--text", "the cat"]

    def refused(name, args, status, must_mention, out=None, font=None):
        rc, stdout, err = run(base + args, font=font)
        lines = err.strip().split("\n")
        check(name + ": exit %d" % status, rc == status, "exit %d: %s" % (rc, err.strip()))
        check(name + ": one line naming it", len(lines) == 1 and must_mention in lines[0],
              err.strip())
        if out:
            check(name + ": no temporary left", not leftovers(out), str(leftovers(out)))
    refused("--heatmap-grid alone", ["--heatmap-grid"], 2, "--heatmap")
    full = os.path.join(tmp, "full")
    os.mkdir(full)
    with open(os.path.join(full, "keep.txt"), "w") as f:
        f.write("x")
    refused("non-empty DIR", ["--heatmap", full], 2, full, full)
    check("non-empty DIR: untouched", os.listdir(full) == ["keep.txt"])
    afile = os.path.join(tmp, "afile")
    open(afile, "w").close()
    refused("DIR is a file", ["--heatmap", afile], 2, afile, afile)
    missing = os.path.join(tmp, "no-such-folder", "out")
    refused("DIR in a missing folder", ["--heatmap", missing], 1, missing, missing)
    check("DIR in a missing folder: nothing made", not os.path.exists(os.path.dirname(missing)))
    refused("empty DIR name", ["--heatmap", ""], 2, "--heatmap")
    out = os.path.join(tmp, "fontless")
    refused("ATTN_FONT missing file", ["--heatmap", out], 1, "ATTN_FONT", out,
            font=os.path.join(tmp, "no-such.ttf"))
    check("ATTN_FONT missing file: no DIR", not os.path.exists(out))
    refused("ATTN_FONT not a font", ["--heatmap", out], 1, "ATTN_FONT", out, font=cfg)
    check("ATTN_FONT not a font: no DIR", not os.path.exists(out))
    # a run that fails after the folder was made leaves nothing
    rc, _, err = run(["run", "--config", cfg, "--text", " ".join(["cat"] * 40), "--heatmap", out])
    check("too long input: exit 2", rc == 2, err)
    check("too long input: no DIR, no temporary", not os.path.exists(out) and not leftovers(out))
    # an existing empty DIR is fine
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    rc, _, err = run(base + ["--heatmap", empty + "/"])
    check("empty DIR: written", rc == 0 and len(os.listdir(empty)) == 8, err)


def test_selection_batch(tmp):
    cfg = os.path.join(ROOT, "models", "tiny-decoder", "config.json")
    out = os.path.join(tmp, "sel")
    rc, _, err = run(["run", "--config", cfg, "--text", "the cat sits", "--heatmap", out,
                      "--layers", "1", "--heads", "0,2"])
    check("selection: exit 0", rc == 0, err)
    check("selection: only the selected maps", sorted(os.listdir(out)) ==
          ["blocks.1.attn.weights.h0.png", "blocks.1.attn.weights.h2.png"], str(os.listdir(out)))
    out = os.path.join(tmp, "batch")
    rc, _, err = run(["run", "--config", cfg, "--heatmap", out, "--heatmap-grid"],
                     stdin=b"the cat sits\n\non the mat .\n")
    check("batch: exit 1 (one bad line)", rc == 1, err)
    check("batch: one message", len(err.strip().split("\n")) == 1 and "line 2" in err, err)
    check("batch: a folder per good line", sorted(os.listdir(out)) == ["0", "2"],
          str(os.listdir(out)))
    for d, T in (("0", 3), ("2", 4)):
        files = sorted(os.listdir(os.path.join(out, d)))
        check("batch %s: grids" % d, files == ["blocks.0.attn.weights.png",
                                               "blocks.1.attn.weights.png"], str(files))
        img = png.read(os.path.join(out, d, files[0]))
        lay = Layout(T, T, 4, True)
        check("batch %s: size" % d, (img.width, img.height) == (lay.width, lay.height))
    # --reduce / --rollout, once they are built: the aggregated maps' names
    out = os.path.join(tmp, "reduce")
    rc, _, err = run(["run", "--config", cfg, "--text", "the cat sits", "--heatmap", out,
                      "--reduce", "mean"])
    if rc == 2 and "not built" in err:
        print("skip --reduce: " + err.strip())
    elif check("--reduce mean: exit 0", rc == 0, err):
        check("--reduce mean: one map per layer", sorted(os.listdir(out)) ==
              ["blocks.0.attn.weights.mean.png", "blocks.1.attn.weights.mean.png"],
              str(os.listdir(out)))


def test_fonts(tmp):
    """The labels differ between the built-in font and DejaVu Sans."""
    if not os.path.exists(DEJAVU):
        print("skip TrueType comparison: no " + DEJAVU)
        return
    cfg = os.path.join(ROOT, "models", "tiny-decoder", "config.json")
    imgs = []
    for font in ("none", DEJAVU):
        out = os.path.join(tmp, "font-" + os.path.basename(font))
        rc, _, err = run(["run", "--config", cfg, "--text", "the cat sits", "--heatmap", out],
                         font=font)
        check("font %s: exit 0" % font, rc == 0, err)
        imgs.append(png.read(os.path.join(out, "blocks.0.attn.weights.h0.png")))
    a, b = imgs
    check("fonts: same size", (a.width, a.height) == (b.width, b.height))
    lay = Layout(3, 3, 1, False)
    x0, y0, gx, gy = lay.panel(0)
    band_a = [a.pixel(x, y) for y in range(gy, gy + 3 * lay.cell) for x in range(x0, gx - GAP)]
    band_b = [b.pixel(x, y) for y in range(gy, gy + 3 * lay.cell) for x in range(x0, gx - GAP)]
    check("fonts: the labels are drawn differently", band_a != band_b)
    grey_levels = {p for p in band_b if is_grey(p)}
    check("fonts: TrueType labels are anti-aliased", len(grey_levels) > 3, str(len(grey_levels)))


def main():
    tmp = tempfile.mkdtemp(prefix="attn-heatmap-")
    try:
        test_decoder()
        cases = bundled() + random_models(tmp)
        fonts = ["none"] + ([None] if os.path.exists(DEJAVU) else [])
        for case in cases:
            for font in fonts:
                check_case(case, tmp, font)
            if case.ref is None:
                check_case(case, tmp, "none", grid=True)
        test_bad_values(tmp)
        test_selection_batch(tmp)
        test_fonts(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks, %d failed" % (check.count, len(check.failed)))
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
