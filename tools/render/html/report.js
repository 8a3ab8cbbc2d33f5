/* memtrace HTML report: the page's only script, embedded into the page by
 * tools/render/html/embed.cmake.  It draws everything from the JSON report object
 * in the block #mt-data (docs/report-schema.md): header, summary, charts,
 * pools, sizes, lists, the sites, steps and the flame graph.  No network,
 * no other file.  Strings from the trace reach the page through
 * textContent only.  memtrace diff's page holds the diff object instead
 * ({"diff": ...}), drawn by diffPage() with the same pieces.
 *
 * The sites come from the report's "profile": every site per thread with
 * its figures over time on a coarse grid.  The tables and the flame graph
 * are views of it: sorted by peak, allocations, bytes, leaked or
 * temporary; grouped by line, function or file; filtered by domain and
 * thread; and cut to the time window brushed on the heap chart.
 *
 * When everything is drawn, <html data-memtrace> becomes "ok"; an error
 * makes it "error" and shows a banner, so that a headless browser can tell.
 * window.memtrace gives tests the same actions a user has. */
(function () {
  "use strict";
  var root = document.documentElement;
  var SVGNS = "http://www.w3.org/2000/svg";
  var DOMAINS = ["malloc", "pymem_raw", "pymem_mem", "pymem_obj"];
  var COLORS = { heap: "#3d5a80", malloc: "#4e79a7", pymem_raw: "#f28e2b", pymem_mem: "#59a14f",
    pymem_obj: "#e15759", arenas: "#76b7b2", pools: "#b07aa1", peak: "#4e79a7", exit: "#a0cbe8",
    allocs: "#59a14f", bytes: "#edc948" };
  var ROWS = 50;          /* rows a table shows before "show more" */
  var MAX_MARKS = 500;    /* marks drawn on a chart */

  function failed(msg) {
    root.setAttribute("data-memtrace", "error");
    var bar = document.getElementById("mt-error");
    if (!bar) {
      bar = document.createElement("div");
      bar.id = "mt-error";
      document.body.insertBefore(bar, document.body.firstChild);
    }
    bar.textContent = "This page's script failed: " + msg;
  }
  window.addEventListener("error", function (ev) { failed(String(ev.message)); });

  /* ---- building blocks ---- */
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function add(parent, child) {
    parent.appendChild(child);
    return child;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function num(o, k) {
    var v = o && typeof o[k] === "number" && isFinite(o[k]) ? o[k] : 0;
    return Math.max(-1e18, Math.min(1e18, v));
  }
  function obj(o, k) { return o && o[k] && typeof o[k] === "object" ? o[k] : null; }
  function arr(o, k) { return o && Array.isArray(o[k]) ? o[k] : []; }
  function str(o, k, dflt) { return o && typeof o[k] === "string" ? o[k] : dflt; }

  /* ---- figures ---- */
  function bytes(v) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"], i = 0, a = Math.abs(v);
    while (a >= 1024 && i < u.length - 1) { a /= 1024; v /= 1024; i++; }
    if (i === 0) return Math.round(v) + " B";
    return (a < 9.995 ? v.toFixed(2) : a < 99.95 ? v.toFixed(1) : v.toFixed(0)) + " " + u[i];
  }
  function sbytes(v) { return (v > 0 ? "+" : "") + bytes(v); }
  /* 1,234,567 (toLocaleString is a hundred times slower) */
  function count(v) {
    var s = String(Math.abs(Math.round(v)));
    if (!/^\d+$/.test(s)) return String(Math.round(v));
    for (var i = s.length - 3; i > 0; i -= 3) s = s.slice(0, i) + "," + s.slice(i);
    return (v <= -0.5 ? "-" : "") + s;
  }
  function scount(v) { return (v > 0 ? "+" : "") + count(v); }
  function time(us) {
    var a = Math.abs(us);
    if (a < 1000) return Math.round(us) + " µs";
    if (a < 1e6) return (us / 1e3).toFixed(a < 9995 ? 2 : a < 99950 ? 1 : 0) + " ms";
    return (us / 1e6).toFixed(a < 9.995e6 ? 2 : 1) + " s";
  }
  function pct(part, whole) {
    if (!(whole > 0)) return "";
    var p = 100 * part / whole;
    return (p < 9.995 ? p.toFixed(2) : p < 99.95 ? p.toFixed(1) : p.toFixed(0)) + "%";
  }

  /* ---- tooltip ---- */
  var tip = el("div");
  tip.id = "mt-tip";
  function showTip(ev, title, rows) {
    tip.textContent = "";
    if (title) add(tip, el("div", "t", title));
    rows.forEach(function (r) {
      var line = add(tip, el("div", "r")), name = add(line, el("span"));
      if (r.color) add(name, el("i")).style.background = r.color;
      name.appendChild(document.createTextNode(r.name));
      add(line, el("b", null, r.value));
    });
    tip.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14, w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth - 8) x = Math.max(8, ev.clientX - w - 14);
    if (y + h > window.innerHeight - 8) y = Math.max(8, ev.clientY - h - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function hideTip() { tip.style.display = "none"; }

  /* ---- sections and plain tables ---- */
  function section(parent, id, title) {
    var s = add(parent, el("section"));
    s.id = id;
    add(s, el("h2", null, title));
    return s;
  }
  function note(parent, text) { return add(parent, el("p", "note", text)); }
  function stat(parent, name, value) {
    var d = add(parent, el("div", "stat"));
    add(d, el("span", null, name));
    add(d, el("b", null, value));
  }
  /* A header's list of facts: returns meta(name, value), which adds one. */
  function metaList(parent) {
    var dl = add(parent, el("dl", "meta"));
    return function (name, value) {
      var d = add(dl, el("div"));
      add(d, el("dt", null, name));
      add(d, el("dd", null, value));
    };
  }
  /* A row of summary cards: returns card(cls, title, value, sub), which
   * adds one and returns it. */
  function cardList(parent, cls) {
    var cards = add(parent, el("div", "cards " + cls));
    return function (cardCls, title, value, sub) {
      var c = add(cards, el("div", "card" + (cardCls ? " " + cardCls : "")));
      add(c, el("h3", null, title));
      add(c, el("div", "big", value));
      add(c, el("div", "sub", sub));
      return c;
    };
  }
  function location(f) {
    var span = el("span", "loc"), file = f.file || "?", slash = file.lastIndexOf("/", file.length - 2);
    if (slash >= 0) add(span, el("span", "dir", file.slice(0, slash + 1)));
    span.appendChild(document.createTextNode(file.slice(slash + 1) + (f.line > 0 ? ":" + f.line : "")));
    return span;
  }
  /* A site: function and location, and its stack in a <details> whose
   * frames are made when it is first opened. */
  function whereCell(td, f, stack) {
    td.className = "where";
    if (f.function) {
      add(td, el("span", "fn", f.function));
      td.appendChild(document.createTextNode(" "));
    }
    td.appendChild(location(f));
    if (stack && stack.length > 1) {
      var d = add(td, el("details"));
      add(d, el("summary", null, stack.length + " frames"));
      d.addEventListener("toggle", function () {
        if (d.querySelector("ol")) return;
        var ol = add(d, el("ol", "stack"));
        stack.slice(0, 256).forEach(function (s) {
          var li = add(ol, el("li"));
          add(li, el("span", "fn", s.function || "?"));
          li.appendChild(document.createTextNode(" "));
          li.appendChild(location(s));
        });
      });
    }
  }
  /* A table of cols [{head, tip, num, fmt(v, row, td), key(row)}] and rows;
   * clicking a header sorts by it.  Long tables show their first rows. */
  function table(parent, cols, rows, sortCol) {
    var wrap = add(parent, el("div", "tw")), t = add(wrap, el("table", "sortable"));
    var tr = add(add(t, el("thead")), el("tr")), body = add(t, el("tbody"));
    var dir = -1, all = false, more = null;
    cols.forEach(function (c, i) {
      var th = add(tr, el("th", c.num ? "n" : null, c.head));
      if (c.tip) th.title = c.tip;
      th.setAttribute("data-sort", c.num ? "num" : "text");
      th.tabIndex = 0;
      function go() {
        dir = sortCol === i ? -dir : (c.num ? -1 : 1);
        sortCol = i;
        fill();
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    });
    function key(c, r) {
      var v = c.key ? c.key(r) : r[c.field];
      return typeof v === "string" ? v.toLowerCase() : v;
    }
    function fill() {
      var order = rows.slice();
      if (sortCol !== undefined) {
        var c = cols[sortCol];
        order = order.map(function (r, i) { return { r: r, i: i, k: key(c, r) }; });
        order.sort(function (a, b) {
          return a.k < b.k ? -dir : a.k > b.k ? dir : a.i - b.i;
        });
        order = order.map(function (o) { return o.r; });
        Array.prototype.forEach.call(tr.cells, function (th, i) {
          if (i === sortCol) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
          else th.removeAttribute("aria-sort");
        });
      }
      body.textContent = "";
      order.slice(0, all ? order.length : ROWS).forEach(function (r) {
        var row = add(body, el("tr"));
        cols.forEach(function (c) {
          var td = add(row, el("td", c.num ? "n" : c.cls || null));
          var v = key(c, r);
          if (c.num) td.setAttribute("data-v", v);
          var shown = c.fmt ? c.fmt(r[c.field], r, td) : r[c.field];
          if (shown !== undefined && shown !== null) td.textContent = shown;
        });
      });
      if (order.length > ROWS + 5) {
        if (!more) {
          more = el("button", "showall");
          more.type = "button";
          more.addEventListener("click", function () { all = !all; fill(); });
          parent.insertBefore(more, wrap.nextSibling);
        }
        more.textContent = all ? "Show the first " + ROWS : "Show all " + count(order.length) + " rows";
      }
    }
    if (sortCol !== undefined) dir = cols[sortCol].num ? -1 : 1;
    fill();
    return t;
  }

  /* ---- charts ---- */
  function niceAxis(max, unit, ticks) {
    var scaled = max / unit;
    if (!(scaled > 0) || !isFinite(scaled)) scaled = 1;
    var raw = scaled / ticks, mag = Math.pow(10, Math.floor(Math.log10(raw))), norm = raw / mag;
    var step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
    return { step: step * mag * unit, max: Math.ceil(scaled / (step * mag) - 1e-9) * step * mag * unit,
      unit: unit };
  }
  function valueAxis(max, isBytes, ticks) {
    var names = isBytes ? ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] : ["", "k", "M", "G", "T", "P", "E"];
    var base = isBytes ? 1024 : 1000, u = 1, i = 0;
    while (max / u >= base && i + 1 < names.length) { u *= base; i++; }
    var a = niceAxis(max, u, ticks);
    a.name = names[i];
    return a;
  }
  function timeAxis(max) {
    var u = max >= 2e6 ? 1e6 : max >= 2e3 ? 1e3 : 1, a = niceAxis(max, u, 8);
    a.name = u === 1e6 ? "s" : u === 1e3 ? "ms" : "µs";
    return a;
  }
  function tickLabel(a, v) {
    var s = +(v / a.unit).toPrecision(6);
    return s + (a.name ? (a.name === "k" || a.name === "M" || a.name === "G" || a.name === "" ? "" : " ") + a.name : "");
  }
  /* The names of a chart's series, each with a swatch of class cls. */
  function legend(fig, series, cls) {
    var box = add(fig, el("div", "legend"));
    series.forEach(function (s) {
      var sp = add(box, el("span"));
      add(sp, el("i", cls)).style.background = s.color;
      sp.appendChild(document.createTextNode(s.name));
    });
  }
  /* Columns of a series at most one pixel wide: where a column holds more
   * than two points, the first, the lowest, the highest and the last
   * stand for them, so that no peak and no dip is lost. */
  function downsample(t, v, x0, x1, width) {
    var out = [], n = t.length, scale = width / ((x1 - x0) || 1), col = -1, lo, hi, ilo, ihi, first, last;
    function flush() {
      if (col < 0) return;
      var pts = [first, ilo, ihi, last].sort(function (a, b) { return a - b; });
      for (var k = 0; k < 4; k++) if (k === 0 || pts[k] !== pts[k - 1]) out.push(pts[k]);
    }
    for (var i = 0; i < n; i++) {
      var c = Math.floor((t[i] - x0) * scale);
      if (c !== col) {
        flush();
        col = c; lo = hi = v[i]; ilo = ihi = first = last = i;
      } else {
        if (v[i] < lo) { lo = v[i]; ilo = i; }
        if (v[i] > hi) { hi = v[i]; ihi = i; }
        last = i;
      }
    }
    flush();
    return out;
  }
  /* A line chart of series [{key, name, color, values, area}] over time t,
   * with the marks, an optional peak, a hover read-out and, with onBrush,
   * a time window brushed with the mouse. */
  function lineChart(parent, o) {
    var W = o.width || 1100, H = o.height || 360, L = 70, R = W - 18, T = 14, B = H - 30;
    var t = o.t, n = t.length, x0 = 0, x1 = n ? Math.max(t[n - 1], 1) : 1, maxv = 0;
    o.series.forEach(function (s) {
      for (var i = 0; i < n; i++) if (s.values[i] > maxv) maxv = s.values[i];
    });
    var ya = valueAxis(maxv || 1, o.isBytes, 5), xa = timeAxis(x1);
    x1 = xa.max;
    function X(v) { return L + (v - x0) / ((x1 - x0) || 1) * (R - L); }
    function Y(v) { return B - v / (ya.max || 1) * (B - T); }
    var fig = add(parent, el("figure", o.wide ? "wide" : null));
    legend(fig, o.series, "ln");
    var c = add(fig, svg("svg", { "class": "chart", viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": o.title }));
    c.setAttribute("data-chart", o.id || "");
    /* the plot area and its time span, for scripts that brush it */
    c.setAttribute("data-plot", [L, R, x0, x1, W].join(" "));
    var grid = add(c, svg("g", { "class": "grid" })), labels = add(c, svg("g", {}));
    for (var v = 0; v <= ya.max + ya.step / 2; v += ya.step) {
      add(grid, svg("line", { x1: L, x2: R, y1: Y(v), y2: Y(v) }));
      add(labels, svg("text", { "class": "yl", x: L - 6, y: Y(v) + 4 })).textContent = tickLabel(ya, v);
    }
    for (v = 0; v <= xa.max + xa.step / 2; v += xa.step)
      add(labels, svg("text", { "class": "xl", x: X(v), y: B + 18 })).textContent = tickLabel(xa, v);
    add(add(c, svg("g", { "class": "axis" })), svg("line", { x1: L, x2: R, y1: B, y2: B }));
    var paths = add(c, svg("g", {}));
    o.series.slice().reverse().forEach(function (s) {
      var idx = downsample(t, s.values, x0, x1, R - L), d = "";
      for (var k = 0; k < idx.length; k++)
        d += (k ? "L" : "M") + X(t[idx[k]]).toFixed(1) + "," + Y(s.values[idx[k]]).toFixed(1);
      if (!d) return;
      if (s.area)
        add(paths, svg("path", { "class": "area", fill: s.color,
          d: d + "L" + X(t[idx[idx.length - 1]]).toFixed(1) + "," + B + "L" + X(t[idx[0]]).toFixed(1) + "," + B + "Z" }));
      add(paths, svg("path", { "class": "line", stroke: s.color, d: d }));
    });
    var marks = add(c, svg("g", { "class": "marks" }));
    (o.marks || []).slice(0, MAX_MARKS).forEach(function (m, i) {
      var x = X(m.time_us);
      add(marks, svg("line", { x1: x, x2: x, y1: T, y2: B }));
      var lab = add(marks, svg("text", { x: x + 3, y: T + 10 + (i % 3) * 13 }));
      lab.textContent = o.markNumbers ? String(m.number) : m.number + " " + m.label;
      if (!o.markNumbers && m.label.length > 28) lab.textContent = m.number + " " + m.label.slice(0, 27) + "…";
    });
    if (o.peak) {
      var pk = add(c, svg("g", { "class": "peak" }));
      add(pk, svg("circle", { cx: X(o.peak.t), cy: Y(o.peak.v), r: 4 }));
      var pl = add(pk, svg("text", { x: X(o.peak.t) + (X(o.peak.t) > (L + R) / 2 ? -8 : 8), y: Y(o.peak.v) + 4 }));
      pl.setAttribute("text-anchor", X(o.peak.t) > (L + R) / 2 ? "end" : "start");
      pl.textContent = "peak " + bytes(o.peak.v);
    }
    var brush = add(c, svg("rect", { "class": "brush", y: T, height: B - T, x: L, width: 0, visibility: "hidden" }));
    var cross = add(c, svg("line", { "class": "cross", y1: T, y2: B, visibility: "hidden" }));
    function when(ev) {
      var m = c.getScreenCTM();
      if (!m) return null;
      var p = c.createSVGPoint();
      p.x = ev.clientX; p.y = ev.clientY;
      p = p.matrixTransform(m.inverse());
      return { x: Math.min(Math.max(p.x, L), R), inside: p.x >= L - 4 && p.x <= R + 4,
        t: x0 + (Math.min(Math.max(p.x, L), R) - L) / (R - L) * (x1 - x0) };
    }
    function nearest(tv) {
      var lo = 0, hi = n - 1;
      while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (t[mid] < tv) lo = mid + 1; else hi = mid;
      }
      if (lo > 0 && tv - t[lo - 1] < t[lo] - tv) lo--;
      return lo;
    }
    var drag = null;
    c.addEventListener("mousemove", function (ev) {
      var w = when(ev);
      if (!w || !n) return;
      if (drag) {
        brush.setAttribute("x", Math.min(drag.x, w.x));
        brush.setAttribute("width", Math.abs(w.x - drag.x));
      }
      if (!w.inside) { hide(); return; }
      var i = nearest(w.t), x = X(t[i]);
      cross.setAttribute("x1", x);
      cross.setAttribute("x2", x);
      cross.setAttribute("visibility", "visible");
      showTip(ev, time(t[i]), o.series.map(function (s) {
        return { name: s.name, value: o.isBytes ? bytes(s.values[i]) : count(s.values[i]), color: s.color };
      }));
    });
    function hide() { cross.setAttribute("visibility", "hidden"); hideTip(); }
    c.addEventListener("mouseleave", hide);
    if (o.onBrush) {
      c.classList.add("brushable");
      c.addEventListener("mousedown", function (ev) {
        var w = when(ev);
        if (!w || !w.inside) return;
        ev.preventDefault();
        drag = w;
        brush.setAttribute("x", w.x);
        brush.setAttribute("width", 0);
        brush.setAttribute("visibility", "visible");
      });
      window.addEventListener("mouseup", function (ev) {
        if (!drag) return;
        var w = when(ev) || drag, a = Math.min(drag.t, w.t), b = Math.max(drag.t, w.t);
        drag = null;
        if (Math.abs(X(b) - X(a)) < 3) { brush.setAttribute("visibility", "hidden"); o.onBrush(null); return; }
        o.onBrush({ t0: a, t1: b });
      });
    }
    return {
      svg: c,
      show: function (win) {
        if (!win) { brush.setAttribute("visibility", "hidden"); return; }
        brush.setAttribute("x", X(win.t0));
        brush.setAttribute("width", Math.max(1, X(win.t1) - X(win.t0)));
        brush.setAttribute("visibility", "visible");
      }
    };
  }
  /* Bars: names, and one or two series [{name, color, values}]. */
  function barChart(parent, o) {
    var W = o.width || 540, H = o.height || 260, L = 70, R = W - 18, T = 14, B = H - 44;
    var n = o.names.length, maxv = 0;
    o.series.forEach(function (s) { s.values.forEach(function (v) { if (v > maxv) maxv = v; }); });
    var ya = valueAxis(maxv || 1, o.isBytes, 4), bw = (R - L) / Math.max(n, 1);
    function Y(v) { return B - v / (ya.max || 1) * (B - T); }
    var fig = add(parent, el("figure"));
    if (o.series.length > 1) legend(fig, o.series, "sw");
    var c = add(fig, svg("svg", { "class": "chart", viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": o.title }));
    var grid = add(c, svg("g", { "class": "grid" }));
    for (var v = 0; v <= ya.max + ya.step / 2; v += ya.step) {
      add(grid, svg("line", { x1: L, x2: R, y1: Y(v), y2: Y(v) }));
      add(c, svg("text", { "class": "yl", x: L - 6, y: Y(v) + 4 })).textContent = tickLabel(ya, v);
    }
    var every = Math.max(1, Math.ceil(n * 34 / (R - L)));
    o.names.forEach(function (name, i) {
      var g = add(c, svg("g", { "class": "bar" })), k = o.series.length, w = (bw - 2) / k;
      add(g, svg("rect", { "class": "hit", x: L + i * bw, y: T, width: bw, height: B - T }));
      o.series.forEach(function (s, j) {
        add(g, svg("rect", { x: L + i * bw + 1 + j * w, y: Y(s.values[i]), width: Math.max(w, 0.5),
          height: Math.max(0, B - Y(s.values[i])), fill: s.color }));
      });
      if (i % every === 0)
        add(c, svg("text", { "class": "xt", x: L + (i + 0.5) * bw, y: B + 14 })).textContent = name;
      g.addEventListener("mousemove", function (ev) {
        showTip(ev, o.tipTitle ? o.tipTitle(i) : name, o.series.map(function (s) {
          return { name: s.name, value: o.isBytes ? bytes(s.values[i]) : count(s.values[i]), color: s.color };
        }));
      });
      g.addEventListener("mouseleave", hideTip);
    });
    add(c, svg("text", { "class": "xl", x: (L + R) / 2, y: H - 6 })).textContent = o.xtitle || "";
    add(add(c, svg("g", { "class": "axis" })), svg("line", { x1: L, x2: R, y1: B, y2: B }));
  }

  /* ---- the data ---- */
  /* The page's data, read a part at a time by init(). */
  var DATA, REP, PY, TL, MARKS, CHART_MARKS, PROF;
  function load() {
    var block = document.getElementById("mt-data");
    DATA = JSON.parse(block ? block.textContent : "{}") || {};
    REP = obj(DATA, "report") || {};
    PY = !!obj(obj(REP, "process"), "python");
  }

  /* The timeline's columns as typed arrays in TL (a figure missing or not
   * a number is 0), a task each: at 10^6 points, each is a pass over a
   * million numbers.  Time never runs backwards on the charts. */
  function timelineTasks() {
    function points() { return obj(obj(REP, "timeline"), "points"); }
    var tasks = [function () {
      var t = arr(points(), "time_us"), n = t.length;
      TL = { t: typed(Float64Array, t, n) };
      for (var i = 1; i < n; i++) if (!(TL.t[i] >= TL.t[i - 1])) TL.t[i] = TL.t[i - 1];
    }];
    ["heap", "malloc", "pymem_raw", "pymem_mem", "pymem_obj", "arenas", "pools"].forEach(function (k) {
      tasks.push(function () { TL[k] = typed(Float64Array, arr(points(), k), TL.t.length); });
    });
    return tasks;
  }
  /* The steps between marks, numbered as the charts show them. */
  function steps() {
    var out = [], number = 0;
    arr(REP, "marks").forEach(function (m, i) {
      var first = i === 0 && m.label === "(before first mark)";
      if (!first) number++;
      out.push({ step: m, first: first, number: first ? 0 : number, label: str(m, "label", ""),
        time_us: num(m, "time_us") });
    });
    return out;
  }

  var CELL_KEYS = ["bucket", "allocs", "bytes", "live_bytes", "temporary_allocs", "temporary_bytes"];
  var CELL = CELL_KEYS.length; /* a cell: bucket, allocs, bytes, live bytes, temporaries, their bytes */
  /* The first n entries of array a as a typed array of type T (what is
   * not a finite number: 0). */
  function typed(T, a, n) {
    var v = new T(n);
    for (var i = 0, m = Math.min(n, a.length); i < m; i++) {
      var x = +a[i];
      v[i] = x - x === 0 ? x : 0;
    }
    return v;
  }
  /* The profile's sites as typed columns; their stacks and cells are
   * made by profileStacks and profileCells, each in a task of its own. */
  function profile() {
    var p = obj(REP, "profile");
    if (!p) return null;
    var s = obj(p, "sites") || {}, n = arr(s, "where").length, P = { n: n };
    ["where", "node", "domain", "thread"].forEach(function (k) { P[k] = typed(Int32Array, arr(s, k), n); });
    ["allocs", "bytes", "peak_bytes", "peak_blocks", "live_bytes_at_exit", "live_blocks_at_exit",
      "temporary_allocs", "temporary_bytes"].forEach(function (k) {
      P[k] = typed(Float64Array, arr(s, k), n);
    });
    P.ncells = typed(Int32Array, arr(s, "cells"), n);
    P.strings = arr(p, "strings");
    var f = obj(p, "frames") || {};
    P.frames = { fn: arr(f, "function"), file: arr(f, "file"), line: arr(f, "line"), module: arr(f, "module") };
    P.threads = arr(p, "threads");
    var g = obj(p, "grid") || {};
    P.fromUs = num(g, "from_us");
    P.bucketUs = Math.max(1, num(g, "bucket_us"));
    P.buckets = Math.max(1, num(g, "buckets"));
    return P;
  }
  /* The stacks' tree as typed columns. */
  function profileStacks(P) {
    var nd = obj(obj(REP, "profile"), "nodes") || {}, nn = arr(nd, "frame").length;
    P.nodeFrame = typed(Int32Array, arr(nd, "frame"), nn);
    P.nodeParent = typed(Int32Array, arr(nd, "parent"), nn);
  }
  /* Every site's cells in one array, site i's from cell cellStart[i] to
   * cellStart[i + 1], CELL numbers each.  They come as columns of
   * differences from the site's cell before: made running again. */
  function profileCells(P) {
    var n = P.n, start = new Int32Array(n + 1), i, k, c;
    var cc = obj(obj(REP, "profile"), "cells") || {}, cols = CELL_KEYS.map(function (key) { return arr(cc, key); });
    var have = Math.min.apply(null, cols.map(function (col) { return col.length; }));
    for (i = 0; i < n; i++) start[i + 1] = Math.min(have, start[i] + Math.max(0, P.ncells[i]));
    var cells = new Float64Array(start[n] * CELL);
    for (k = 0; k < CELL; k++) {
      var col = cols[k];
      for (i = 0; i < n; i++)
        for (c = start[i]; c < start[i + 1]; c++) {
          var x = +col[c];
          cells[c * CELL + k] = (c > start[i] ? cells[(c - 1) * CELL + k] : 0) + (x - x === 0 ? x : 0);
        }
    }
    P.cells = cells;
    P.cellStart = start;
  }
  function sget(i) { return PROF.strings[i] === undefined ? "?" : String(PROF.strings[i]); }
  function frameOf(id) {
    var F = PROF.frames, m = F.module[id];
    return { function: sget(F.fn[id]), file: sget(F.file[id]), line: +F.line[id] || 0,
      module: m >= 0 ? sget(m) : null };
  }
  function frameName(id) {
    var f = frameOf(id);
    if (f.module !== null && !f.file) return f.function + " (" + f.module + ")";
    return f.function + " (" + f.file + ":" + f.line + ")";
  }
  function stackOf(node) {
    var out = [];
    for (var k = node, guard = 0; k >= 0 && guard < 4096; k = PROF.nodeParent[k], guard++)
      out.push(frameOf(PROF.nodeFrame[k]));
    return out.reverse();
  }

  /* ---- the view: filters, grouping and the time window ---- */
  var VIEW = { group: "line", domains: [true, true, true, true], thread: -1, win: null };
  var listeners = [];
  function changed() { listeners.forEach(function (f) { f(); }); }
  /* Runs the functions of list one per task, so that the browser is never
   * blocked long at a time by a large report; then done(). */
  function inTurn(list, done) {
    var i = 0;
    (function next() {
      if (i === list.length) return done();
      list[i++]();
      setTimeout(next, 0);
    })();
  }

  /* Site i's running figures at the end of bucket b: its last cell at or
   * before b (-1: none, its figures are zeros). */
  function cellAt(i, b) {
    var c = PROF.cells, first = PROF.cellStart[i], lo = first, hi = PROF.cellStart[i + 1];
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (c[mid * CELL] <= b) lo = mid + 1; else hi = mid;
    }
    return lo > first ? lo - 1 : -1;
  }
  function at(k, f) { return k < 0 ? 0 : PROF.cells[k * CELL + f]; }
  /* The grid's bucket of time t (-1: before the grid, which starts at
   * the report's window). */
  function bucketOf(t) { return Math.max(-1, Math.floor((t - PROF.fromUs) / PROF.bucketUs)); }
  /* The window: buckets b0..b1 of the grid and its own peak, the highest
   * heap of the timeline inside it. */
  function makeWindow(t0, t1) {
    var w = { t0: t0, t1: t1, b0: bucketOf(t0), b1: bucketOf(t1), peak: 0, peakT: t0 };
    var found = false;
    for (var i = 0; i < TL.t.length; i++)
      if (TL.t[i] >= t0 && TL.t[i] <= t1 && (!found || TL.heap[i] > w.peak)) {
        w.peak = TL.heap[i]; w.peakT = TL.t[i]; found = true;
      }
    if (!found && TL.t.length) { /* between two points: the heap then was the earlier one's */
      var k = 0;
      while (k + 1 < TL.t.length && TL.t[k + 1] <= t0) k++;
      w.peak = TL.heap[k]; w.peakT = t0;
    }
    w.bp = bucketOf(w.peakT);
    return w;
  }
  /* Each site's figures in the view: the whole trace's, or the window's
   * (differences of cells; peak: live at the end of the peak's bucket;
   * leaked: live at the window's end). */
  var F_ALLOCS = 0, F_BYTES = 1, F_PEAK = 2, F_LEAK = 3, F_LEAKB = 4, F_TEMP = 5, F_TEMPB = 6, NF = 7;
  function siteFigures() {
    var n = PROF.n, out = new Float64Array(n * NF), w = VIEW.win;
    for (var i = 0; i < n; i++) {
      var o = i * NF;
      if (!w) {
        out[o + F_ALLOCS] = PROF.allocs[i];
        out[o + F_BYTES] = PROF.bytes[i];
        out[o + F_PEAK] = PROF.peak_bytes[i];
        out[o + F_LEAK] = PROF.live_bytes_at_exit[i];
        out[o + F_LEAKB] = PROF.live_blocks_at_exit[i];
        out[o + F_TEMP] = PROF.temporary_allocs[i];
        out[o + F_TEMPB] = PROF.temporary_bytes[i];
        continue;
      }
      var a = cellAt(i, w.b0 - 1), b = cellAt(i, w.b1), p = cellAt(i, w.bp);
      out[o + F_ALLOCS] = at(b, 1) - at(a, 1);
      out[o + F_BYTES] = at(b, 2) - at(a, 2);
      out[o + F_PEAK] = at(p, 3);
      out[o + F_LEAK] = at(b, 3);
      out[o + F_TEMP] = at(b, 4) - at(a, 4);
      out[o + F_TEMPB] = at(b, 5) - at(a, 5);
    }
    return out;
  }
  function visible(i) {
    return VIEW.domains[PROF.domain[i]] !== false && (VIEW.thread < 0 || PROF.thread[i] === VIEW.thread);
  }
  /* The rows of the tables: the visible sites grouped by line (function,
   * file and line), function (and file) or file. */
  function groupRows(fig) {
    var F = PROF.frames, byLine = VIEW.group === "line", groups = new Map(), rows = [];
    var rowOf = byLine ? new Int32Array(F.fn.length).fill(-1) : null; /* by line: a frame's row */
    for (var i = 0; i < PROF.n; i++) {
      if (!visible(i)) continue;
      var w = PROF.where[i], key, r;
      if (byLine) {
        r = rowOf[w] >= 0 ? rows[rowOf[w]] : null;
      } else {
        key = VIEW.group === "file" ? F.file[w] : F.fn[w] + "\u0000" + F.file[w];
        r = groups.get(key);
      }
      if (!r) {
        r = { where: w, best: i, bestBytes: -1, domains: 0, sites: 0,
          allocs: 0, bytes: 0, peak: 0, leak: 0, leakBlocks: 0, temp: 0, tempBytes: 0 };
        if (byLine && w >= 0 && w < rowOf.length) rowOf[w] = rows.length;
        else if (!byLine) groups.set(key, r);
        rows.push(r);
      }
      var o = i * NF;
      r.allocs += fig[o + F_ALLOCS];
      r.bytes += fig[o + F_BYTES];
      r.peak += fig[o + F_PEAK];
      r.leak += fig[o + F_LEAK];
      r.leakBlocks += fig[o + F_LEAKB];
      r.temp += fig[o + F_TEMP];
      r.tempBytes += fig[o + F_TEMPB];
      r.domains |= 1 << PROF.domain[i];
      r.sites++;
      if (PROF.bytes[i] > r.bestBytes) { r.best = i; r.bestBytes = PROF.bytes[i]; }
    }
    return rows;
  }
  var SORTS = {
    peak: { label: "peak", key: "peak", key2: "bytes" },
    allocations: { label: "allocations", key: "allocs", key2: "bytes" },
    bytes: { label: "bytes", key: "bytes", key2: "allocs" },
    leaked: { label: "leaked", key: "leak", key2: "leakBlocks" },
    temporary: { label: "temporary", key: "temp", key2: "tempBytes" },
  };
  function rowOrder(how) {
    var s = SORTS[how];
    return function (a, b) {
      return b[s.key] - a[s.key] || (b[s.key2] || 0) - (a[s.key2] || 0) || a.where - b.where;
    };
  }
  /* The first k rows in order (all of them when k is not given): a full
   * sort of 100,000 rows for the 50 shown would cost the most of a view. */
  function sortRows(rows, how, k) {
    var before = rowOrder(how);
    if (k === undefined || rows.length <= 4 * k) return rows.sort(before).slice(0, k === undefined ? rows.length : k);
    var best = rows.slice(0, k).sort(before);
    for (var i = k; i < rows.length; i++) {
      var r = rows[i];
      if (before(r, best[k - 1]) >= 0) continue;
      var at = k - 1;
      while (at > 0 && before(r, best[at - 1]) < 0) at--;
      best.splice(at, 0, r);
      best.length = k;
    }
    return best;
  }

  /* ---- page sections ---- */
  function commandLine() {
    var argv = arr(obj(REP, "process"), "argv");
    if (!argv.length) return str(obj(REP, "process"), "exe", "(unknown program)");
    var shown = argv.slice(0, 64).map(function (a) {
      a = String(a);
      return !a.length || /[\s'"\\$`;&|<>()*?[\]#~]/.test(a) ? "'" + a.replace(/'/g, "'\\''") + "'" : a;
    }).join(" ");
    return argv.length > 64 ? shown + " … (" + (argv.length - 64) + " more)" : shown;
  }
  function header(body) {
    var proc = obj(REP, "process") || {}, tr = obj(REP, "trace") || {}, ev = obj(REP, "events") || {};
    var h = add(body, el("header"));
    add(h, el("div", "brand", "memtrace report"));
    add(h, el("h1", "cmd", commandLine()));
    document.title = "memtrace: " + commandLine();
    var meta = metaList(h);
    meta("program", str(proc, "exe", "unknown"));
    meta("process", (typeof proc.pid === "number" ? "pid " + proc.pid : "") +
      (typeof proc.ppid === "number" ? ", parent " + proc.ppid : ""));
    var py = obj(proc, "python");
    if (py) meta("Python", str(py, "version", "?") + (py.free_threaded ? " (free-threaded)" : ""));
    var start = typeof proc.start_unix_ns === "number" ? proc.start_unix_ns : 0; /* past num()'s clamp */
    meta("started", start > 0 ? new Date(start / 1e6).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "unknown");
    meta("duration", time(num(tr, "duration_us")));
    meta("events", count(num(ev, "total")) + " in " + count(num(tr, "threads")) + " thread" +
      (num(tr, "threads") === 1 ? "" : "s"));
    /* a report made with a view (--from/--to, --thread, --domain) */
    var win = obj(REP, "window"), view = obj(REP, "view");
    if (win && win.opened === true) meta("window", time(num(win, "from_us")) + " to " + time(num(win, "to_us")));
    if (view && typeof view.thread === "number") meta("thread", String(view.thread));
    var doms = arr(view, "domains");
    if (doms.length && doms.length < 4) meta("domains", doms.map(String).join(", "));
    if (typeof DATA.trace_file === "string") meta("trace", DATA.trace_file);
    if (tr.complete !== true)
      add(h, el("p", "warn", "The trace has no footer: the process did not finish (killed?). " +
        "The report covers what was recorded."));
    else if (typeof tr.end_reason === "string" && tr.end_reason !== "exit")
      add(h, el("p", "info", "The trace ended with " + tr.end_reason + "."));
    if (num(ev, "lost") > 0)
      add(h, el("p", "warn", count(num(ev, "lost")) + " events could not be recorded (allocations " +
        "from signal handlers): the figures miss them."));
  }
  /* --intro: paragraphs separated by blank lines, the first the heading. */
  function intro(body) {
    var text = str(REP, "intro", "");
    if (!text) return;
    var s = add(body, el("section", "intro"));
    s.id = "intro";
    text.split(/\n\n+/).forEach(function (p, i) {
      if (p.replace(/\n/g, "")) add(s, el(i ? "p" : "h2", null, p.replace(/^\n+|\n+$/g, "")));
    });
  }
  function nav(body, have) {
    var n = add(body, el("nav"));
    [["summary", "Summary"], ["script", "Script"], ["heap", "Heap"], ["memory", "Memory"], ["pools", "Arenas and pools"], ["sizes", "Sizes"],
      ["lists", "Lists"], ["sites", "Sites"], ["leaks", "Leaks"], ["temporary", "Temporaries"],
      ["steps", "Steps"], ["flame", "Flame graph"]].forEach(function (s) {
      if (!have[s[0]]) return;
      var a = add(n, el("a", null, s[1]));
      a.href = "#" + s[0];
    });
  }

  function summary(main) {
    var sum = obj(REP, "summary") || {}, peak = obj(sum, "heap_peak") || {}, live = obj(sum, "live_at_exit") || {};
    var temp = obj(sum, "temporary") || {}, ev = obj(REP, "events") || {}, arenas = obj(REP, "arenas") || {};
    var lists = obj(REP, "lists") || {}, doms = obj(REP, "domains") || {}, pools = obj(REP, "pools") || {};
    var s = section(main, "summary", "Summary");
    var card = cardList(s, PY ? "c4" : "c5");
    card("accent", "Heap peak", bytes(num(peak, "bytes")), "at " + time(num(peak, "time_us")) +
      (PY ? " · malloc + pymalloc arenas" : " · malloc heap"));
    card(num(live, "bytes") > 0 ? "warm" : null, "Live at exit", bytes(num(live, "bytes")),
      count(num(live, "blocks")) + " blocks never freed");
    card(null, "Temporary allocations", count(num(temp, "allocs")), bytes(num(temp, "bytes")) +
      " allocated and freed at once");
    var calls = 0, requested = 0;
    ["malloc", "pymem_obj"].forEach(function (d) { /* what the program asked for */
      calls += num(doms[d], "allocs") + num(doms[d], "reallocs");
      requested += num(doms[d], "bytes_allocated");
    });
    card(null, "Allocations", count(calls), bytes(requested) + " requested (malloc" + (PY ? " and PyObject" : "") + ")");
    if (PY) {
      card(null, "Arenas at peak", count(num(arenas, "peak")), count(num(arenas, "allocated")) +
        " arenas allocated, " + count(num(arenas, "live_at_exit")) + " at exit");
      card(null, "Pools at peak", count(num(pools, "pools_peak")), count(num(pools, "pools_at_exit")) + " pools at exit");
      card(null, "List resizes", count(num(lists, "resizes")), bytes(num(lists, "bytes_copied")) +
        " copied by moving reallocs");
    }
    card(num(ev, "lost") > 0 ? "bad" : "good", "Lost events", count(num(ev, "lost")),
      num(ev, "producer_waits") > 0 ? "threads waited " + count(num(ev, "producer_waits")) + " times for the writer"
        : "no thread had to wait for the writer");

    var top = arr(peak, "top_sites");
    if (top.length) {
      add(s, el("h3", null, "Live at the peak, by site"));
      var ol = add(s, el("ol", "top")), whole = num(peak, "bytes");
      top.slice(0, 10).forEach(function (t) {
        var li = add(ol, el("li")), b = num(t, "bytes");
        var bar = add(li, el("span", "barbg"));
        add(bar, el("span")).style.width = (whole > 0 ? Math.min(100, Math.max(0, 100 * b / whole)) : 0).toFixed(1) + "%";
        add(li, el("b", null, bytes(b)));
        add(li, el("span", "pct", pct(b, whole)));
        li.appendChild(location({ file: str(t, "file", "?"), line: num(t, "line") }));
        add(li, el("span", "fn", str(t, "function", "")));
      });
    }
    add(s, el("h3", null, "Allocator domains"));
    if (PY)
      note(s, "Each domain is counted on its own: a PyObject allocation that pymalloc passes on to " +
        "PyMem_RawMalloc and malloc counts in all three.");
    var rows = DOMAINS.map(function (d) { return { name: d, o: obj(doms, d) }; }).filter(function (r, i) {
      return r.o && (i === 0 || PY || num(r.o, "allocs") > 0);
    });
    function col(head, key, fmt, tipText) {
      return { head: head, num: true, tip: tipText, key: function (r) { return num(r.o, key); },
        fmt: function (v, r) { return fmt(num(r.o, key)); } };
    }
    table(s, [
      { head: "Domain", field: "name", fmt: function (v, r, td) {
        add(td, el("i", "sw")).style.background = COLORS[v];
        td.appendChild(document.createTextNode(v));
      } },
      col("Allocations", "allocs", count), col("Reallocs", "reallocs", count), col("Frees", "frees", count),
      col("Failed", "failed", count, "calls that returned NULL"), col("Bytes allocated", "bytes_allocated", bytes),
      col("Peak", "peak_bytes", bytes, "most bytes live at once in this domain"),
      col("Live at exit", "live_bytes_at_exit", bytes), col("Live blocks", "live_blocks_at_exit", count),
    ], rows);
  }

  var heapChart = null, windowBar = null;
  function heapSection(main) {
    var peak = obj(obj(REP, "summary"), "heap_peak") || {};
    var s = section(main, "heap", "Heap over time");
    if (PY)
      note(s, "The heap is what the process holds: the malloc domain plus the pymalloc arenas. The " +
        "PyMem domains are drawn on their own; they overlap with it.");
    note(s, "Drag across the chart to look at a time window: the tables and the flame graph below " +
      "then show that window alone, and the window's own peak is shown here.");
    var series = [{ name: PY ? "heap (malloc + arenas)" : "heap", color: COLORS.heap, values: TL.heap, area: true }];
    DOMAINS.forEach(function (d, i) {
      var any = false;
      for (var k = 0; k < TL[d].length && !any; k++) any = TL[d][k] !== 0;
      if ((i === 0 && PY) || (i > 0 && any)) series.push({ name: d, color: COLORS[d], values: TL[d] });
    });
    windowBar = add(s, el("div", "window"));
    heapChart = lineChart(s, { id: "heap", title: "heap over time", t: TL.t, series: series, isBytes: true,
      marks: CHART_MARKS, wide: true, peak: num(peak, "bytes") > 0 ? { t: num(peak, "time_us"), v: num(peak, "bytes") } : null,
      onBrush: PROF ? function (w) { setWindow(w ? w.t0 : null, w ? w.t1 : null); } : null });
    listeners.push(showWindow);
    showWindow();
  }
  function showWindow() {
    var w = VIEW.win, peak = obj(obj(REP, "summary"), "heap_peak") || {};
    windowBar.textContent = "";
    heapChart.show(w);
    if (!w) {
      add(windowBar, el("span", null, "Whole trace: heap peak "));
      add(windowBar, el("b", "win-peak", bytes(num(peak, "bytes"))));
      add(windowBar, el("span", null, " at " + time(num(peak, "time_us")) +
        (PROF ? "." : " (this report has no per-site times: no time window).")));
      return;
    }
    add(windowBar, el("span", null, "Window " + time(w.t0) + " – " + time(w.t1) + ": its peak "));
    add(windowBar, el("b", "win-peak", bytes(w.peak)));
    add(windowBar, el("span", null, " at " + time(w.peakT) + " (whole trace " + bytes(num(peak, "bytes")) +
      "). Sites' figures on a grid of " + time(PROF.bucketUs) + "."));
    var clear = add(windowBar, el("button", null, "Whole trace"));
    clear.type = "button";
    clear.id = "win-clear";
    clear.addEventListener("click", function () { setWindow(null); });
  }
  function setWindow(t0, t1) {
    VIEW.win = t0 === null || t0 === undefined || !PROF ? null : makeWindow(t0, t1);
    changed();
  }

  /* The main script line by line (script_lines, script_sources): each
   * file's text with its lines' figures and a bar of the bytes each line
   * allocated and freed; a long file (or one that could not be read) shows
   * only the lines with figures. */
  var SCRIPT_MAX_LINES = 20000;
  function scriptSection(main) {
    var lines = arr(REP, "script_lines");
    if (!lines.length) return;
    var s = section(main, "script", "The main script, line by line");
    note(s, "What each line of the script run as __main__ did, with what the functions it called did. " +
      "Frees count at the line that ran when they happened. Bars: bytes allocated (green) and freed " +
      "(red), against the line that moved the most.");
    arr(REP, "script_sources").forEach(function (src) {
      var file = str(src, "file", null);
      if (file === null) return;
      var mine = lines.filter(function (l) { return l.file === file; }), most = 0, byLine = {};
      mine.forEach(function (l) {
        most = Math.max(most, num(l, "bytes_allocated"), num(l, "bytes_freed"));
        byLine[num(l, "line")] = l;
      });
      add(s, el("h3", "mono", file));
      var text = Array.isArray(src.lines) ? src.lines : null;
      if (!text) note(s, "The file could not be read when the report was made: the lines' figures without their text.");
      var rows = text && text.length <= SCRIPT_MAX_LINES
        ? text.map(function (t, i) { return { n: i + 1, l: byLine[i + 1] || null, text: String(t) }; })
        : mine.map(function (l) { return { n: num(l, "line"), l: l, text: str(l, "source", "") }; });
      scriptTable(s, rows, most);
    });
  }
  function scriptTable(s, rows, most) {
    var t = add(add(s, el("div", "tw")), el("table", "script")), tr = add(add(t, el("thead")), el("tr"));
    [["Line", 1], ["Allocs", 1], ["Frees", 1], ["Net", 1, "bytes allocated less bytes freed"],
      ["At peak", 1, "its bytes live at the heap peak"], ["Arenas", 1, "pymalloc arenas gained less lost"],
      ["Pools", 1, "pymalloc pools gained less lost"], ["Allocated / freed"], ["Source"]].forEach(function (h) {
      var th = add(tr, el("th", h[1] ? "n" : null, h[0]));
      if (h[2]) th.title = h[2];
    });
    var body = add(t, el("tbody"));
    rows.forEach(function (r) {
      var row = add(body, el("tr", r.l ? "hot" : null)), l = r.l;
      add(row, el("td", "n ln", String(r.n)));
      function delta(gained, lost) {
        var g = num(l, gained), f = num(l, lost), td = add(row, el("td", "n", g || f ? scount(g - f) : ""));
        if (g || f) td.title = count(g) + " gained, " + count(f) + " lost";
      }
      if (l) {
        add(row, el("td", "n", count(num(l, "allocs"))));
        add(row, el("td", "n", count(num(l, "frees"))));
        add(row, el("td", "n", sbytes(num(l, "net_bytes"))));
        add(row, el("td", "n", bytes(num(l, "peak_bytes"))));
        delta("arenas_allocated", "arenas_freed");
        delta("pools_allocated", "pools_freed");
        var a = num(l, "bytes_allocated"), f = num(l, "bytes_freed"), td = add(row, el("td"));
        td.title = bytes(a) + " allocated, " + bytes(f) + " freed";
        var bar = add(td, el("span", "lbar"));
        add(bar, el("span", "a")).style.width = (most > 0 ? 100 * a / most : 0).toFixed(1) + "%";
        add(bar, el("span", "f")).style.width = (most > 0 ? 100 * f / most : 0).toFixed(1) + "%";
      } else {
        for (var k = 0; k < 7; k++) add(row, el("td"));
      }
      add(row, el("td", "src", r.text));
    });
  }

  /* What the OS saw (timeline.samples, memory, marks[].memory): RSS beside
   * the requested heap and what the allocators hold, the figures at the
   * RSS peak, each mark and exit, and why RSS is higher than the heap. */
  var MEMORY_SERIES = [["rss", "RSS", "#9c755f"], ["requested", "requested heap", COLORS.heap],
    ["glibc_held", "glibc held", "#f28e2b"], ["arenas", "pymalloc arenas", COLORS.arenas],
    ["mmap", "mmap domain", COLORS.pools]];
  function has(o, k) { return o && typeof o[k] === "number" && isFinite(o[k]); }
  function maybeBytes(o, k, signed) { return has(o, k) ? (signed ? sbytes : bytes)(num(o, k)) : "–"; }
  function memorySection(main) {
    var samples = arr(obj(REP, "timeline"), "samples"), mem = obj(REP, "memory") || {};
    if (!samples.length) return;
    var s = section(main, "memory", "Memory the OS sees");
    note(s, "Resident memory (RSS) sampled every " + num(mem, "interval_ms") + " ms and at every " +
      "mark, beside what the program requested and what the allocators hold. glibc's figures are " +
      "left out of a sample when taking them would cost more than 1% of the time: their line then " +
      "holds the last value.");
    /* a figure a sample left out holds the last one taken */
    var n = samples.length, t = new Float64Array(n), last = 0, series = [];
    MEMORY_SERIES.forEach(function (m, k) {
      var v = new Float64Array(n), any = false;
      for (var i = 0; i < n; i++) {
        v[i] = has(samples[i], m[0]) ? num(samples[i], m[0]) : i ? v[i - 1] : 0;
        any = any || v[i] !== 0;
      }
      if (any || k < 2) series.push({ name: m[1], color: m[2], values: v, area: k === 0 });
    });
    for (var i = 0; i < n; i++) last = t[i] = Math.max(last, num(samples[i], "time_us"));
    var peak = obj(mem, "peak"), exit = obj(mem, "exit");
    lineChart(s, { id: "memory", title: "memory the OS sees over time", t: t, series: series, isBytes: true,
      marks: CHART_MARKS, wide: true, peak: peak ? { t: num(peak, "time_us"), v: num(peak, "rss") } : null });
    var rows = [];
    if (peak) rows.push({ when: "RSS peak", s: obj(peak, "sample") });
    arr(REP, "marks").forEach(function (m) {
      if (obj(m, "memory")) rows.push({ when: "mark " + str(m, "label", ""), s: obj(obj(m, "memory"), "sample") });
    });
    if (exit) rows.push({ when: "exit", s: obj(exit, "sample") });
    function col(head, key, tipText) {
      return { head: head, num: true, tip: tipText, key: function (r) { return has(r.s, key) ? num(r.s, key) : -1; },
        fmt: function (v, r) { return maybeBytes(r.s, key); } };
    }
    table(s, [{ head: "When", field: "when" },
      { head: "Time", num: true, key: function (r) { return num(r.s, "time_us"); }, fmt: function (v, r) { return time(num(r.s, "time_us")); } },
      col("RSS", "rss"), col("RssAnon", "rss_anon"), col("RssFile", "rss_file", "file-backed pages: code, libraries, files"),
      col("Requested", "requested", "malloc + CPython's objects"), col("glibc held", "glibc_held", "glibc's heaps + chunks it mapped"),
      col("Arenas", "arenas", "pymalloc arenas"), col("mmap", "mmap", "the program's own mappings"),
      col("memtrace", "memtrace_resident", "memtrace's own, resident")], rows);
    breakdown(s, peak, exit);
  }
  /* The parts of RSS minus the requested heap, at the RSS peak and at exit. */
  function breakdown(s, peak, exit) {
    if (!peak && !exit) return;
    add(s, el("h3", null, "Why RSS is higher than the requested heap"));
    note(s, "RSS minus the requested heap (malloc + CPython's objects), in parts: each is measured (the " +
      "sample's /proc/self/status, glibc's mallinfo2, mincore of the brk heap, or the trace itself), " +
      "and a part that could not be is marked “–”, never guessed.");
    var at = [peak, exit], parts = arr(exit || peak, "parts"), rows = [];
    [["rss", "RSS"], ["requested", "requested heap"], ["difference", "difference"]].forEach(function (r, i) {
      rows.push({ name: r[1], v: at.map(function (o) { return maybeBytes(o, r[0], i === 2); }) });
    });
    parts.forEach(function (part, i) {
      var cells = at.map(function (o) { return arr(o, "parts")[i]; });
      var shown = cells.some(function (q) { return !has(q, "bytes") || num(q, "bytes") !== 0; });
      if (shown && typeof part.key === "string")
        rows.push({ name: str(part, "what", part.key), v: cells.map(function (q) { return maybeBytes(q, "bytes", true); }) });
    });
    table(s, [{ head: "Part", field: "name" },
      { head: "At the RSS peak", num: true, key: function (r) { return 0; }, fmt: function (v, r) { return r.v[0]; } },
      { head: "At exit", num: true, key: function (r) { return 0; }, fmt: function (v, r) { return r.v[1]; } }], rows);
    heapTop(s, peak, "At the RSS peak");
    heapTop(s, exit, "At exit");
  }
  function heapTop(s, b, when) {
    var top = obj(b, "heap_top"), by = obj(top, "held_by");
    if (!by) return;
    if (num(top, "gap") > 0) {
      note(s, when + ", the heap top is held by a chunk the trace does not show live (in glibc's caches, " +
        "or from before tracing), up to " + bytes(num(top, "gap")) + " above the highest live block; glibc " +
        "keeps the " + bytes(num(top, "free_below_top")) + " freed below the top.");
      return;
    }
    var p = note(s, when + ", the heap top is held by a live block of " + bytes(num(by, "size")) + " at 0x" +
      num(by, "address").toString(16) + ", ");
    p.appendChild(location({ file: str(by, "file", "?"), line: num(by, "line") }));
    add(p, el("span", "fn", " " + str(by, "function", "")));
    p.appendChild(document.createTextNode(": while it lives, glibc keeps the " + bytes(num(top, "free_below_top")) +
      " freed below it."));
  }

  function poolsSection(main) {
    var arenas = obj(REP, "arenas") || {}, pools = obj(REP, "pools") || {}, frag = obj(pools, "fragmentation") || {};
    var other = obj(arenas, "other_blocks") || {};
    var s = section(main, "pools", "pymalloc arenas and pools");
    var st;
    if (typeof arenas.absent === "string") {
      note(s, arenas.absent + ".");
      st = add(s, el("div", "stats"));
      stat(st, "frame stack chunks", count(num(other, "allocated")) + ", peak " + bytes(num(other, "bytes_peak")));
      return;
    }
    st = add(s, el("div", "stats"));
    stat(st, "arena size", bytes(num(arenas, "arena_size")));
    stat(st, "pool size", bytes(num(pools, "pool_size")));
    stat(st, "arenas allocated", count(num(arenas, "allocated")));
    stat(st, "arenas freed", count(num(arenas, "freed")));
    stat(st, "arenas at peak", count(num(arenas, "peak")));
    stat(st, "arenas at exit", count(num(arenas, "live_at_exit")));
    stat(st, "pools at peak", count(num(pools, "pools_peak")));
    stat(st, "pools at exit", count(num(pools, "pools_at_exit")));
    [["at_peak", "objects in arenas at peak"], ["at_exit", "objects in arenas at exit"]].forEach(function (w) {
      var f = obj(frag, w[0]) || {}, a = num(f, "arena_bytes"), o = num(f, "object_bytes");
      stat(st, w[1], bytes(o) + " of " + bytes(a) + " (" + (a > 0 ? pct(o, a) : "no arenas") + ")");
    });
    if (num(other, "allocated") > 0)
      stat(st, "frame stack chunks", count(num(other, "allocated")) + ", peak " + bytes(num(other, "bytes_peak")));
    if (TL.t.length) {
      var pair = add(s, el("div", "pair"));
      lineChart(pair, { title: "arenas in use over time", t: TL.t, width: 540, height: 260, markNumbers: true,
        series: [{ name: "arenas in use", color: COLORS.arenas, values: TL.arenas, area: true }], marks: CHART_MARKS });
      lineChart(pair, { title: "pools in use over time", t: TL.t, width: 540, height: 260, markNumbers: true,
        series: [{ name: "pools in use", color: COLORS.pools, values: TL.pools, area: true }], marks: CHART_MARKS });
    }
    var sc = arr(pools, "size_classes");
    if (sc.length) {
      add(s, el("h3", null, "Live objects per size class"));
      note(s, "pymalloc rounds small requests up to 16-byte classes; each pool serves one class. " +
        "Hover a bar for its figures.");
      barChart(s, { title: "live objects per pymalloc size class", width: 1100, height: 260,
        names: sc.map(function (c) { return String(num(c, "size")); }), xtitle: "size class (bytes)",
        series: [{ name: "at the heap peak", color: COLORS.peak, values: sc.map(function (c) { return num(c, "live_objects_peak"); }) },
          { name: "at exit", color: COLORS.exit, values: sc.map(function (c) { return num(c, "live_objects_at_exit"); }) }] });
      var more = add(s, el("details", "more"));
      add(more, el("summary", null, "Size classes as a table"));
      function c(head, key) {
        return { head: head, num: true, key: function (r) { return num(r, key); }, fmt: function (v, r) { return count(num(r, key)); } };
      }
      table(more, [c("Size class", "size"), c("Allocations", "allocs"), c("Live at peak", "live_objects_peak"),
        c("Pools at peak", "pools_peak"), c("Live at exit", "live_objects_at_exit"), c("Pools at exit", "pools_at_exit")], sc);
    }
    var ret = arr(pools, "arenas_retained");
    if (ret.length) {
      add(s, el("h3", null, "Arenas still mapped at exit"));
      note(s, "An arena goes back to the system only when its last object is freed: a few survivors keep a whole arena.");
      table(s, [
        { head: "Arena", cls: "mono", key: function (r) { return num(r, "address"); },
          fmt: function (v, r) { return "0x" + num(r, "address").toString(16); } },
        { head: "Live objects", num: true, key: function (r) { return num(r, "live_objects"); }, fmt: function (v, r) { return count(num(r, "live_objects")); } },
        { head: "Live bytes", num: true, key: function (r) { return num(r, "live_bytes"); }, fmt: function (v, r) { return bytes(num(r, "live_bytes")); } },
        { head: "Pools in use", num: true, key: function (r) { return num(r, "pools_in_use"); }, fmt: function (v, r) { return count(num(r, "pools_in_use")); } },
      ], ret);
    }
  }

  /* 1, 2, 4, ..., 512, 1K, ...: a bucket's upper bound. */
  function sizeLabel(max) {
    var sfx = ["", "K", "M", "G", "T", "P", "E"], v = max + 1, i = 0;
    while (v >= 1024 && i + 1 < sfx.length) { v /= 1024; i++; }
    return Math.round(v) + sfx[i];
  }
  function sizesSection(main) {
    var h = arr(obj(REP, "summary"), "size_histogram");
    var s = section(main, "sizes", "Requested sizes");
    if (!h.length) { add(s, el("p", "empty", "No allocations.")); return; }
    note(s, "Allocations of every domain but the raw one, in power-of-two buckets by requested size " +
      "(each bucket is labelled with its upper bound).");
    var pair = add(s, el("div", "pair")), names = h.map(function (b) { return sizeLabel(num(b, "max")); });
    function title(i) { return count(num(h[i], "min")) + " – " + count(num(h[i], "max")) + " bytes"; }
    barChart(pair, { title: "allocations by requested size", names: names, xtitle: "requested size, up to (bytes)",
      tipTitle: title, series: [{ name: "allocations", color: COLORS.allocs, values: h.map(function (b) { return num(b, "allocs"); }) }] });
    barChart(pair, { title: "bytes by requested size", names: names, xtitle: "requested size, up to (bytes)", isBytes: true,
      tipTitle: title, series: [{ name: "bytes allocated", color: COLORS.bytes, values: h.map(function (b) { return num(b, "bytes"); }) }] });
  }

  function listsSection(main) {
    var l = obj(REP, "lists") || {}, sites = arr(l, "sites");
    var s = section(main, "lists", "List over-allocation");
    var p = note(s, "A list's item buffer grows by PyMem_Realloc to 8 × capacity bytes, with capacity ");
    add(p, el("code", null, "(n + (n >> 3) + 6) & ~3"));
    p.appendChild(document.createTextNode("; the spare slots are slack."));
    var st = add(s, el("div", "stats"));
    stat(st, "resizes", count(num(l, "resizes")));
    stat(st, "buffers", count(num(l, "buffers")));
    stat(st, "bytes copied", bytes(num(l, "bytes_copied")));
    stat(st, "slack at peak", bytes(num(l, "slack_bytes_at_peak")));
    stat(st, "slack at exit", bytes(num(l, "slack_bytes_at_exit")));
    if (!sites.length) { add(s, el("p", "empty", "No list buffer was resized.")); return; }
    function c(head, key, fmt, tipText) {
      return { head: head, num: true, tip: tipText, key: function (r) { return num(r, key); }, fmt: function (v, r) { return fmt(num(r, key)); } };
    }
    table(s, [
      { head: "Site", key: function (r) { return str(r, "file", "") + ":" + num(r, "line"); },
        fmt: function (v, r, td) { whereCell(td, { function: str(r, "function", ""), file: str(r, "file", "?"), line: num(r, "line") }); } },
      c("Resizes", "resizes", count), c("Buffers", "buffers", count),
      c("Final capacity", "final_capacity", count, "slots, of the longest chain"),
      c("Slack", "slack_slots", count, "unused slots after its last resize"), c("Slack bytes", "slack_bytes", bytes),
      c("Bytes copied", "bytes_copied", bytes, "by reallocs that moved the buffer"),
      { head: "Capacity chain", tip: "capacities of the longest chain", cls: "chain",
        key: function (r) { return arr(r, "chain").length; },
        fmt: function (v, r) {
          var ch = arr(r, "chain").map(function (x) { return count(+x || 0); });
          if (ch.length > 9) ch = ch.slice(0, 4).concat(["…" + (ch.length - 7) + " more…"], ch.slice(-3));
          return ch.join(" → ");
        } },
    ], sites, 3);
  }

  /* ---- the sites: controls, three tables, and the flame graph ---- */
  function controls(main) {
    var bar = add(main, el("div", "controls"));
    bar.id = "view";
    function group(label) {
      var g = add(bar, el("div", "ctl"));
      add(g, el("span", "ctl-name", label));
      return g;
    }
    var g = group("Group by");
    var sel = add(g, el("select"));
    sel.id = "view-group";
    ["line", "function", "file"].forEach(function (k) { add(sel, el("option", null, k)).value = k; });
    sel.addEventListener("change", function () { VIEW.group = sel.value; changed(); });
    g = group("Domains");
    DOMAINS.forEach(function (d, i) {
      var present = false;
      for (var k = 0; k < PROF.n && !present; k++) present = PROF.domain[k] === i;
      if (!present) return;
      var lab = add(g, el("label", "dom"));
      var cb = add(lab, el("input"));
      cb.type = "checkbox";
      cb.checked = true;
      cb.value = d;
      cb.setAttribute("data-domain", d);
      add(lab, el("i", "sw")).style.background = COLORS[d];
      lab.appendChild(document.createTextNode(d));
      cb.addEventListener("change", function () { VIEW.domains[i] = cb.checked; changed(); });
    });
    if (PROF.threads.length > 1) {
      g = group("Thread");
      var ts = add(g, el("select"));
      ts.id = "view-thread";
      add(ts, el("option", null, "all " + PROF.threads.length)).value = "-1";
      PROF.threads.forEach(function (tid, i) { add(ts, el("option", null, String(tid))).value = String(i); });
      ts.addEventListener("change", function () { VIEW.thread = +ts.value; changed(); });
    }
    var status = add(bar, el("div", "ctl view-state"));
    listeners.push(function () {
      status.textContent = VIEW.win ? "time window " + time(VIEW.win.t0) + " – " + time(VIEW.win.t1) : "whole trace";
    });
  }
  var DOMSHORT = ["malloc", "raw", "mem", "obj"];
  function sitesTable(main, id, title, sortBy, noteText, wanted) {
    var s = section(main, id, title);
    note(s, noteText);
    var bar = add(s, el("div", "sortbar"));
    add(bar, el("span", "ctl-name", "Sort by"));
    var buttons = {};
    Object.keys(SORTS).forEach(function (k) {
      var b = add(bar, el("button", "sort", SORTS[k].label));
      b.type = "button";
      b.setAttribute("data-sort-by", k);
      buttons[k] = b;
      b.addEventListener("click", function () { sortBy = k; draw(); });
    });
    var holder = add(s, el("div"));
    var cols = [
      { head: "Site", key: "where" },
      { head: "Domain" },
      { head: "Allocations", key: "allocs", fmt: count, sort: "allocations" },
      { head: "Bytes", key: "bytes", fmt: bytes, sort: "bytes", tip: "allocated here" },
      { head: "At peak", key: "peak", fmt: bytes, sort: "peak", tip: "live at the heap peak (of the window, at the end of its grid bucket)" },
      { head: "Leaked", key: "leak", fmt: bytes, sort: "leaked", tip: "live at exit (or at the window's end)" },
      { head: "Temporary", key: "temp", fmt: count, sort: "temporary", tip: "allocations freed before the thread allocated again" },
      { head: "Temp. bytes", key: "tempBytes", fmt: bytes },
    ];
    function draw() {
      Object.keys(buttons).forEach(function (k) { buttons[k].classList.toggle("on", k === sortBy); });
      var rows = viewRows().filter(function (r) { return wanted(r); }), total = rows.length;
      rows = sortRows(rows, sortBy, holder.mtAll ? undefined : ROWS);
      holder.textContent = "";
      if (!rows.length) { add(holder, el("p", "empty", "None.")); return; }
      var wrap = add(holder, el("div", "tw")), t = add(wrap, el("table", "sites"));
      t.setAttribute("data-sorted-by", sortBy);
      var tr = add(add(t, el("thead")), el("tr")), body = add(t, el("tbody"));
      cols.forEach(function (c, i) {
        var th = add(tr, el("th", i >= 2 ? "n" : null, c.head));
        if (c.tip) th.title = c.tip;
        if (c.sort) {
          th.setAttribute("data-sort", "num");
          if (c.sort === sortBy) th.setAttribute("aria-sort", "descending");
          th.addEventListener("click", function () { sortBy = c.sort; draw(); });
        }
      });
      var shown = rows.length;
      for (var i = 0; i < shown; i++) {
        var r = rows[i], row = add(body, el("tr"));
        row.setAttribute("data-where", r.where);
        var site = r.best, w = frameOf(r.where);
        var where = add(row, el("td"));
        if (VIEW.group === "file") w = { function: "", file: w.file, line: 0 };
        else if (VIEW.group === "function") w = { function: w.function, file: w.file, line: 0 };
        whereCell(where, w, PROF.node[site] >= 0 ? stackOf(PROF.node[site]) : null);
        if (r.sites > 1) add(where, el("span", "muted", " · " + r.sites + " stacks"));
        var dtd = add(row, el("td", "dom"));
        dtd.textContent = DOMAINS.filter(function (d, k) { return r.domains & (1 << k); }).map(function (d) {
          return DOMSHORT[DOMAINS.indexOf(d)];
        }).join(", ");
        dtd.title = DOMAINS.filter(function (d, k) { return r.domains & (1 << k); }).join(", ");
        for (var k = 2; k < cols.length; k++) {
          var td = add(row, el("td", "n", cols[k].fmt(r[cols[k].key])));
          td.setAttribute("data-v", r[cols[k].key]);
        }
      }
      if (total > ROWS) {
        var more = add(holder, el("button", "showall", holder.mtAll ? "Show the first " + ROWS : "Show all " + count(total) + " rows"));
        more.type = "button";
        more.addEventListener("click", function () { holder.mtAll = !holder.mtAll; draw(); });
      }
    }
    listeners.push(draw);
    TABLES[id] = { sort: function (k) { sortBy = k; draw(); } };
  }
  /* The sites' figures and rows in the view, made again when it changes
   * (these listeners come first, each a task of its own while the page
   * opens), the rows once for the three tables. */
  var FIG = null, GROUPS = null, TABLES = {};
  listeners.push(function () {
    if (PROF) FIG = siteFigures();
    GROUPS = null;
  }, function () {
    if (PROF) viewRows();
  });
  function viewRows() {
    if (!GROUPS) GROUPS = groupRows(FIG);
    return GROUPS;
  }

  /* Sites from the JSON's lists (a report without a profile). */
  function plainSites(main, id, title, key, noteText) {
    var list = arr(REP, key);
    if (!list.length && id !== "sites") return false;
    var s = section(main, id, title);
    note(s, noteText);
    if (!list.length) { add(s, el("p", "empty", "None.")); return true; }
    function c(head, k, fmt) { return { head: head, num: true, key: function (r) { return num(r, k); }, fmt: function (v, r) { return fmt(num(r, k)); } }; }
    table(s, [
      { head: "Site", key: function (r) { return str(r, "file", ""); }, fmt: function (v, r, td) {
        whereCell(td, { function: str(r, "function", ""), file: str(r, "file", "?"), line: num(r, "line") }, arr(r, "stack"));
      } },
      { head: "Domain", field: "domain", cls: "dom" },
      c("Allocations", "allocs", count), c("Bytes", "bytes", bytes), c("At peak", "peak_bytes", bytes),
      c("Live at exit", "live_bytes_at_exit", bytes), c("Temporary", "temporary_allocs", count),
    ], list);
    return true;
  }

  function stepsSection(main) {
    if (!MARKS.length) return;
    var s = section(main, "steps", "Steps");
    note(s, "From each mark to the next (or to the end). Numbers match the marks on the charts.");
    var dur = num(obj(REP, "trace"), "duration_us");
    var rows = MARKS.slice(0, 10000).map(function (m, i) {
      var end = typeof m.step.end_us === "number" ? m.step.end_us : i + 1 < MARKS.length ? MARKS[i + 1].time_us : dur;
      return { m: m, o: m.step, end: end };
    });
    function c(head, key, fmt, tipText) {
      return { head: head, num: true, tip: tipText, key: function (r) { return num(r.o, key); }, fmt: function (v, r) { return fmt(num(r.o, key)); } };
    }
    var cols = [
      { head: "#", num: true, key: function (r) { return r.m.number; }, fmt: function (v, r) { return r.m.first ? "" : count(r.m.number); } },
      { head: "Step", cls: "step", key: function (r) { return r.m.label; }, fmt: function (v, r, td) {
        add(td, el("b", null, r.m.label));
        var when = "at " + time(r.m.time_us) + ", for " + time(r.end - r.m.time_us);
        if (num(r.o, "marks") > 1) when += "; " + count(num(r.o, "marks")) + " marks";
        if (typeof r.o.heap_peak === "number") when += "; heap peak " + bytes(num(r.o, "heap_peak"));
        add(td, el("span", "when", when));
      } },
      c("Allocations", "allocs", count), c("Frees", "frees", count),
      c("Net heap", "net_bytes", sbytes, "change of the heap (malloc + arenas) over the step"),
    ];
    if (PY)
      cols.push(c("Arenas", "arenas_delta", scount, "change of pymalloc arenas in use"),
        c("Pools", "pools_delta", scount, "change of pymalloc pools in use"), c("List resizes", "list_resizes", count));
    cols.push({ head: "By domain", cls: "small", tip: "allocations, frees and net bytes per domain",
      key: function (r) { return 0; }, fmt: function (v, r, td) {
        var bd = obj(r.o, "by_domain") || {};
        DOMAINS.forEach(function (d, k) {
          var o = obj(bd, d);
          if (!o || (num(o, "allocs") === 0 && num(o, "frees") === 0)) return;
          var div = add(td, el("div"));
          div.title = d + ": allocations, frees, net bytes";
          add(div, el("i", "sw")).style.background = COLORS[d];
          div.appendChild(document.createTextNode(DOMSHORT[k] + " +" + count(num(o, "allocs")) + " −" +
            count(num(o, "frees")) + " · " + sbytes(num(o, "net_bytes"))));
        });
      } });
    if (PY)
      cols.push({ head: "Size classes", cls: "small", tip: "the pymalloc size classes the step allocated most in",
        key: function (r) { return 0; }, fmt: function (v, r, td) {
          var sc = arr(r.o, "size_classes").slice().sort(function (a, b) { return num(b, "allocs") - num(a, "allocs"); });
          sc.slice(0, 3).forEach(function (c) {
            add(td, el("div", null, num(c, "size") + " B: +" + count(num(c, "allocs")) + " −" + count(num(c, "frees"))));
          });
          if (sc.length > 3) add(td, el("div", "muted", (sc.length - 3) + " more"));
        } });
    table(s, cols, rows);
  }

  /* ---- flame graph ---- */
  function frameColor(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    if (name.indexOf("<native>") === 0) return "hsl(210, 14%, " + (72 + h % 10) + "%)";
    return "hsl(" + (8 + h % 42) + ", " + (70 + (h >> 8) % 20) + "%, " + (62 + (h >> 16) % 12) + "%)";
  }
  /* The tree: the profile's stack nodes, plus "<native>" for sites
   * without a stack, with the visible sites' bytes (of the window). */
  /* The tree: the profile's stack nodes, plus "<native>" for sites
   * without a stack, with the visible sites' bytes (of the window).  The
   * nodes are typed arrays; a node's object, and its children's list in
   * order, are made when it is first drawn or searched (kids). */
  function flameTree() {
    var nn = PROF.nodeFrame.length, val = new Float64Array(nn), nat = 0, total = 0;
    for (var i = 0; i < PROF.n; i++) {
      if (!visible(i)) continue;
      var b = FIG[i * NF + F_BYTES];
      if (!(b > 0)) continue;
      total += b;
      if (PROF.node[i] >= 0 && PROF.node[i] < nn) val[PROF.node[i]] += b; else nat += b;
    }
    /* a node's parent comes before it: one pass from the end sums them up,
     * and threads each node onto its parent's list of children */
    var first = new Int32Array(nn + 1).fill(-1), next = new Int32Array(nn);
    for (var k = nn - 1; k >= 0; k--) {
      var p = PROF.nodeParent[k];
      if (!(p >= 0 && p < k)) p = nn; /* outermost: the top's */
      if (p < nn) val[p] += val[k];
      if (val[k] > 0) {
        next[k] = first[p];
        first[p] = k;
      }
    }
    function node(k, parent) {
      return { k: k, frame: PROF.nodeFrame[k], value: val[k], parent: parent, depth: parent.depth + 1 };
    }
    var top = { name: "all", k: nn, value: total, parent: null, depth: 0 };
    FLAME_KIDS = function (n) {
      if (!n.children) {
        n.children = [];
        for (var c = n.k === undefined ? -1 : first[n.k]; c >= 0; c = next[c]) n.children.push(node(c, n));
        if (n === top && nat > 0) n.children.push({ name: "<native>", value: nat, parent: top, depth: 1 });
        n.children.sort(function (a, b) { return b.value - a.value; });
      }
      return n.children;
    };
    return top;
  }
  var FLAME_KIDS = function (n) { return n.children; };
  /* The JSON's own tree (a report without a profile). */
  function jsonTree() {
    function build(o, parent, depth) {
      var n = { name: str(o, "name", "?"), value: num(o, "value"), parent: parent, depth: depth, children: [] };
      if (depth < 256) arr(o, "children").forEach(function (c) { if (num(c, "value") > 0) n.children.push(build(c, n, depth + 1)); });
      n.children.sort(function (a, b) { return b.value - a.value; });
      return n;
    }
    return build(obj(REP, "flame") || {}, null, 0);
  }
  /* Names are made when a frame is drawn or searched: most never are. */
  function nodeName(n) {
    if (n.name === undefined) n.name = frameName(n.frame);
    return n.name;
  }
  function flameSection(main) {
    var s = section(main, "flame", "Flame graph");
    var info = note(s, "");
    var bar = add(s, el("div", "fg-bar"));
    var reset = add(bar, el("button", null, "Reset zoom"));
    reset.type = "button";
    reset.id = "fg-reset";
    var search = add(bar, el("input"));
    search.type = "search";
    search.id = "fg-search";
    search.placeholder = "Highlight frames matching…";
    search.setAttribute("aria-label", "highlight frames");
    var match = add(bar, el("span"));
    match.id = "fg-match";
    var host = add(s, el("div", "fg"));
    host.id = "fg";
    var ROW = 18, top = null, focus = null, query = "";
    var svgEl = add(host, svg("svg", { role: "img", "aria-label": "flame graph" }));
    /* the depth drawn under n: frames of a pixel or more */
    function deepest(n, w) {
      var d = 0;
      var c = FLAME_KIDS(n);
      for (var i = 0; i < c.length; i++) {
        var cw = w * c[i].value / (n.value || 1);
        if (cw >= 1) d = Math.max(d, 1 + deepest(c[i], cw));
      }
      return d;
    }
    function draw() {
      /* the section's inner width, without asking the browser for a layout */
      var width = Math.max(400, Math.min(window.innerWidth || 1180, 1180) - 48 - 46);
      svgEl.textContent = "";
      if (!top.value) { info.textContent = "No allocations to draw."; svgEl.setAttribute("height", 0); return; }
      var rows = focus.depth + 1 + Math.min(deepest(focus, width), 256);
      svgEl.setAttribute("viewBox", "0 0 " + width + " " + rows * ROW);
      svgEl.setAttribute("height", rows * ROW);
      function box(n, x, w, dim) {
        var g = svg("g", {});
        var hit = query && n.depth > 0 && nodeName(n).toLowerCase().indexOf(query) >= 0;
        if (dim) g.setAttribute("class", "dim");
        if (hit) g.setAttribute("class", "hit");
        add(g, svg("rect", { x: x, y: n.depth * ROW, width: Math.max(w, 0.5), height: ROW - 1,
          fill: n.depth === 0 ? "hsl(210, 20%, 80%)" : frameColor(nodeName(n)), rx: 2 }));
        var chars = Math.floor((w - 8) / 7);
        if (chars >= 3) {
          var label = n.depth === 0 ? "all (" + bytes(n.value) + ")" : nodeName(n);
          add(g, svg("text", { x: x + 4, y: n.depth * ROW + 13 })).textContent =
            label.length > chars ? label.slice(0, chars - 1) + "…" : label;
        }
        g.mtNode = n;
        svgEl.appendChild(g);
      }
      for (var anc = focus.parent; anc; anc = anc.parent) box(anc, 0, width, true);
      (function lay(n, x, w) {
        box(n, x, w, false);
        var cx = x;
        FLAME_KIDS(n).forEach(function (c) {
          var cw = w * c.value / (n.value || 1);
          if (cw >= 1) lay(c, cx, cw); /* a frame narrower than a pixel is not drawn */
          cx += cw;
        });
      })(focus, 0, width);
      if (query) {
        var matched = 0;
        (function walk(n) {
          if (n.depth > 0 && nodeName(n).toLowerCase().indexOf(query) >= 0) { matched += n.value; return; }
          FLAME_KIDS(n).forEach(walk);
        })(top);
        match.textContent = "matched " + bytes(matched) + " (" + pct(matched, top.value) + ")";
      } else {
        match.textContent = "";
      }
    }
    function rebuild() {
      top = PROF ? flameTree() : jsonTree();
      focus = top;
    }
    function redraw() {
      info.textContent = "Bytes allocated by stack (" + bytes(top.value) + " in all" +
        (VIEW.win ? ", in the time window" : "") + "), callers above their callees. Click a frame to zoom in, hover for its figures.";
      draw();
    }
    svgEl.addEventListener("mousemove", function (ev) {
      var n = ev.target.parentNode && ev.target.parentNode.mtNode;
      if (!n) { hideTip(); return; }
      var rows = [{ name: "bytes", value: bytes(n.value) }, { name: "of all", value: pct(n.value, top.value) }];
      if (focus !== top && focus !== n) rows.push({ name: "of the zoomed frame", value: pct(n.value, focus.value) });
      var self = n.value;
      FLAME_KIDS(n).forEach(function (c) { self -= c.value; });
      if (FLAME_KIDS(n).length) rows.push({ name: "in this frame itself", value: bytes(Math.max(self, 0)) });
      showTip(ev, n.depth === 0 ? "all" : nodeName(n), rows);
    });
    svgEl.addEventListener("mouseleave", hideTip);
    svgEl.addEventListener("click", function (ev) {
      var n = ev.target.parentNode && ev.target.parentNode.mtNode;
      if (n) { focus = n; draw(); }
    });
    reset.addEventListener("click", function () { focus = top; draw(); });
    search.addEventListener("input", function () { query = search.value.trim().toLowerCase(); draw(); });
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) clearTimeout(pending);
      pending = setTimeout(draw, 100);
    });
    if (PROF) listeners.push(rebuild, redraw); /* the tree and its drawing, a task each */
    else { rebuild(); redraw(); }
    FLAME.total = function () { return top.value; };
  }
  var FLAME = {};

  function footer(body) {
    var f = add(body, el("footer", null, "Generated by memtrace " + str(obj(REP, "process"), "version", "") +
      " from a report of schema version " + num(REP, "schema_version") + ". Sizes in KiB, MiB, GiB (powers of 1024)."));
    return f;
  }

  function init() {
    var body = document.body, main;
    inTurn([load].concat(timelineTasks(), [
      function () {
        MARKS = steps();
        CHART_MARKS = MARKS.filter(function (m) { return !m.first; });
      },
      function () { PROF = profile(); },
      function () { if (PROF) profileStacks(PROF); },
      function () { if (PROF) profileCells(PROF); },
      function () {
        header(body);
        intro(body);
        nav(body, { summary: 1, script: arr(REP, "script_lines").length, heap: 1, memory: arr(obj(REP, "timeline"), "samples").length, pools: PY, sizes: 1, lists: PY, sites: 1, flame: 1,
          leaks: PROF ? PROF.n > 0 : arr(REP, "leaks").length,
          temporary: PROF ? PROF.n > 0 : arr(REP, "temporary_sites").length, steps: MARKS.length });
        main = add(body, el("main"));
        summary(main);
      },
      function () { scriptSection(main); },
      function () { heapSection(main); },
      function () { memorySection(main); },
      function () {
        if (PY) poolsSection(main);
        else note(add(main, el("section", "slim")), "Not a Python process: no pymalloc arenas, pools or list buffers to show.");
      },
      function () { sizesSection(main); },
      function () { if (PY) listsSection(main); },
      function () { siteSections(main); },
      function () { stepsSection(main); },
      function () {
        flameSection(main);
        footer(body);
        body.appendChild(tip);
      },
    ]), function () {
      /* what a user can do, for scripts and tests */
      window.memtrace = {
        setWindow: setWindow,
        window: function () { return VIEW.win; },
        windowPeak: function () { return VIEW.win ? VIEW.win.peak : num(obj(obj(REP, "summary"), "heap_peak"), "bytes"); },
        sort: function (table, how) { TABLES[table].sort(how); },
        group: function (how) { VIEW.group = how; document.getElementById("view-group").value = how; changed(); },
        flameTotal: function () { return FLAME.total(); },
      };
      inTurn(listeners, function () {
        if (root.getAttribute("data-memtrace") !== "error") root.setAttribute("data-memtrace", "ok");
      });
    });
  }
  /* The three tables of sites: from the profile, or from the JSON's lists. */
  function siteSections(main) {
    var siteNote = "Where memory was allocated: the innermost Python line for PyMem and PyObject " +
      "allocations, <native> for the rest (or, with native stacks, the innermost frame outside the runtime).";
    if (PROF) {
      controls(main);
      sitesTable(main, "sites", "Allocation sites", "peak", siteNote + " By bytes live at the heap peak.",
        function (r) { return r.allocs > 0 || r.peak > 0 || r.leak > 0; });
      sitesTable(main, "leaks", "Live at exit", "leaked", "Sites whose blocks were never freed (in a " +
        "window: still live at its end), by bytes still live.", function (r) { return r.leak > 0; });
      sitesTable(main, "temporary", "Temporary allocations", "temporary", "Allocations freed again by the " +
        "same thread before it allocated anything else (heaptrack's definition).", function (r) { return r.temp > 0; });
    } else {
      plainSites(main, "sites", "Allocation sites", "sites", siteNote);
      plainSites(main, "leaks", "Live at exit", "leaks", "Sites whose blocks were never freed, by bytes still live.");
      plainSites(main, "temporary", "Temporary allocations", "temporary_sites", "Allocations freed again by the " +
        "same thread before it allocated anything else (heaptrack's definition).");
    }
  }
  /* ---- memtrace diff's page: the diff object (docs/report-schema.md) ---- */
  var TOTALS = [["heap_peak", "Heap peak", bytes], ["live_at_exit", "Live at exit", bytes],
    ["allocs", "Allocations", count], ["bytes", "Bytes allocated", bytes],
    ["leaked", "Leaked", bytes], ["temporary_allocs", "Temporary allocations", count]];
  /* a site's figures: key, column, format, what its change is */
  var SITE_CHANGES = [["bytes", "Bytes", bytes, "change of the bytes allocated"],
    ["peak_bytes", "At peak", bytes, "change of the bytes live at the heap peak"],
    ["leaked_bytes", "Leaked", bytes, "change of the bytes live at exit"],
    ["allocs", "Allocations", count, "change of the allocations"],
    ["temporary_allocs", "Temporary", count, "change of the temporary allocations"]];
  function signed(fmt) { return fmt === bytes ? sbytes : scount; }
  /* "+12.50%" of a change {base, new, delta}; "new" when there was none */
  function changePct(c) {
    if (!(num(c, "base") > 0)) return num(c, "new") > 0 ? "new" : "";
    return (num(c, "delta") > 0 ? "+" : num(c, "delta") < 0 ? "-" : "") + pct(Math.abs(num(c, "delta")), num(c, "base"));
  }
  /* A column of the changes changeOf(row), in the format fmtOf(row):
   * sorted by their delta, each cell titled base -> new. */
  function changeCol(head, tipText, fmtOf, changeOf) {
    return { head: head, num: true, tip: tipText, key: function (r) { return num(changeOf(r), "delta"); },
      fmt: function (v, r, td) {
        var c = changeOf(r), d = num(c, "delta"), fmt = fmtOf(r);
        td.title = fmt(num(c, "base")) + " → " + fmt(num(c, "new"));
        if (d) td.classList.add(d > 0 ? "up" : "down");
        return signed(fmt)(d);
      } };
  }

  function diffHeader(body, D) {
    var base = obj(D, "base") || {}, now = obj(D, "new") || {};
    var h = add(body, el("header"));
    add(h, el("div", "brand", "memtrace diff"));
    var title = str(base, "trace", "?") + " → " + str(now, "trace", "?");
    add(h, el("h1", "cmd", title));
    document.title = "memtrace diff: " + title;
    var meta = metaList(h);
    [["base", base], ["new", now]].forEach(function (x) {
      var run = x[1];
      meta(x[0], str(run, "exe", "?") + (typeof run.pid === "number" ? " (pid " + run.pid + ")" : "") + ": " +
        count(num(run, "events")) + " events in " + time(num(run, "duration_us")));
    });
    meta("sites matched by", str(D, "by", "?"));
    verdict(h, D);
  }
  /* The --fail-on limits: whether the new run passed, then each limit. */
  function verdict(h, D) {
    var limits = arr(D, "fail_on");
    if (!limits.length) return;
    var over = limits.filter(function (l) { return l && l.exceeded === true; }).length;
    var v = add(h, el("div", "verdict " + (over ? "fail" : "pass")));
    v.id = "verdict";
    add(v, el("b", null, over ? "Failed: " + over + " of " + limits.length + " limits (--fail-on) exceeded"
      : "Passed: within every limit (--fail-on)"));
    var ul = add(v, el("ul"));
    limits.forEach(function (l) {
      var fmt = str(l, "metric", "") === "allocs" ? count : bytes, exceeded = !!l && l.exceeded === true;
      var li = add(ul, el("li", exceeded ? "over" : null));
      li.setAttribute("data-exceeded", exceeded);
      add(li, el("code", null, str(l, "limit", "?")));
      li.appendChild(document.createTextNode(" " + fmt(num(l, "base")) + " → " + fmt(num(l, "new")) + " (" +
        (typeof (l && l.percent) === "number" ? changePct(l) : "no base figure") + "): " +
        (exceeded ? "exceeded" : "within the limit")));
    });
  }
  function diffSummary(main, D) {
    var s = section(main, "summary", "Totals"), totals = obj(D, "totals");
    if (D.identical === true) note(s, "No differences: the two runs have the same figures.");
    var card = cardList(s, "c3");
    TOTALS.forEach(function (t) {
      var c = obj(totals, t[0]), d = num(c, "delta");
      var e = card(d > 0 ? "warm" : d < 0 ? "good" : null, t[1], signed(t[2])(d),
        t[2](num(c, "base")) + " → " + t[2](num(c, "new")) + (changePct(c) ? " · " + changePct(c) : ""));
      e.setAttribute("data-total", t[0]);
      e.setAttribute("data-v", d);
    });
  }
  function diffSites(main, D) {
    var sites = arr(D, "sites"), by = str(D, "by", "line");
    var s = section(main, "sites", "Sites that changed");
    note(s, "Sites of the two runs match by " + (by === "line" ? "file, function and line" : by) +
      " and domain (native frames by their function's name). Largest change first; a click on a column " +
      "sorts by its change, growth first, then drops first.");
    if (!sites.length) { add(s, el("p", "empty", "None.")); return; }
    var cols = [
      { head: "Site", key: function (r) { return str(r, "file", "") + ":" + num(r, "line") + " " + str(r, "function", ""); },
        fmt: function (v, r, td) {
          whereCell(td, { function: by === "file" ? "" : str(r, "function", ""), file: str(r, "file", "?"),
            line: by === "line" ? num(r, "line") : 0 });
        } },
      { head: "Domain", cls: "dom", key: function (r) { return str(r, "domain", "?"); },
        fmt: function (v, r) { return str(r, "domain", "?"); } },
    ];
    SITE_CHANGES.forEach(function (c) {
      cols.push(changeCol(c[1], c[3], function () { return c[2]; }, function (r) { return obj(r, c[0]); }));
    });
    table(s, cols, sites).classList.add("diff-sites");
  }
  /* Every changed figure of the domains, the size classes and the arenas. */
  function diffRest(main, D) {
    var rows = [];
    function changes(what, o) {
      Object.keys(o || {}).forEach(function (k) {
        if (obj(o, k) && !Array.isArray(o[k]) && num(o[k], "delta") !== 0) rows.push({ what: what, figure: k, c: o[k] });
      });
    }
    var doms = obj(D, "domains") || {};
    Object.keys(doms).forEach(function (d) { changes("domain " + d, obj(doms, d)); });
    arr(D, "size_classes").forEach(function (c) { changes("size class " + count(num(c, "size")), c); });
    changes("arenas and pools", obj(D, "arenas"));
    if (!rows.length) return;
    var s = section(main, "more", "Domains, size classes, arenas");
    function fmtOf(r) { return /bytes/.test(r.figure) ? bytes : count; }
    function side(head, k) {
      return { head: head, num: true, key: function (r) { return num(r.c, k); },
        fmt: function (v, r) { return fmtOf(r)(num(r.c, k)); } };
    }
    table(s, [{ head: "What", field: "what" }, { head: "Figure", field: "figure" }, side("Base", "base"),
      side("New", "new"), changeCol("Change", "new - base", fmtOf, function (r) { return r.c; })], rows);
  }
  function diffPage() {
    load();
    var D = obj(DATA, "diff") || {}, body = document.body;
    diffHeader(body, D);
    var main = add(body, el("main"));
    diffSummary(main, D);
    diffSites(main, D);
    diffRest(main, D);
    add(body, el("footer", null, "Generated by memtrace from a diff of schema version " + num(D, "schema_version") +
      ". Sizes in KiB, MiB, GiB (powers of 1024)."));
    root.setAttribute("data-memtrace", "ok");
  }

  /* memtrace diff's page holds {"diff": ...}, a report's {"report": ...} */
  var probe = document.getElementById("mt-data");
  try {
    if (probe && probe.textContent.indexOf('{"diff":') === 0) diffPage();
    else init();
  } catch (e) {
    failed(e && e.message ? e.message : String(e));
    throw e;
  }
})();
