/*
 * runreg.h - the run registry: how the processes of one run find each
 * other without changing anything the program can see (no environment
 * variable, no open descriptor).
 *
 * A run is the tree of processes one traced command makes.  A process
 * that execs, or starts children that exec without the tracer's own exec
 * wrappers (posix_spawn, system, popen), first leaves an entry under its
 * pid in a directory private to the user.  A new program image then finds
 * its run by its own pid (its predecessor in the same process: exec keeps
 * the pid) or else by its parent's pid.  Each entry carries the process's
 * start time from /proc/PID/stat, which exec keeps and a reused pid does
 * not, so a stale entry is never taken for a live one.  Forked children
 * need no entry: they start with their parent's memory.
 *
 * Each run also has a small shared state: how many traces it has, its
 * first trace, and whether a line about it already went to stderr.
 *
 * Nothing here allocates: the preload library uses it inside malloc.
 */
#ifndef MEMTRACE_RUNREG_H
#define MEMTRACE_RUNREG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MT_RUN_PATH_MAX 4096
#define MT_RUN_DIR_MAX 64

enum mt_run_flags {
	MT_RUN_TOP = 1, /* the run's top process: the command itself */
};

/* One process's entry, file "p<pid>" in the registry directory. */
struct mt_run_entry {
	uint32_t magic, version;
	uint64_t start;       /* the process's start time (clock ticks after boot) */
	uint64_t run_id;
	uint64_t output_hash; /* mt_run_hash of MEMTRACE_OUTPUT in the run's top */
	uint64_t parent;      /* trace id of the parent process's trace; 0: none */
	uint64_t last;        /* trace id of this process's latest traced image; 0: none */
	uint32_t images;      /* program images this process ran in the run */
	uint32_t flags;       /* enum mt_run_flags */
	char base[MT_RUN_PATH_MAX]; /* the run's trace names: BASE.trace, BASE.PID.trace */
};

/* A run's shared state, file "r<run id>", mapped by every process of the
 * run that traces; fields change atomically only. */
struct mt_run_state {
	uint32_t magic, version;
	uint64_t run_id;
	int32_t owner;     /* the process that made it, and its start time: */
	uint64_t owner_start; /* a state whose owner is gone is stale */
	uint32_t traces;   /* trace files made so far */
	uint32_t said;     /* a line about the run went out: errors are said once */
	uint32_t launcher; /* `memtrace run` prints the run's line: processes stay quiet */
	uint32_t first_set;
	char first[MT_RUN_PATH_MAX]; /* the run's first trace file */
	char error[512];   /* the first error, for the launcher to say */
};

/* The registry directory ("/dev/shm/memtrace-UID", or under /tmp), made
 * if needed; -1 when it cannot be made or is not the user's own. */
int mt_run_dir(char dir[MT_RUN_DIR_MAX]);

/* A process's start time from /proc/PID/stat (pid 0: this process); 0
 * when it cannot be read.  *ppid gets its parent when not NULL. */
uint64_t mt_run_start_of(pid_t pid, pid_t *ppid);

/* FNV-1a of a string (NULL hashes as ""). */
uint64_t mt_run_hash(const char *s);

/* A new nonzero id (trace or run). */
uint64_t mt_run_new_id(void);

/* The entry of process pid if it belongs to the process that started at
 * `start`: 0, else -1. */
int mt_run_entry_read(const char *dir, pid_t pid, uint64_t start, struct mt_run_entry *e);
int mt_run_entry_write(const char *dir, pid_t pid, const struct mt_run_entry *e);
void mt_run_entry_remove(const char *dir, pid_t pid);

/* Maps the state of run `id`, making it first with `create`; NULL when
 * it cannot.  The mapping outlives the descriptor, which is closed. */
struct mt_run_state *mt_run_state_map(const char *dir, uint64_t id, int create);
void mt_run_state_unmap(struct mt_run_state *s);
void mt_run_state_remove(const char *dir, uint64_t id);

/* Removes the entries and states whose processes are gone (killed before
 * they could remove their own). */
void mt_run_sweep(const char *dir);

#endif
