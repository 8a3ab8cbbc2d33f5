/*
 * writer.h - the background thread that moves each ring's events into its
 * thread's stream of the trace, encodes and compresses them and writes the
 * trace file.
 */
#ifndef MEMTRACE_WRITER_H
#define MEMTRACE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* Writes the preamble and the header block (a key/value list) to the new
 * trace file fd and starts the writer thread, which appends to the file at
 * `path` (absolute, kept by the caller) from then on; with `lazy` the
 * thread starts only when the events need it (mt_writer_kick).  0 on
 * success; on failure the tracer is off.  The caller closes fd. */
int mt_writer_start(const char *path, int fd, const uint8_t *header, size_t len, int lazy);

/* A producer's ring crossed its kick mark (ring.h): wakes the writer if it
 * sleeps.  A writer stopped for a fork starts again here once the ring is
 * half full, or once a sample or a flush is due and the ring holds enough
 * events that the thread cannot appear within the first few after fork()
 * returns (CPython counts the threads there, see writer.c). */
void mt_writer_kick(struct mt_ring *r);

/* Writes every event recorded so far and a footer, and waits until they are
 * in the file (starting a writer stopped for a fork).  With stop, the
 * writer thread then ends and the file closes.  Returns -1 when there is
 * no writer. */
int mt_writer_sync(int reason, int stop);

/* Events written so far (for the exit message). */
uint64_t mt_writer_events(void);

/* Before fork(): everything recorded so far goes into the file and the
 * writer thread ends, so that the process has only the program's threads
 * when fork() returns; the writer's lock is held until the fork is over.
 * own: the forking thread's ring, if it has one. */
void mt_writer_fork_prepare(struct mt_ring *own);
/* After fork(), in the parent: the writer stays stopped (mt_writer_kick). */
void mt_writer_fork_parent(void);
/* In a fork child: forget the parent's writer. */
void mt_writer_fork_child(void);

#endif
