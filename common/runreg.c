/*
 * runreg.c - the run registry (runreg.h): entries and run states as small
 * files in a directory of the user's own, read and written with plain
 * system calls, never kept open.
 */
#define _GNU_SOURCE
#include "runreg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

#define ENTRY_MAGIC 0x5052544du /* "MTRP" */
#define STATE_MAGIC 0x5352544du /* "MTRS" */
#define VERSION 1
#define ENTRY_HEAD offsetof(struct mt_run_entry, base)

static int own_dir(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 077) == 0;
}

int mt_run_dir(char dir[MT_RUN_DIR_MAX])
{
	struct stat st;
	const char *root = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(dir, MT_RUN_DIR_MAX, "%s/memtrace-%u", root, (unsigned)geteuid());
	if (own_dir(dir))
		return 0;
	int saved = errno;
	int ok = (mkdir(dir, 0700) == 0 || errno == EEXIST) && own_dir(dir);
	errno = saved;
	return ok ? 0 : -1;
}

/* Reads a small file whole into buf (NUL-terminated); its length or -1. */
static ssize_t read_small(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t n;
	while (len < cap && (n = read(fd, (char *)buf + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	return (ssize_t)len;
}

uint64_t mt_run_start_of(pid_t pid, pid_t *ppid)
{
	char path[64], buf[1024];
	int saved = errno;
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof path, "/proc/self/stat");
	ssize_t n = read_small(path, buf, sizeof buf - 1);
	errno = saved;
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields count from
	 * the last ')'.  Field 3 follows it; ppid is 4, the start time 22. */
	char *p = strrchr(buf, ')');
	uint64_t start = 0;
	for (int field = 3; p && field <= 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return 0;
		if (field == 4 && ppid)
			*ppid = (pid_t)strtol(p + 1, NULL, 10);
		if (field == 22)
			start = strtoull(p + 1, NULL, 10);
	}
	return start;
}

uint64_t mt_run_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

uint64_t mt_run_new_id(void)
{
	uint64_t id = 0;
	int saved = errno;
	if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id)
		id = __rdtsc() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32;
	errno = saved;
	return id ? id : 1;
}

static void entry_path(char *path, size_t cap, const char *dir, pid_t pid)
{
	snprintf(path, cap, "%s/p%d", dir, (int)pid);
}

int mt_run_entry_read(const char *dir, pid_t pid, uint64_t start, struct mt_run_entry *e)
{
	char path[MT_RUN_DIR_MAX + 32];
	int saved = errno;
	entry_path(path, sizeof path, dir, pid);
	ssize_t n = read_small(path, e, sizeof *e);
	errno = saved;
	if (n < (ssize_t)ENTRY_HEAD + 1 || e->magic != ENTRY_MAGIC || e->version != VERSION ||
	    !start || e->start != start)
		return -1;
	e->base[n - ENTRY_HEAD < sizeof e->base ? n - ENTRY_HEAD : sizeof e->base - 1] = 0;
	return 0;
}

/* Written beside and renamed into place, so that a reader never sees half
 * an entry. */
int mt_run_entry_write(const char *dir, pid_t pid, const struct mt_run_entry *e)
{
	char path[MT_RUN_DIR_MAX + 32], tmp[MT_RUN_DIR_MAX + 48];
	struct mt_run_entry out = *e;
	int saved = errno, rc = -1;
	out.magic = ENTRY_MAGIC;
	out.version = VERSION;
	entry_path(path, sizeof path, dir, pid);
	snprintf(tmp, sizeof tmp, "%s/t%d.%d", dir, (int)pid, (int)gettid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		size_t len = ENTRY_HEAD + strnlen(out.base, sizeof out.base - 1) + 1;
		rc = write(fd, &out, len) == (ssize_t)len ? 0 : -1;
		close(fd);
		if (rc == 0)
			rc = rename(tmp, path);
		if (rc)
			unlink(tmp);
	}
	errno = saved;
	return rc;
}

/* unlink, leaving errno as it was: the program may be reading it. */
static void remove_file(const char *path)
{
	int saved = errno;
	unlink(path);
	errno = saved;
}

void mt_run_entry_remove(const char *dir, pid_t pid)
{
	char path[MT_RUN_DIR_MAX + 32];
	entry_path(path, sizeof path, dir, pid);
	remove_file(path);
}

static void state_path(char *path, size_t cap, const char *dir, uint64_t id)
{
	snprintf(path, cap, "%s/r%016llx", dir, (unsigned long long)id);
}

struct mt_run_state *mt_run_state_map(const char *dir, uint64_t id, int create)
{
	char path[MT_RUN_DIR_MAX + 32];
	int saved = errno;
	struct mt_run_state *s = NULL;
	state_path(path, sizeof path, dir, id);
	int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
	int fd = open(path, flags, 0600);
	struct stat st;
	/* A mapping past the end of the file would fault when read. */
	if (fd >= 0 && (create ? ftruncate(fd, sizeof *s) == 0
			       : fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof *s)) {
		void *p = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		s = p == MAP_FAILED ? NULL : p;
	}
	if (fd >= 0)
		close(fd);
	if (s && create) {
		s->run_id = id;
		s->owner = getpid();
		s->owner_start = mt_run_start_of(0, NULL);
		s->version = VERSION;
		__atomic_store_n(&s->magic, STATE_MAGIC, __ATOMIC_RELEASE);
	} else if (s && (__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != STATE_MAGIC ||
			 s->version != VERSION || s->run_id != id)) {
		mt_run_state_unmap(s);
		s = NULL;
	}
	errno = saved;
	return s;
}

void mt_run_state_unmap(struct mt_run_state *s)
{
	if (s)
		munmap(s, sizeof *s);
}

void mt_run_state_remove(const char *dir, uint64_t id)
{
	char path[MT_RUN_DIR_MAX + 32];
	state_path(path, sizeof path, dir, id);
	remove_file(path);
}

/* Whether the file `name` in dir belongs to a process that is gone. */
static int stale(const char *dir, const char *name)
{
	char path[MT_RUN_DIR_MAX + 300];
	union {
		struct mt_run_entry e;
		struct mt_run_state s;
	} u;
	pid_t pid;
	uint64_t start;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	ssize_t n = read_small(path, &u, sizeof u);
	if (name[0] == 'p' && n >= (ssize_t)ENTRY_HEAD && u.e.magic == ENTRY_MAGIC) {
		pid = (pid_t)strtol(name + 1, NULL, 10);
		start = u.e.start;
	} else if (name[0] == 'r' && n >= (ssize_t)sizeof u.s && u.s.magic == STATE_MAGIC) {
		pid = u.s.owner;
		start = u.s.owner_start;
	} else if (name[0] == 't') { /* a half-written entry of a writer killed meanwhile */
		pid = (pid_t)strtol(name + 1, NULL, 10);
		start = 0;
	} else {
		return 0;
	}
	uint64_t now = pid > 0 ? mt_run_start_of(pid, NULL) : 0;
	return start ? now != start : now == 0;
}

void mt_run_sweep(const char *dir)
{
	char buf[4096];
	int saved = errno;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	long n;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (strchr("prt", d->d_name[0]) && d->d_name[0] && stale(dir, d->d_name))
				unlinkat(fd, d->d_name, 0);
		}
	}
	close(fd);
	errno = saved;
}
