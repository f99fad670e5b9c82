/* attn head view (docs/html.md): the script of the page written by
 * src/write/html.c. It reads the page's data elements:
 *   script#attn-meta            JSON: title, architecture, sizes
 *   script.attn-input           JSON: seq, input, key, main and source labels
 *   script.attn-map             base64 of one byte per weight (q = round(255 w)),
 *                               row by row; a causal map keeps keys 0..i of row i;
 *                               data-* attributes: seq, name, stack, kind, layer,
 *                               head, q/k (which labels), rows, cols, row0, causal
 *   script.attn-end             JSON: seq, ok (false: a failed input, not shown)
 * A map is decoded only when it is shown (a few hundred are kept decoded).
 * Drawing is on two canvases: the head view (query tokens left, key tokens
 * right, a line per weight) and the matrix. Data text is never put into the
 * page as HTML: labels are drawn on the canvas or set as textContent.
 * Loaded with #selftest (or #selftest=nodata), the page checks itself and
 * writes the result as JSON into a pre element of id attn-selftest (tests/html). */
(function () {
  'use strict';
  var errors = [];
  window.addEventListener('error', function (e) {
    errors.push(String(e.message || e.error || e));
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, ' '));
    consoleError.apply(console, arguments);
  };

  /* ---- colours: one per head ---- */
  var PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
    [57, 59, 121], [140, 109, 49], [132, 60, 57], [123, 65, 115], [82, 84, 163], [99, 121, 57]];
  function hslRgb(h, s, l) {
    var a = s * Math.min(l, 1 - l);
    function f(n) {
      var k = (n + h / 30) % 12;
      return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
    }
    return [f(0), f(8), f(4)];
  }
  function headColor(i) {
    return i < PALETTE.length ? PALETTE[i] : hslRgb((i * 137.508) % 360, 0.65, 0.42);
  }
  function rgba(c, a) {
    return 'rgba(' + c[0] + ',' + c[1] + ',' + c[2] + ',' + a + ')';
  }

  /* ---- the data ---- */
  function byId(id) { return document.getElementById(id); }
  function each(sel, f) { Array.prototype.forEach.call(document.querySelectorAll(sel), f); }
  var metaEl = byId('attn-meta');
  var meta = metaEl ? JSON.parse(metaEl.textContent) : {};
  var inputs = [], bySeq = {};
  each('script.attn-input', function (el) {
    var d = JSON.parse(el.textContent);
    d.ok = null;
    d.groups = [];
    d.groupByName = {};
    inputs.push(d);
    bySeq[d.seq] = d;
  });
  each('script.attn-end', function (el) {
    var d = JSON.parse(el.textContent);
    if (bySeq[d.seq]) bySeq[d.seq].ok = d.ok;
  });
  function headOrder(a, b) {
    var na = /^\d+$/.test(a.head), nb = /^\d+$/.test(b.head);
    if (na && nb) return +a.head - +b.head;
    if (na !== nb) return na ? -1 : 1;
    return a.head < b.head ? -1 : a.head > b.head ? 1 : 0;
  }
  each('script.attn-map', function (el) {
    var a = el.dataset, inp = bySeq[+a.seq];
    if (!inp) throw new Error('map ' + a.name + ': no input ' + a.seq);
    var gname = a.stack + ' ' + a.kind;
    var g = inp.groupByName[gname];
    if (!g) {
      g = inp.groupByName[gname] = {name: gname, layers: [], byLayer: {}};
      inp.groups.push(g);
    }
    var L = g.byLayer[a.layer];
    if (!L) {
      L = g.byLayer[a.layer] = {layer: +a.layer, heads: [], byHead: {}};
      g.layers.push(L);
    }
    var m = L.byHead[a.head];
    if (!m) {
      m = L.byHead[a.head] = {name: a.name, input: inp, group: gname, layer: +a.layer,
        head: a.head, q: a.q, k: a.k, causal: a.causal === '1', T: 0, K: +a.cols,
        chunks: [], data: null, have: null};
      L.heads.push(m);
    }
    var c = {el: el, row0: +a.row0, rows: +a.rows, cols: +a.cols};
    if (c.cols !== m.K) throw new Error('map ' + a.name + ': ' + c.cols + ' keys, then ' + m.K);
    m.chunks.push(c);
    m.T = Math.max(m.T, c.row0 + c.rows);
  });
  inputs.forEach(function (inp) {
    inp.groups.forEach(function (g) {
      g.layers.sort(function (x, y) { return x.layer - y.layer; });
      g.layers.forEach(function (L) {
        L.heads.sort(headOrder);
        L.heads.forEach(function (m, i) { m.index = i; });
      });
    });
  });
  var shown = inputs.filter(function (d) { return d.ok !== false; });

  /* Decoding, with the most recently shown maps kept. */
  var cache = [], CACHE_MAX = 200;
  function decode(m) {
    var at = cache.indexOf(m);
    if (at >= 0) {
      cache.splice(at, 1);
      cache.push(m);
      return m;
    }
    var T = m.T, K = m.K, data = new Uint8Array(T * K), have = new Uint8Array(T);
    m.chunks.forEach(function (c) {
      var bin = atob(c.el.textContent), p = 0;
      for (var r = 0; r < c.rows; r++) {
        var i = c.row0 + r, n = m.causal ? Math.min(i + 1, K) : K, base = i * K;
        if (p + n > bin.length) throw new Error('map ' + m.name + ': ' + bin.length + ' bytes, too few');
        for (var j = 0; j < n; j++) data[base + j] = bin.charCodeAt(p++);
        have[i] = 1;
      }
      if (p !== bin.length) throw new Error('map ' + m.name + ': ' + bin.length + ' bytes, expected ' + p);
    });
    m.data = data;
    m.have = have;
    cache.push(m);
    if (cache.length > CACHE_MAX) {
      var old = cache.shift();
      old.data = old.have = null;
    }
    return m;
  }
  function masked(m, i, j) { return !m.have[i] || (m.causal && j > i); }
  /* The weight of query i on key j (q / 255), null when masked. */
  function weight(m, i, j) { return masked(m, i, j) ? null : m.data[i * m.K + j] / 255; }
  function labelsOf(m, side) {
    var l = m.input[side === 'q' ? m.q : m.k];
    return l || [];
  }
  function label(l, i) { return i < l.length ? l[i] : String(i); }
  function short(s, n) { return s.length > n ? s.slice(0, n - 1) + '\u2026' : s; }

  /* ---- the page ---- */
  function el(tag, attrs, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) {
      if (k === 'text') e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  var bar = el('div', {id: 'attn-bar'}, document.body);
  el('span', {id: 'attn-title', text: 'attn head view: ' + (meta.title || '')}, bar);
  function control(name, id) {
    var l = el('label', {text: name + ' '}, bar);
    return el('select', {id: id}, l);
  }
  var selInput = control('input', 'attn-input'), selGroup = control('attention', 'attn-group');
  var selLayer = control('layer', 'attn-layer'), selHead = control('head', 'attn-head');
  var selView = control('view', 'attn-view');
  [['both', 'head view + matrix'], ['lines', 'head view'], ['matrix', 'matrix']].forEach(function (v) {
    selView.appendChild(new Option(v[1], v[0]));
  });
  var info = el('span', {id: 'attn-info'}, bar);
  var main = el('div', {id: 'attn-main'}, document.body);
  var headsBox = el('div', {id: 'attn-heads-box'}, main);
  el('h2', {text: 'head view'}, headsBox);
  var scroller = el('div', {id: 'attn-heads'}, headsBox);
  var cLines = el('canvas', {id: 'attn-lines', width: 10, height: 10}, scroller);
  var legend = el('div', {id: 'attn-legend'}, headsBox);
  el('p', {id: 'attn-help', text: 'Hover over a token to see where it attends (a query, left) ' +
    'or what attends to it (a key, right); click to keep it. Line and shading strength is the ' +
    'weight. Grey struck-through tokens are masked (a causal decoder sees no later keys). ' +
    'With all heads, each head has its colour; click a head in the legend to hide it.'}, headsBox);
  var matrixBox = el('div', {id: 'attn-matrix-box'}, main);
  el('h2', {text: 'matrix (rows: queries, columns: keys)'}, matrixBox);
  var cMatrix = el('canvas', {id: 'attn-matrix', width: 10, height: 10}, matrixBox);
  var tip = el('div', {id: 'attn-tip'}, matrixBox);

  var st = {inp: 0, group: 0, layer: 0, head: null, sel: null, hover: null, hidden: {}};

  function cur() {
    var inp = shown[st.inp];
    if (!inp || !inp.groups.length) return null;
    var g = inp.groups[st.group] || inp.groups[0];
    var L = g.layers[st.layer] || g.layers[0];
    return {inp: inp, g: g, L: L};
  }
  /* The maps drawn now: [{m, color}], decoded. */
  function shownMaps() {
    var c = cur();
    if (!c) return [];
    var hs = c.L.heads;
    var pick = st.head === 'all' ? hs.filter(function (m) { return !st.hidden[m.head]; })
      : hs.filter(function (m) { return m.head === st.head; });
    if (!pick.length && st.head !== 'all') pick = [hs[0]];
    return pick.map(function (m) { return {m: decode(m), color: headColor(m.index)}; });
  }

  function fillSelect(s, items, value) {
    while (s.firstChild) s.removeChild(s.firstChild);
    items.forEach(function (it) { s.appendChild(new Option(it[1], it[0])); });
    s.value = value;
  }
  function inputName(d) {
    var words = (d.main || []).slice(0, 8).join(' ');
    return (d.key !== null && d.key !== undefined ? d.key : String(d.input)) + ': ' + short(words, 40);
  }
  /* Brings the selectors in line with the state (keeping layer and head
   * where the new choice has them). */
  function sync() {
    var c = cur();
    fillSelect(selInput, shown.map(function (d, i) { return [i, inputName(d)]; }), st.inp);
    selInput.parentNode.style.display = shown.length > 1 ? '' : 'none';
    if (!c) return;
    st.group = c.inp.groups.indexOf(c.g);
    st.layer = c.g.layers.indexOf(c.L);
    fillSelect(selGroup, c.inp.groups.map(function (g, i) { return [i, g.name]; }), st.group);
    fillSelect(selLayer, c.g.layers.map(function (L, i) { return [i, String(L.layer)]; }), st.layer);
    var hs = c.L.heads.map(function (m) {
      return [m.head, /^\d+$/.test(m.head) ? 'head ' + m.head : m.head];
    });
    if (hs.length > 1) hs.push(['all', 'all heads']);
    if (st.head === null || !hs.some(function (h) { return h[0] === st.head; })) st.head = hs[0][0];
    fillSelect(selHead, hs, st.head);
  }

  var ROW = 16, PAD = 8, TOP = 26, FONT = '12px system-ui, sans-serif';
  /* 22 px a token for short inputs, 16 up to the canvas's height limit, then less */
  function rowHeight(n) {
    return n <= 40 ? 22 : Math.max(3, Math.min(ROW, Math.floor(30000 / Math.max(1, n))));
  }

  var geo = null; /* the head view's layout, for hit tests */
  var LINES_MAX = 3000;
  /* The smallest byte q >= lo such that the weights of at least q / 255 in
   * the maps ms are at most LINES_MAX. */
  function lineThreshold(ms, lo) {
    var hist = new Float64Array(256);
    ms.forEach(function (s) {
      var m = s.m, K = m.K;
      for (var i = 0; i < m.T; i++) {
        if (!m.have[i]) continue;
        var n = m.causal ? Math.min(i + 1, K) : K, base = i * K;
        for (var j = 0; j < n; j++) hist[m.data[base + j]]++;
      }
    });
    var q = 255, count = hist[255];
    while (q > lo && count + hist[q - 1] <= LINES_MAX) count += hist[--q];
    return q;
  }
  /* What both views start from: the first shown map, its sizes and labels;
   * null (and the canvas emptied) when nothing is shown. */
  function subject(canvas, ms) {
    if (!ms.length) {
      canvas.width = canvas.height = 1;
      return null;
    }
    var m0 = ms[0].m;
    return {m0: m0, T: m0.T, K: m0.K, ql: labelsOf(m0, 'q'), kl: labelsOf(m0, 'k')};
  }
  function drawLines(ms) {
    var sub = subject(cLines, ms);
    if (!sub) return;
    var ctx = cLines.getContext('2d'), T = sub.T, K = sub.K, ql = sub.ql, kl = sub.kl;
    var row = rowHeight(Math.max(T, K)), font = row >= 10 ? FONT : Math.max(row - 1, 3) + 'px sans-serif';
    ctx.font = FONT;
    var colW = 40;
    for (var i = 0; i < Math.max(T, K) && i < 2048; i++)
      colW = Math.max(colW, ctx.measureText(short(label(i < T ? ql : kl, i), 24)).width);
    colW = Math.min(Math.ceil(colW) + 6, 200);
    var gap = 200, w = PAD * 2 + colW * 2 + gap, h = TOP + Math.max(T, K) * row + PAD;
    cLines.width = w;
    cLines.height = h;
    ctx = cLines.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
    var xq = PAD + colW, xk = PAD + colW + gap;
    geo = {xq: xq, xk: xk, row: row, T: T, K: K};
    function y(i) { return TOP + i * row + row / 2; }
    ctx.fillStyle = '#555';
    ctx.font = FONT;
    ctx.textAlign = 'right';
    ctx.fillText('queries', xq, 14);
    ctx.textAlign = 'left';
    ctx.fillText('keys', xk, 14);
    var act = st.hover || st.sel;
    /* shading of the other side's tokens by the active token's weights */
    var shadeQ = [], shadeK = [];
    if (act) {
      ms.forEach(function (s) {
        var m = s.m, n = act.side === 'q' ? K : T;
        for (var t = 0; t < n; t++) {
          var wt = act.side === 'q' ? weight(m, act.pos, t) : weight(m, t, act.pos);
          var arr = act.side === 'q' ? shadeK : shadeQ;
          if (wt === null) { if (arr[t] === undefined) arr[t] = null; continue; }
          if (!arr[t] || wt > arr[t].w) arr[t] = {w: wt, c: s.color};
        }
      });
    }
    /* lines, batched by strength: with no token chosen, the strongest
     * LINES_MAX of them (a canvas slows down with hundreds of thousands) */
    var one = act ? act : null, minQ = act ? 1 : lineThreshold(ms, 3), nb = 8;
    geo.minQ = minQ;
    ctx.lineWidth = row >= 20 ? 2 : row >= 10 ? 1.6 : 1;
    ms.forEach(function (s) {
      var m = s.m, paths = [];
      for (var b = 0; b < nb; b++) paths.push(new Path2D());
      var i0 = 0, i1 = T;
      if (one && one.side === 'q') { i0 = one.pos; i1 = one.pos + 1; }
      for (var i = i0; i < i1 && i < T; i++) {
        if (!m.have[i]) continue;
        var n = m.causal ? Math.min(i + 1, K) : K, base = i * K, j0 = 0;
        if (one && one.side === 'k') { j0 = one.pos; n = Math.min(n, one.pos + 1); }
        for (var j = j0; j < n; j++) {
          var q = m.data[base + j];
          if (q < minQ) continue;
          var p = paths[q >> 5];
          p.moveTo(xq + 4, y(i));
          p.lineTo(xk - 4, y(j));
        }
      }
      for (b = 0; b < nb; b++) {
        ctx.strokeStyle = rgba(s.color, ((b + 0.5) / nb).toFixed(3));
        ctx.stroke(paths[b]);
      }
    });
    /* the tokens */
    ctx.font = font;
    ctx.textBaseline = 'middle';
    function tokens(l, n, side, x, align, shade) {
      ctx.textAlign = align;
      for (var t = 0; t < n; t++) {
        var s = shade[t], text = short(label(l, t), 24), isAct = act && act.side === side && act.pos === t;
        var bx = align === 'right' ? x - colW + 2 : x - 2;
        if (s) {
          ctx.fillStyle = rgba(s.c, (0.15 + 0.85 * s.w).toFixed(3));
          ctx.fillRect(bx, TOP + t * row, colW, row - 1);
        }
        if (isAct) {
          ctx.fillStyle = '#ffe9a8';
          ctx.fillRect(bx, TOP + t * row, colW, row - 1);
        }
        ctx.fillStyle = s === null ? '#aaa' : '#111';
        ctx.fillText(text, x, y(t));
        if (s === null) { /* masked: struck through */
          var tw = Math.min(ctx.measureText(text).width, colW);
          var sx = align === 'right' ? x - tw : x;
          ctx.fillRect(sx, y(t), tw, 1);
        }
      }
    }
    tokens(ql, T, 'q', xq, 'right', shadeQ);
    tokens(kl, K, 'k', xk, 'left', shadeK);
  }

  var mgeo = null; /* the matrix's layout */
  function drawMatrix(ms) {
    var sub = subject(cMatrix, ms);
    if (!sub) return;
    var ctx, m0 = sub.m0, T = sub.T, K = sub.K, ql = sub.ql, kl = sub.kl;
    var cell = Math.max(1, Math.min(28, Math.floor(640 / Math.max(T, K))));
    var labels = cell >= 9, left = labels ? 96 : 4, top = labels ? 80 : 4, barW = 50;
    var w = left + K * cell + 12 + barW, h = top + T * cell + 8;
    cMatrix.width = w;
    cMatrix.height = Math.max(h, 140);
    ctx = cMatrix.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cMatrix.width, cMatrix.height);
    mgeo = {left: left, top: top, cell: cell, T: T, K: K};
    var iw = K * cell, img = ctx.createImageData(iw, T * cell), px = img.data;
    var rgb = [0, 0, 0];
    for (var i = 0; i < T; i++) {
      for (var j = 0; j < K; j++) {
        var isMasked = masked(m0, i, j);
        if (!isMasked) {
          var r = 255, g = 255, b = 255;
          for (var s = 0; s < ms.length; s++) {
            var wt = ms[s].m.data[i * K + j] / 255, c = ms[s].color;
            r -= wt * (255 - c[0]);
            g -= wt * (255 - c[1]);
            b -= wt * (255 - c[2]);
          }
          rgb[0] = r < 0 ? 0 : r;
          rgb[1] = g < 0 ? 0 : g;
          rgb[2] = b < 0 ? 0 : b;
        }
        for (var dy = 0; dy < cell; dy++) {
          var o = ((i * cell + dy) * iw + j * cell) * 4;
          for (var dx = 0; dx < cell; dx++, o += 4) {
            if (isMasked) { /* masked cells: grey stripes, apart from a white zero */
              var v = ((i * cell + dy + j * cell + dx) & 3) < 2 ? 196 : 226;
              px[o] = px[o + 1] = px[o + 2] = v;
            } else {
              px[o] = rgb[0];
              px[o + 1] = rgb[1];
              px[o + 2] = rgb[2];
            }
            px[o + 3] = 255;
          }
        }
      }
    }
    ctx.putImageData(img, left, top);
    ctx.strokeStyle = '#999';
    ctx.lineWidth = 1;
    ctx.strokeRect(left - 0.5, top - 0.5, iw + 1, T * cell + 1);
    var act = st.hover || st.sel;
    if (act) {
      ctx.strokeStyle = '#e0a000';
      ctx.lineWidth = 2;
      if (act.side === 'q') ctx.strokeRect(left - 1, top + act.pos * cell - 1, iw + 2, cell + 2);
      else ctx.strokeRect(left + act.pos * cell - 1, top - 1, cell + 2, T * cell + 2);
    }
    ctx.fillStyle = '#111';
    ctx.font = '11px system-ui, sans-serif';
    if (labels) {
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'right';
      for (i = 0; i < T; i++) ctx.fillText(short(label(ql, i), 14), left - 4, top + i * cell + cell / 2);
      ctx.save();
      ctx.textAlign = 'left';
      for (j = 0; j < K; j++) {
        ctx.setTransform(1, 0, 0, 1, left + j * cell + cell / 2, top - 4);
        ctx.rotate(-Math.PI / 3);
        ctx.fillText(short(label(kl, j), 14), 0, 0);
      }
      ctx.restore();
    }
    /* colour scale of the first shown head: 0 to 1 */
    var bx = left + iw + 12, bh = Math.min(120, Math.max(60, T * cell)), c0 = ms[0].color;
    var grad = ctx.createLinearGradient(0, top + bh, 0, top);
    grad.addColorStop(0, '#fff');
    grad.addColorStop(1, rgba(c0, 1));
    ctx.fillStyle = grad;
    ctx.fillRect(bx, top, 14, bh);
    ctx.strokeStyle = '#999';
    ctx.strokeRect(bx - 0.5, top - 0.5, 15, bh + 1);
    ctx.fillStyle = '#111';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.fillText('1', bx + 18, top + 4);
    ctx.fillText('0', bx + 18, top + bh - 4);
  }

  function drawLegend(ms) {
    while (legend.firstChild) legend.removeChild(legend.firstChild);
    var c = cur();
    if (!c) return;
    var all = st.head === 'all';
    (all ? c.L.heads : ms.map(function (s) { return s.m; })).forEach(function (m) {
      var s = el('span', {text: /^\d+$/.test(m.head) ? 'head ' + m.head : m.head}, legend);
      var chip = el('i', {}, null);
      chip.style.background = rgba(headColor(m.index), 1);
      s.insertBefore(chip, s.firstChild);
      if (all && st.hidden[m.head]) s.className = 'off';
      if (all) s.addEventListener('click', function () {
        st.hidden[m.head] = !st.hidden[m.head];
        schedule();
      });
    });
  }

  function render() {
    var ms = shownMaps(), c = cur();
    var view = selView.value || 'both';
    headsBox.style.display = view === 'matrix' ? 'none' : '';
    matrixBox.style.display = view === 'lines' ? 'none' : '';
    if (!c) {
      info.textContent = 'no attention maps in this page';
      drawLines([]);
      drawMatrix([]);
      return;
    }
    var m0 = ms[0] && ms[0].m;
    info.textContent = m0 ? m0.T + ' queries \u00d7 ' + m0.K + ' keys' +
      (m0.causal ? ' \u00b7 causal: later keys are masked' : '') + ' \u00b7 uint8 weights (\u00b11/510)' : '';
    drawLines(ms);
    if (geo && geo.minQ > 3 && !(st.hover || st.sel))
      info.textContent += ' \u00b7 lines of weights \u2265 ' + (geo.minQ / 255).toFixed(3);
    drawMatrix(ms);
    drawLegend(ms);
  }
  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      try { render(); } catch (e) { errors.push(String(e)); throw e; }
    });
  }

  /* ---- events ---- */
  function onSelect(f) {
    return function () {
      f(this.value);
      st.sel = st.hover = null;
      sync();
      schedule();
    };
  }
  selInput.addEventListener('change', onSelect(function (v) { st.inp = +v; }));
  selGroup.addEventListener('change', onSelect(function (v) { st.group = +v; st.layer = 0; }));
  selLayer.addEventListener('change', onSelect(function (v) { st.layer = +v; }));
  selHead.addEventListener('change', onSelect(function (v) { st.head = v; }));
  selView.addEventListener('change', schedule);
  function hitLines(e) {
    if (!geo) return null;
    var r = cLines.getBoundingClientRect(), x = e.clientX - r.left, yy = e.clientY - r.top;
    var t = Math.floor((yy - TOP) / geo.row);
    if (x < geo.xq + 8 && t >= 0 && t < geo.T) return {side: 'q', pos: t};
    if (x > geo.xk - 8 && t >= 0 && t < geo.K) return {side: 'k', pos: t};
    return null;
  }
  function same(a, b) { return a === b || (a && b && a.side === b.side && a.pos === b.pos); }
  cLines.addEventListener('mousemove', function (e) {
    var h = hitLines(e);
    if (!same(h, st.hover)) { st.hover = h; schedule(); }
  });
  cLines.addEventListener('mouseleave', function () { st.hover = null; schedule(); });
  cLines.addEventListener('click', function (e) {
    var h = hitLines(e);
    st.sel = same(h, st.sel) ? null : h;
    schedule();
  });
  function hitMatrix(e) {
    if (!mgeo) return null;
    var r = cMatrix.getBoundingClientRect();
    var i = Math.floor((e.clientY - r.top - mgeo.top) / mgeo.cell);
    var j = Math.floor((e.clientX - r.left - mgeo.left) / mgeo.cell);
    return i >= 0 && i < mgeo.T && j >= 0 && j < mgeo.K ? {i: i, j: j, x: e.clientX - r.left, y: e.clientY - r.top} : null;
  }
  cMatrix.addEventListener('mousemove', function (e) {
    var h = hitMatrix(e), ms = h ? shownMaps() : [];
    if (!h || !ms.length) { tip.style.display = 'none'; return; }
    var m0 = ms[0].m, lines = ['query ' + h.i + ' ' + JSON.stringify(label(labelsOf(m0, 'q'), h.i)) +
      ' \u2192 key ' + h.j + ' ' + JSON.stringify(label(labelsOf(m0, 'k'), h.j))];
    ms.forEach(function (s) {
      var wt = weight(s.m, h.i, h.j);
      lines.push((/^\d+$/.test(s.m.head) ? 'head ' + s.m.head : s.m.head) + ': ' +
        (wt === null ? 'masked' : wt.toFixed(3)));
    });
    tip.textContent = lines.join('\n');
    tip.style.left = (h.x + 14) + 'px';
    tip.style.top = (h.y + 30) + 'px';
    tip.style.display = 'block';
  });
  cMatrix.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  cMatrix.addEventListener('click', function (e) {
    var h = hitMatrix(e);
    if (!h) return;
    var s = {side: 'q', pos: h.i};
    st.sel = same(s, st.sel) ? null : s;
    schedule();
  });

  sync();
  render();

  /* ---- #selftest: checks for tests/html ---- */
  function canvasHash(c) {
    var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, h = 2166136261;
    for (var i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619) >>> 0;
    return c.width + 'x' + c.height + ':' + h.toString(16);
  }
  var snapTimes = [];
  function snap() {
    var t0 = performance.now();
    render();
    var t1 = performance.now(), h = canvasHash(cLines) + '/' + canvasHash(cMatrix);
    snapTimes.push([Math.round(t1 - t0), Math.round(performance.now() - t1)]);
    return h;
  }
  function selftest(withData) {
    var res = {ok: false, errors: errors, meta: meta, inputs: [], maps: [], checks: {}};
    try {
      var t0 = performance.now();
      res.inputs = inputs.map(function (d) {
        return {seq: d.seq, input: d.input, key: d.key, ok: d.ok, main: d.main, source: d.source};
      });
      var ck = res.checks, c = cur();
      if (c) {
        st.sel = st.hover = null;
        st.head = c.L.heads[0].head;
        sync();
        var base = snap();
        ck.base = base;
        ck.first_drawn_ms = Math.round(performance.now()); /* the pixel read made it draw */
        if (c.g.layers.length > 1) {
          st.layer = 1;
          sync();
          ck.layer = snap() !== base;
          st.layer = 0;
          st.head = c.L.heads[0].head;
          sync();
        }
        if (c.L.heads.length > 1) {
          st.head = c.L.heads[1].head;
          sync();
          ck.head = snap() !== base;
          st.head = 'all';
          sync();
          ck.all = snap() !== base;
          st.head = c.L.heads[0].head;
          sync();
        }
        /* the mouse: over the first query token, over the matrix's first cell */
        var r = cLines.getBoundingClientRect();
        cLines.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + geo.xq - 4,
          clientY: r.top + TOP + geo.row / 2}));
        ck.hover_token = same(st.hover, {side: 'q', pos: 0});
        cLines.dispatchEvent(new MouseEvent('click', {clientX: r.left + geo.xk + 4,
          clientY: r.top + TOP + geo.row / 2}));
        ck.click_token = same(st.sel, {side: 'k', pos: 0});
        st.sel = st.hover = null;
        r = cMatrix.getBoundingClientRect();
        /* whole pixels (event coordinates may be rounded), inside a cell of 1 px too */
        cMatrix.dispatchEvent(new MouseEvent('mousemove', {clientX: Math.ceil(r.left + mgeo.left),
          clientY: Math.ceil(r.top + mgeo.top)}));
        ck.matrix_tip = tip.style.display === 'block' && /key 0/.test(tip.textContent) ? tip.textContent : false;
        tip.style.display = 'none';
        st.sel = {side: 'q', pos: c.L.heads[0].T - 1};
        ck.select_query = snap() !== base;
        st.sel = {side: 'k', pos: 0};
        ck.select_key = snap() !== base;
        st.sel = null;
        if (c.inp.groups.length > 1) {
          st.group = 1;
          st.layer = 0;
          sync();
          ck.group = snap() !== base;
          st.group = 0;
          sync();
        }
        if (shown.length > 1) {
          st.inp = 1;
          sync();
          ck.input = snap() !== base;
          st.inp = 0;
          sync();
        }
        ck.unchanged = snap() === base;
      }
      ck.switch_ms = Math.round(performance.now() - t0);
      ck.render_hash_ms = snapTimes;
      var t1 = performance.now();
      inputs.forEach(function (inp) {
        inp.groups.forEach(function (g) {
          g.layers.forEach(function (L) {
            L.heads.forEach(function (m) {
              decode(m);
              var out = {seq: inp.seq, name: m.name, group: g.name, layer: m.layer, head: m.head,
                causal: m.causal, T: m.T, K: m.K, q: m.q, k: m.k};
              if (withData) {
                out.w = [];
                for (var i = 0; i < m.T; i++) {
                  var row = [];
                  for (var j = 0; j < m.K; j++) {
                    var wt = weight(m, i, j);
                    row.push(wt === null ? -1 : Math.round(wt * 255));
                  }
                  out.w.push(row);
                }
              } else {
                var sum = 0, n = 0;
                for (var t = 0; t < m.T * m.K; t++) sum += m.data[t];
                for (t = 0; t < m.T; t++) for (var u = 0; u < m.K; u++) n += masked(m, t, u) ? 0 : 1;
                out.sum = sum;
                out.cells = n;
              }
              res.maps.push(out);
            });
          });
        });
      });
      ck.decode_all_ms = Math.round(performance.now() - t1);
      res.load_ms = Math.round(t0);
    } catch (e) {
      errors.push('selftest: ' + (e && e.stack ? e.stack : e));
    }
    res.ok = errors.length === 0;
    el('pre', {id: 'attn-selftest', text: JSON.stringify(res)}, document.body);
  }
  if (/^#selftest/.test(location.hash)) selftest(location.hash !== '#selftest=nodata');
})();
