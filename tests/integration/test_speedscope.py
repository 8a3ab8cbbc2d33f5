"""The speedscope export opened by speedscope itself, in headless Chromium.

speedscope comes from the npm registry at the version of
tests/integration/npm/package-lock.json, installed by
`scripts/install-deps.sh --test` into ~/.cache/memtrace/npm (or
$MEMTRACE_NPM_DIR).  The test loads the export the way speedscope's own
command does (a script calling speedscope.loadFileFromBase64, named in the
page's #localProfilePath), offline, in the sandwich view, and reads the page:

  * every_call.c with native stacks, `--at exit`: the three profiles are
    listed with their totals as speedscope computed them from our samples:
    bytes allocated and allocations are the program's own counts, bytes
    live at exit its 600 leaked bytes; the table shows main with all of it;
  * no error on the console.

Skipped (exit 77 when run alone) without Chromium or speedscope."""

import base64
import html
import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

from harness import CHROMIUM, CLI, TIMEOUT, TracerTestCase, parse_expect, prog, run_chromium

NPM_DIR = Path(os.environ.get("MEMTRACE_NPM_DIR") or
               Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") /
               "memtrace" / "npm")
SPEEDSCOPE = NPM_DIR / "node_modules" / "speedscope" / "dist" / "release"

# Appended to a copy of speedscope's page: waits for the profile's table,
# then writes what the page shows into <html data-probe>, as JSON.
PROBE = """
<script>
(function () {
  var tries = 0;
  function cells(row) {
    return Array.prototype.map.call(row.cells, function (c) { return c.textContent; });
  }
  function look() {
    var tables = document.querySelectorAll("table");
    if (tables.length < 2 && ++tries < 400) {
      setTimeout(look, 50);
      return;
    }
    var out = {title: document.title, text: document.body.innerText.slice(0, 400), tables: []};
    Array.prototype.forEach.call(tables, function (t) {
      out.tables.push(Array.prototype.map.call(t.rows, cells));
    });
    document.documentElement.setAttribute("data-probe", JSON.stringify(out));
  }
  look();
})();
</script>
"""


def speedscope_bytes(v):
    """A byte count as speedscope's ByteFormatter shows it."""
    if v < 1024:
        return "%d B" % v
    for unit in ("KB", "MB", "GB"):
        v /= 1024
        if v < 1024 or unit == "GB":
            return "%.2f %s" % (v, unit)


@unittest.skipIf(CHROMIUM is None, "chromium is not installed (Debian package chromium)")
@unittest.skipIf(not (SPEEDSCOPE / "index.html").exists(),
                 "speedscope is not installed (scripts/install-deps.sh --test)")
class Speedscope(TracerTestCase):

    def open_in_speedscope(self, profile):
        """What speedscope's page shows once it has loaded profile."""
        loader = self.tmp / "profile.js"
        loader.write_text("speedscope.loadFileFromBase64(%s, %s)" % (
            json.dumps(profile.name), json.dumps(base64.b64encode(profile.read_bytes()).decode())))
        page = self.tmp / "speedscope.html"
        index = (SPEEDSCOPE / "index.html").read_text(encoding="utf-8")
        page.write_text(index.replace("<head>", '<head><base href="%s/">' % SPEEDSCOPE.as_uri())
                        .replace("</body>", PROBE + "</body>"), encoding="utf-8")
        url = "%s#localProfilePath=%s&view=sandwich" % (page.as_uri(), loader)
        proc = run_chromium(url, self.tmp, "--dump-dom", "--window-size=1400,2000",
                            "--virtual-time-budget=30000")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        errors = [l for l in proc.stderr.splitlines()
                  if "Uncaught" in l or ("CONSOLE" in l and ":ERROR:" in l)]
        self.assertEqual(errors, [], "console errors")
        m = re.search(r'data-probe="([^"]*)"', proc.stdout)
        self.assertIsNotNone(m, "the probe did not run")
        return json.loads(html.unescape(m.group(1)))

    def test_totals(self):
        run = self.run_traced_ok([prog("every_call")], env={"MEMTRACE_NATIVE": "1"})
        expect = parse_expect(run.stdout)["every_call"]
        profile = self.tmp / "every_call.speedscope.json"
        proc = subprocess.run([str(CLI), "report", "--format", "speedscope", "--at", "exit",
                               "-o", str(profile), str(run.traces[0])],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        seen = self.open_in_speedscope(profile)
        # the profile opened: its name and the first of three profiles
        self.assertIn("every_call (pid %d)" % run.pid, seen["title"])
        self.assertIn("bytes allocated (1/3)", seen["text"])
        # speedscope's own totals of each profile
        profiles = {row[1]: row[2] for table in seen["tables"] for row in table
                    if len(row) == 3 and row[0].isdigit()}
        allocs = expect["allocs"] + expect["reallocs"]
        self.assertEqual(profiles, {
            "bytes allocated": speedscope_bytes(expect["bytes"]),
            "allocations": "{:,}".format(allocs),
            "bytes live at exit": speedscope_bytes(expect["live_bytes"]),
        })
        # the sandwich view: main holds every byte
        rows = {row[2]: row[0] for table in seen["tables"] for row in table
                if len(row) == 3 and not row[0].isdigit()}
        self.assertEqual(rows["main"], speedscope_bytes(expect["bytes"]) + " (100%)")


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.testsRun and len(result.skipped) == result.testsRun else 0)
