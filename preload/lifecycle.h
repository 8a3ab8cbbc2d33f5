/*
 * lifecycle.h - starting and stopping the tracer: process start and exit,
 * fork, exec and _exit.
 */
#ifndef MEMTRACE_LIFECYCLE_H
#define MEMTRACE_LIFECYCLE_H

/* Called on a thread's first event: decides once whether this process is
 * traced at all (not in setuid programs).  Returns mt_active. */
int mt_tracer_start(void);

/* A descriptor the tracer opened, moved off 0-2 if it landed there: those
 * are the program's standard streams, closed for now, and the program may
 * test or reuse them at any moment. */
int mt_fd_off_std(int fd);

/* Turns tracing off for good with one line on stderr; the program runs on. */
void mt_tracer_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
