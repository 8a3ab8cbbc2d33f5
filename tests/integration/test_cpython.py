"""CPython's own regression tests give the same results with and without the
tracer.  They come with the interpreter on PATH (pyenv ships the `test`
package; Debian's /usr/bin/python3 does not), and exercise exactly what the
shim touches: lists, dicts, the garbage collector, tracemalloc alongside us,
threads, subprocesses and ctypes.
"""

import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import LIB, TracerTestCase, clean_env
from test_pyshim import PYTHONS

MODULES = ["test_list", "test_dict", "test_gc", "test_tracemalloc", "test_threading",
           "test_subprocess", "test_ctypes"]
TIMEOUT = 900


def with_test_package():
    """Debian's interpreter has regrtest but not the tests themselves."""
    for python in PYTHONS:
        probe = subprocess.run([python, "-c", "import test.test_list"],
                               capture_output=True, env=clean_env())
        if probe.returncode == 0:
            return python
    return None


PYTHON = with_test_package()


def outcomes(xml_path):
    """{test id: outcome} from regrtest's JUnit XML."""
    result = {}
    for case in ET.parse(xml_path).iter("testcase"):
        test_id = case.get("name")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        result[test_id] = kinds[0] if kinds else "ok"
    return result


@unittest.skipUnless(PYTHON, "no interpreter with CPython's test package")
class RegressionTests(TracerTestCase):

    def run_suite(self, traced):
        xml = self.tmp / ("traced.xml" if traced else "plain.xml")
        env = {}
        if traced:
            traces = Path(tempfile.mkdtemp(prefix="traces.", dir=self.tmp))
            env = {"LD_PRELOAD": str(LIB), "MEMTRACE_QUIET": "1",
                   "MEMTRACE_OUTPUT": str(traces / "%p.trace")}
        subprocess.run([PYTHON, "-m", "test", "-j2", "--junit-xml", str(xml), *MODULES],
                       env=clean_env(**env), cwd=self.tmp, capture_output=True,
                       timeout=TIMEOUT)
        return outcomes(xml)

    def test_same_results(self):
        plain = self.run_suite(traced=False)
        traced = self.run_suite(traced=True)
        self.assertGreater(len(plain), 1000, "too few tests ran")
        self.assertEqual(sorted(traced), sorted(plain), "not the same tests ran")
        differ = {t: (plain[t], traced[t]) for t in plain if plain[t] != traced[t]}
        self.assertEqual(differ, {}, "outcomes (untraced, traced) that differ")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
