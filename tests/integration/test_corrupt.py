"""`memtrace report` on damaged traces: truncated, bit-flipped, foreign.

A real multi-block trace is made once; each test damages a copy.  Exit
statuses: 0 for a trace cut at a block boundary (a killed process), 3 for
one whose last block is torn (the report is still printed), 2 for anything
corrupt or foreign.  Whatever the damage, the reporter must not crash."""

import random
import shutil
import struct
import tempfile
import unittest
from pathlib import Path

from harness import (BLOCK_EVENTS, BLOCK_FOOTER, BLOCK_HEADER, BLOCK_HEADER_LEN,
                     PREAMBLE_LEN, REPORT_CORRUPT, REPORT_OK, REPORT_TORN, STORM,
                     TracerTestCase, report, run_traced, trace_blocks)


class Damaged(TracerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workdir = tempfile.TemporaryDirectory(prefix="memtrace-corrupt.")
        cls.addClassCleanup(cls.workdir.cleanup)
        # several event blocks: MEMTRACE_FLUSH_MS=1 makes the writer flush
        # often even if the encoding is compact enough for one block
        run = run_traced([str(STORM), "2", "400000"], cls.workdir.name,
                         env={"MEMTRACE_FLUSH_MS": "1"})
        assert run.returncode == 0 and len(run.traces) == 1, run
        cls.trace = run.traces[0]
        cls.data = cls.trace.read_bytes()
        cls.blocks = trace_blocks(cls.trace)
        types = [b[1] for b in cls.blocks]
        assert types[0] == BLOCK_HEADER and types[-1] == BLOCK_FOOTER, types
        assert types.count(BLOCK_EVENTS) >= 2, "want several event blocks: %s" % types
        # the header, the first two and the last event blocks, the footer:
        # damage to each kind is tried without a report run per block
        cls.sample = cls.blocks[:3] + cls.blocks[-2:]

    def damaged(self, data):
        path = self.tmp / "damaged.trace"
        path.write_bytes(data)
        return report(path)

    def assert_fails(self, data, statuses=(REPORT_CORRUPT,), what=""):
        rc, _, stderr = self.damaged(data)
        self.assertIn(rc, statuses, "%s: exit %d, stderr: %s" % (what, rc, stderr))
        self.assertTrue(stderr.strip(), "%s: no message on stderr" % what)

    def test_intact(self):
        rc, rep, stderr = self.damaged(self.data)
        self.assertEqual(rc, REPORT_OK, stderr)
        self.assertTrue(rep["trace"]["complete"])

    def test_cut_at_block_boundaries(self):
        # after the header block and after each events block: what a killed
        # process leaves
        for off, btype, length in self.sample[:-1]:
            with self.subTest(after_block_at=off):
                rc, rep, stderr = self.damaged(self.data[:off + length])
                self.assertEqual(rc, REPORT_OK, stderr)
                self.assertFalse(rep["trace"]["complete"])

    def test_cut_inside_a_block(self):
        offsets = set()
        for off, _, length in self.sample:
            offsets.update((off + 1, off + BLOCK_HEADER_LEN - 1, off + BLOCK_HEADER_LEN,
                            off + length // 2, off + length - 1))
        offsets -= {b[0] for b in self.blocks}  # those are boundaries
        for cut in sorted(offsets):
            if cut <= self.blocks[0][0] + self.blocks[0][2]:
                continue  # inside the header block: nothing to report yet
            with self.subTest(cut=cut):
                rc, rep, stderr = self.damaged(self.data[:cut])
                self.assertEqual(rc, REPORT_TORN, stderr)
                self.assertTrue(stderr.strip(), "no message on stderr")
                self.assertIsNotNone(rep, "a torn trace is still reported")
                self.assertFalse(rep["trace"]["complete"])

    def test_cut_inside_preamble_or_header(self):
        header_end = self.blocks[0][0] + self.blocks[0][2]
        for cut in (0, 1, 8, PREAMBLE_LEN - 1, PREAMBLE_LEN + 5, header_end - 1):
            with self.subTest(cut=cut):
                self.assert_fails(self.data[:cut], (REPORT_CORRUPT, REPORT_TORN),
                                  "cut at %d" % cut)

    def flipped(self, offset, mask=0xFF):
        data = bytearray(self.data)
        data[offset] ^= mask
        return bytes(data)

    def test_flipped_magic(self):
        self.assert_fails(self.flipped(0), what="file magic")
        second_block = self.blocks[1][0]
        self.assert_fails(self.flipped(second_block), (REPORT_CORRUPT, REPORT_TORN),
                          "block magic")

    def test_flipped_payload(self):
        # in the middle of each block's compressed frame: the checksum or the
        # decoder must catch it
        for off, btype, length in self.sample:
            with self.subTest(block_type=btype, at=off):
                payload_middle = off + BLOCK_HEADER_LEN + (length - BLOCK_HEADER_LEN) // 2
                self.assert_fails(self.flipped(payload_middle, 0x10),
                                  (REPORT_CORRUPT, REPORT_TORN), "block at %d" % off)

    def test_absurd_block_length(self):
        off = self.blocks[1][0]
        data = bytearray(self.data)
        struct.pack_into("<I", data, off + 8, 0xFFFFFFF0)
        self.assert_fails(bytes(data), (REPORT_CORRUPT, REPORT_TORN), "huge length")

    def test_newer_major_version(self):
        data = bytearray(self.data)
        struct.pack_into("<H", data, 8, 3)
        self.assert_fails(bytes(data), what="major version 3")

    def test_format_1(self):
        # format 1 is no longer read, and the message says which is
        data = bytearray(self.data)
        struct.pack_into("<HH", data, 8, 1, 1)
        self.assert_fails(bytes(data), what="format 1")
        _, _, stderr = self.damaged(bytes(data))
        self.assertIn("format 1 (1.1); this memtrace reads format 2", stderr)

    def test_foreign_files(self):
        self.assert_fails(b"", what="empty file")
        self.assert_fails(b"hello, world\n" * 10, what="text")
        self.assert_fails(Path(shutil.which("true")).read_bytes(), what="ELF")

    def test_missing_file(self):
        rc, _, stderr = report(self.tmp / "does-not-exist.trace")
        self.assertNotEqual(rc, 0)
        self.assertTrue(stderr.strip())

    def test_random_damage_never_crashes(self):
        rng = random.Random(1234)
        for i in range(60):
            data = bytearray(self.data)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if i % 3 == 0:
                data = data[:rng.randrange(len(data))]
            with self.subTest(case=i):
                rc, _, stderr = self.damaged(bytes(data))
                self.assertIn(rc, (REPORT_OK, REPORT_CORRUPT, REPORT_TORN),
                              "exit %d (a signal if negative): %s" % (rc, stderr))


if __name__ == "__main__":
    unittest.main()
