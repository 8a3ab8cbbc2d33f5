/*
 * run.h - this process's place in its run (see common/runreg.h): the run
 * it belongs to, the ids and file name of its trace, whether this program
 * image is traced (MEMTRACE_FOLLOW, MEMTRACE_ONLY), the entry it leaves
 * for its next image and its children, and the run's line on stderr.
 *
 * A run's traces share one name: the top process's first image writes
 * NAME.trace (MEMTRACE_OUTPUT, %p being the top's pid, relative to the
 * top's working directory), every other image NAME.PID.trace, a later
 * image of the same process NAME.PID.N.trace.
 */
#ifndef MEMTRACE_RUN_H
#define MEMTRACE_RUN_H

#include <stddef.h>
#include <stdint.h>

/* At start, before the settings are read: finds this image's run, or
 * starts one.  1 when this is the run's first image (it alone complains
 * about bad settings). */
int mt_run_join(void);
/* With the settings read: whether this image is traced. */
int mt_run_traced(void);
/* Then: names the run if this image started it, and maps its state. */
void mt_run_begin(int traced);

/* Creates this image's trace file (O_EXCL, never through a symlink) and
 * puts its path into path: its descriptor, or -1 with errno set. */
int mt_run_create_trace(char *path, size_t cap);
/* A trace file that could not be written goes again. */
void mt_run_drop_trace(const char *path);
/* Appends the run's header keys: trace ids, run id and name. */
size_t mt_run_header(uint8_t *buf, size_t n);

/* In the child of a fork, before it decides whether it is traced. */
void mt_run_fork_child(void);
/* Before an exec or a spawn: leaves the entry the next image, or a child
 * that never runs the tracer's fork handler, finds the run by. */
void mt_run_publish(void);

/* An error line, said once per run (or handed to `memtrace run`). */
void mt_run_say(const char *msg);
/* At the end of the process (not at exec): the run's line if this is the
 * top process, and its entry goes.  trace: this image's trace (NULL when
 * untraced or failed), with its event count. */
void mt_run_exit(const char *trace, uint64_t events);

#endif
