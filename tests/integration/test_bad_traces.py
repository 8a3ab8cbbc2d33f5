"""`memtrace report` on the known-bad traces of bad_traces/: empty,
foreign, a future format version, cut short at every level, corrupt blocks,
malformed records and key/value lists, inconsistent records.

Each file's expected exit status is in bad_traces/expected.txt (made with
the files by fuzz/make_seeds: `make_seeds bad DIR`); every output format
must give that status, print something on stderr when it is not 0, write a
complete report when there is one, and never trip a sanitizer.  The same
files seed the fuzz test (fuzz/run_fuzz.sh)."""

import gzip
import json
import subprocess
import unittest
from pathlib import Path

from harness import CLI, TIMEOUT, TracerTestCase

BAD = Path(__file__).resolve().parent / "bad_traces"
FORMATS = ("text", "json", "html", "folded", "pprof", "speedscope")
SANITIZERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def expected():
    cases = {}
    for line in (BAD / "expected.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, status = line.split()
            cases[name] = int(status)
    return cases


class BadTraces(TracerTestCase):

    def test_every_file_is_listed(self):
        self.assertEqual(sorted(p.name for p in BAD.glob("*.trace")), sorted(expected()))
        # the kinds of damage the corpus must hold
        for kind in ("empty", "foreign", "future_version", "cut_in", "bad_checksum",
                     "malformed_record"):
            self.assertTrue(any(kind in name for name in expected()), kind)

    def test_exit_status_in_every_format(self):
        for name, status in sorted(expected().items()):
            for fmt in FORMATS:
                with self.subTest(trace=name, format=fmt):
                    out = self.tmp / ("out." + fmt)
                    out.unlink(missing_ok=True)
                    proc = subprocess.run(
                        [str(CLI), "report", "--format", fmt, "-o", str(out), str(BAD / name)],
                        capture_output=True, text=True, timeout=TIMEOUT)
                    self.assertEqual(proc.returncode, status, proc.stderr)
                    for word in SANITIZERS:
                        self.assertNotIn(word, proc.stderr)
                    if status != 0:
                        self.assertTrue(proc.stderr.strip(), "no message on stderr")
                    if status in (0, 3) and fmt == "pprof":
                        self.assertEqual(gzip.decompress(out.read_bytes())[:1], b"\n")
                    elif status in (0, 3):
                        text = out.read_text(encoding="utf-8")
                        if fmt == "speedscope":
                            self.assertIn("profiles", json.loads(text))
                        elif fmt == "html":
                            self.assertTrue(text.rstrip().endswith("</html>"))
                        elif fmt != "folded":
                            self.assertTrue(text.strip())


if __name__ == "__main__":
    unittest.main()
