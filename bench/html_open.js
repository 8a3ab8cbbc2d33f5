// html_open.js [--cpu] CHROMIUM PAGE... - opens each page in headless
// Chromium through the DevTools protocol and prints, one JSON line per
// page, what the page's probes (bench/html_page.py) recorded once it said
// it was drawn: {"state", "drawn_ms", "long_ms": [...]}, and the CPU time
// the renderer's main thread spent from navigation to then ("cpu_ms",
// Chromium's ThreadTime metric: unlike wall times, it hardly moves when
// other work loads the machine); with --cpu also
// "self_ms", the script's functions by their own time (V8's sampling
// profiler).  Node 20 with --experimental-websocket.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const args = process.argv.slice(2);
const cpu = args[0] === "--cpu" && args.shift();
const [chromium, ...pages] = args;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function port(dir) {
  for (let i = 0; i < 600; i++) {
    try {
      return fs.readFileSync(path.join(dir, "DevToolsActivePort"), "utf8").split("\n")[0];
    } catch (e) {
      await sleep(100);
    }
  }
  throw new Error("chromium did not start");
}

function client(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const waiting = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  };
  const opened = new Promise((r) => (ws.onopen = r));
  return {
    opened,
    close: () => ws.close(),
    send(method, params) {
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params: params || {} }));
      return new Promise((r) => waiting.set(n, r));
    },
  };
}

/* The renderer main thread's CPU time so far, in ms. */
async function threadTime(c) {
  const m = (await c.send("Performance.getMetrics")).result.metrics;
  return 1000 * m.find((x) => x.name === "ThreadTime").value;
}

/* The 15 functions with the most time of their own, in ms. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const key = (f.functionName || "(anonymous)") + ":" + (f.lineNumber + 1);
    self.set(key, (self.get(key) || 0) + (dt[i] || 0) / 1000);
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => [k, Math.round(v)]);
}

async function openOne(page) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "memtrace-cdp."));
  const proc = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--window-size=1400,3000", "--remote-debugging-port=0",
    "--user-data-dir=" + dir, "about:blank"], { stdio: "ignore" });
  try {
    const p = await port(dir);
    let targets = null;
    for (let i = 0; !targets; i++) {
      try {
        targets = await (await fetch(`http://127.0.0.1:${p}/json/list`)).json();
      } catch (e) {
        if (i === 100) throw e;
        await sleep(100); /* listening a moment after it says where */
      }
    }
    const target = targets.find((t) => t.type === "page");
    const c = client(target.webSocketDebuggerUrl);
    await c.opened;
    await c.send("Page.enable");
    await c.send("Performance.enable");
    const cpu0 = await threadTime(c);
    if (cpu) {
      await c.send("Profiler.enable");
      await c.send("Profiler.setSamplingInterval", { interval: 200 });
      await c.send("Profiler.start");
    }
    await c.send("Page.navigate", { url: "file://" + path.resolve(page) });
    const t0 = Date.now();
    for (;;) {
      const r = await c.send("Runtime.evaluate", { expression:
        "JSON.stringify([document.documentElement.getAttribute('data-memtrace'), " +
        "document.documentElement.getAttribute('data-drawn-ms'), window.mtLong || []])",
        returnByValue: true });
      const v = r.result && r.result.result && r.result.result.value;
      const [state, drawn, long] = v ? JSON.parse(v) : [null, null, []];
      if (drawn || state === "error" || Date.now() - t0 > 600000) {
        const out = { state, drawn_ms: drawn === null ? null : +drawn, long_ms: long,
          cpu_ms: Math.round((await threadTime(c)) - cpu0) };
        if (cpu) out.self_ms = selfTimes((await c.send("Profiler.stop")).result.profile);
        c.close();
        return out;
      }
      await sleep(50);
    }
  } finally {
    const exited = new Promise((r) => proc.on("exit", r));
    proc.kill();
    await exited;
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
    } catch (e) {
      /* chromium's helpers may still be writing their profile: left to /tmp */
    }
  }
}

(async () => {
  for (const page of pages) console.log(JSON.stringify(await openOne(page)));
})().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
