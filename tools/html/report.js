/* memtrace HTML report: embedded into the page by tools/html/embed.cmake.
 *
 * The page works without this script (charts and tables are drawn in C);
 * the script adds sortable tables, hover read-outs on the time charts and
 * the flame graph, from the JSON block #mt-data.  Strings from the trace
 * only ever reach the page through textContent.
 *
 * When everything is set up, <html data-memtrace> becomes "ok"; an error
 * makes it "error" and shows a banner, so a headless browser can tell. */
(function () {
  "use strict";
  var root = document.documentElement;
  var SVGNS = "http://www.w3.org/2000/svg";

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

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  /* ---- figures, as the C side formats them ---- */
  function bytes(v) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"], i = 0, a = Math.abs(v);
    while (a >= 1024 && i < u.length - 1) { a /= 1024; v /= 1024; i++; }
    if (i === 0) return Math.round(v) + " B";
    return (a < 9.995 ? v.toFixed(2) : a < 99.95 ? v.toFixed(1) : v.toFixed(0)) + " " + u[i];
  }
  function count(v) { return Math.round(v).toLocaleString("en-US"); }
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
  document.body.appendChild(tip);
  function showTip(ev, title, rows) {
    tip.textContent = "";
    if (title) tip.appendChild(el("div", "t", title));
    rows.forEach(function (r) {
      var line = el("div", "r"), name = el("span");
      if (r.color) {
        var sw = el("i");
        sw.style.background = r.color;
        name.appendChild(sw);
      }
      name.appendChild(document.createTextNode(r.name));
      line.appendChild(name);
      line.appendChild(el("b", null, r.value));
      tip.appendChild(line);
    });
    tip.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth - 8) x = Math.max(8, ev.clientX - w - 14);
    if (y + h > window.innerHeight - 8) y = Math.max(8, ev.clientY - h - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function hideTip() { tip.style.display = "none"; }

  /* ---- sortable tables ---- */
  var ROWS_SHOWN = 20;
  function limitRows(table) {
    var rows = table.tBodies[0].rows, btn = table.mtShowAll;
    if (rows.length <= ROWS_SHOWN + 5) return;
    for (var i = 0; i < rows.length; i++)
      rows[i].classList.toggle("hidden", !table.mtAll && i >= ROWS_SHOWN);
    if (!btn) {
      btn = table.mtShowAll = el("button", "showall");
      btn.type = "button";
      btn.addEventListener("click", function () {
        table.mtAll = !table.mtAll;
        limitRows(table);
      });
      table.parentNode.parentNode.insertBefore(btn, table.parentNode.nextSibling);
    }
    btn.textContent = table.mtAll ? "Show the first " + ROWS_SHOWN : "Show all " + rows.length + " rows";
  }
  function cellKey(row, col, numeric) {
    var c = row.cells[col];
    if (!c) return numeric ? -Infinity : "";
    if (numeric) {
      var v = parseFloat(c.getAttribute("data-v"));
      return isNaN(v) ? -Infinity : v;
    }
    return c.textContent.toLowerCase();
  }
  function sortBy(table, th, col) {
    var numeric = th.getAttribute("data-sort") === "num";
    var dir = th.getAttribute("aria-sort") === (numeric ? "descending" : "ascending")
      ? (numeric ? 1 : -1) : (numeric ? -1 : 1);
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r.mtIndex = i; });
    rows.sort(function (a, b) {
      var x = cellKey(a, col, numeric), y = cellKey(b, col, numeric);
      return x < y ? -dir : x > y ? dir : a.mtIndex - b.mtIndex;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    limitRows(table);
  }
  function setupTables() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      var ths = table.tHead ? table.tHead.rows[0].cells : [];
      Array.prototype.forEach.call(ths, function (th, col) {
        if (!th.hasAttribute("data-sort")) return;
        th.tabIndex = 0;
        th.addEventListener("click", function () { sortBy(table, th, col); });
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(table, th, col); }
        });
      });
      limitRows(table);
    });
  }

  /* ---- hover read-outs on the time charts ---- */
  var NAMES = { heap: "heap", malloc: "malloc", pymem_raw: "pymem_raw", pymem_mem: "pymem_mem",
    pymem_obj: "pymem_obj", arenas: "arenas in use", pools: "pools in use" };
  /* the memory chart's series, by the name of its data */
  var MEMORY_NAMES = { rss: "RSS", requested: "requested heap", glibc_held: "glibc held",
    arenas: "pymalloc arenas", mmap: "mmap domain" };
  function setupCharts(data) {
    document.querySelectorAll("svg[data-hover]").forEach(function (chart) {
      var which = chart.getAttribute("data-hover");
      var tl = data[which], names = which === "memory" ? MEMORY_NAMES : NAMES;
      if (!tl || !tl.time_us || !tl.time_us.length) return;
      var keys = chart.getAttribute("data-keys").split(",");
      var l = +chart.getAttribute("data-l"), r = +chart.getAttribute("data-r");
      var t = +chart.getAttribute("data-t"), b = +chart.getAttribute("data-b");
      var x0 = +chart.getAttribute("data-x0"), x1 = +chart.getAttribute("data-x1");
      var isBytes = chart.getAttribute("data-unit") === "bytes";
      /* the series are drawn last first, so that the first is on top */
      var colors = {}, paths = {};
      chart.querySelectorAll("path.line").forEach(function (p, i) {
        var k = keys[keys.length - 1 - i];
        colors[k] = p.getAttribute("stroke");
        paths[k] = p;
      });
      var cross = svg("line", { "class": "cross", y1: t, y2: b, x1: l, x2: l, visibility: "hidden" });
      chart.appendChild(cross);
      var dots = keys.map(function (k) {
        var d = svg("circle", { "class": "dot", r: 3.5, fill: colors[k] || "#333", visibility: "hidden" });
        chart.appendChild(d);
        return d;
      });
      chart.addEventListener("mousemove", function (ev) {
        var m = chart.getScreenCTM();
        if (!m) return;
        var pt = chart.createSVGPoint();
        pt.x = ev.clientX; pt.y = ev.clientY;
        var p = pt.matrixTransform(m.inverse());
        if (p.x < l - 4 || p.x > r + 4) { hide(); return; }
        var when = x0 + (Math.min(Math.max(p.x, l), r) - l) / (r - l) * (x1 - x0);
        var ts = tl.time_us, lo = 0, hi = ts.length - 1;
        while (lo < hi) {
          var mid = (lo + hi) >> 1;
          if (ts[mid] < when) lo = mid + 1; else hi = mid;
        }
        if (lo > 0 && when - ts[lo - 1] < ts[lo] - when) lo--;
        var x = l + (ts[lo] - x0) / ((x1 - x0) || 1) * (r - l);
        cross.setAttribute("x1", x);
        cross.setAttribute("x2", x);
        cross.setAttribute("visibility", "visible");
        var rows = keys.map(function (k, i) {
          var v = tl[k] ? tl[k][lo] : 0;
          var path = paths[k];
          dots[i].setAttribute("visibility", "hidden");
          if (path) {
            var y = pointY(path, lo);
            if (y !== null) {
              dots[i].setAttribute("cx", x);
              dots[i].setAttribute("cy", y);
              dots[i].setAttribute("visibility", "visible");
            }
          }
          return { name: names[k] || k, value: isBytes ? bytes(v) : count(v), color: colors[k] };
        });
        showTip(ev, time(ts[lo]), rows);
      });
      function hide() {
        cross.setAttribute("visibility", "hidden");
        dots.forEach(function (d) { d.setAttribute("visibility", "hidden"); });
        hideTip();
      }
      chart.addEventListener("mouseleave", hide);
    });
  }
  /* The y of the i-th vertex of a path "Mx,yLx,y...", cached per path. */
  function pointY(path, i) {
    if (!path.mtYs) {
      path.mtYs = path.getAttribute("d").slice(1).split("L").map(function (s) {
        return parseFloat(s.split(",")[1]);
      });
    }
    var y = path.mtYs[i];
    return typeof y === "number" && !isNaN(y) ? y : null;
  }

  /* ---- flame graph ---- */
  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return h;
  }
  function frameColor(name) {
    var h = hue(name);
    if (name.charAt(0) === "<" && name.indexOf("<native>") === 0)
      return "hsl(210, 14%, " + (72 + h % 10) + "%)";
    /* warm, as flame graphs are: red to yellow */
    return "hsl(" + (8 + h % 42) + ", " + (70 + (h >> 8) % 20) + "%, " + (62 + (h >> 16) % 12) + "%)";
  }
  function setupFlame(data) {
    var host = document.getElementById("fg");
    var tree = data.flame;
    if (!host || !tree) return;
    var ROW = 18, MAXDEPTH = 0;
    /* nodes: {name, value, children, parent, depth} */
    function build(a, parent, depth) {
      var n = { name: String(a[0]), value: +a[1] || 0, parent: parent, depth: depth, children: [] };
      if (depth > MAXDEPTH) MAXDEPTH = depth;
      (a[2] || []).forEach(function (c) { n.children.push(build(c, n, depth + 1)); });
      n.children.sort(function (x, y) { return y.value - x.value; });
      return n;
    }
    var top = build(tree, null, 0);
    var total = top.value || 1;
    var focus = top, query = "";
    var svgEl = svg("svg", { role: "img", "aria-label": "flame graph" });
    host.appendChild(svgEl);

    function draw() {
      var width = host.clientWidth || 1100;
      while (svgEl.firstChild) svgEl.removeChild(svgEl.firstChild);
      var depth = 0;
      for (var a = focus; a; a = a.parent) depth++;
      var rows = focus.depth + 1 + (function deepest(n) {
        var d = 0;
        n.children.forEach(function (c) { d = Math.max(d, 1 + deepest(c)); });
        return d;
      })(focus);
      svgEl.setAttribute("viewBox", "0 0 " + width + " " + rows * ROW);
      svgEl.setAttribute("height", rows * ROW);
      var matched = 0;
      function box(n, x, w, dim) {
        var g = svg("g", {});
        if (dim) g.setAttribute("class", "dim");
        var hit = query && n.depth > 0 && n.name.toLowerCase().indexOf(query) >= 0;
        if (hit) g.setAttribute("class", "hit");
        g.appendChild(svg("rect", { x: x, y: n.depth * ROW, width: Math.max(w, 0.5), height: ROW - 1,
          fill: n.depth === 0 ? "hsl(210, 20%, 80%)" : frameColor(n.name), rx: 2 }));
        var chars = Math.floor((w - 8) / 7);
        if (chars >= 3) {
          var label = n.depth === 0 ? "all (" + bytes(n.value) + ")" : n.name;
          var t = svg("text", { x: x + 4, y: n.depth * ROW + 13 });
          t.textContent = label.length > chars ? label.slice(0, chars - 1) + "…" : label;
          g.appendChild(t);
        }
        g.mtNode = n;
        svgEl.appendChild(g);
        return hit;
      }
      /* ancestors of the focus span the width, dimmed */
      for (var anc = focus.parent; anc; anc = anc.parent) box(anc, 0, width, true);
      (function lay(n, x, w) {
        if (box(n, x, w, false)) { matched += n.value; return; }
        var cx = x;
        n.children.forEach(function (c) {
          var cw = w * c.value / (n.value || 1);
          if (cw >= 0.4) lay(c, cx, cw);
          cx += cw;
        });
      })(focus, 0, width);
      /* matches outside the view count too */
      if (query) {
        matched = 0;
        (function count(n) {
          if (n.depth > 0 && n.name.toLowerCase().indexOf(query) >= 0) { matched += n.value; return; }
          n.children.forEach(count);
        })(top);
        document.getElementById("fg-match").textContent =
          "matched " + bytes(matched) + " (" + pct(matched, total) + ")";
      } else {
        document.getElementById("fg-match").textContent = "";
      }
    }
    svgEl.addEventListener("mousemove", function (ev) {
      var g = ev.target.parentNode, n = g && g.mtNode;
      if (!n) { hideTip(); return; }
      var rows = [{ name: "bytes", value: bytes(n.value) }, { name: "of all", value: pct(n.value, total) }];
      if (focus !== top && focus !== n) rows.push({ name: "of the zoomed frame", value: pct(n.value, focus.value) });
      var self = n.value;
      n.children.forEach(function (c) { self -= c.value; });
      if (n.children.length) rows.push({ name: "in this frame itself", value: bytes(Math.max(self, 0)) });
      showTip(ev, n.depth === 0 ? "all" : n.name, rows);
    });
    svgEl.addEventListener("mouseleave", hideTip);
    svgEl.addEventListener("click", function (ev) {
      var g = ev.target.parentNode, n = g && g.mtNode;
      if (!n) return;
      focus = n;
      draw();
    });
    document.getElementById("fg-reset").addEventListener("click", function () {
      focus = top;
      draw();
    });
    var search = document.getElementById("fg-search");
    search.addEventListener("input", function () {
      query = search.value.trim().toLowerCase();
      draw();
    });
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) clearTimeout(pending);
      pending = setTimeout(draw, 100);
    });
    draw();
  }

  function init() {
    var block = document.getElementById("mt-data");
    var data = block ? JSON.parse(block.textContent) : {};
    setupTables();
    setupCharts(data);
    setupFlame(data);
    if (root.getAttribute("data-memtrace") !== "error") root.setAttribute("data-memtrace", "ok");
  }
  try {
    init();
  } catch (e) {
    failed(e && e.message ? e.message : String(e));
    throw e;
  }
})();
