/*
 * writer.h - the background thread that merges the rings, encodes and
 * compresses the events and writes the trace file.
 */
#ifndef MEMTRACE_WRITER_H
#define MEMTRACE_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* Writes the preamble and the header block (a key/value list) to the new
 * trace file fd and starts the writer thread, which appends to the file at
 * `path` (absolute, kept by the caller) from then on.  0 on success; on
 * failure the tracer is off.  The caller closes fd. */
int mt_writer_start(const char *path, int fd, const uint8_t *header, size_t len);

/* Wakes the writer if it sleeps: a producer's ring is filling up. */
void mt_writer_kick(void);

/* Writes every event recorded so far and a footer, and waits until they are
 * in the file.  With stop, the writer thread then ends and the file closes.
 * Returns -1 when there is no writer. */
int mt_writer_sync(int reason, int stop);

/* Events written so far (for the exit message). */
uint64_t mt_writer_events(void);

/* In a fork child: forget the parent's writer (its thread is gone). */
void mt_writer_fork_child(void);

#endif
