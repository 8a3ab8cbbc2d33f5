/*
 * forks - a single-threaded program that forks many times (argv[1], 40 by
 * default).  Right after each fork() returns, in the parent and in the
 * child, it counts its threads twice, as CPython 3.12 and later do there
 * (/proc/self/stat's num_threads) and as a listing would (/proc/self/task):
 * once before any allocation and once after 100 malloc/free pairs, as
 * many as CPython makes there and more.  Untraced, every count is 1.
 *
 * Between the forks the parent allocates in four patterns, in turn, which
 * start the tracer's writer again in each of its ways: 79,998 calls (more
 * than half a ring of events), 150 blocks, a 15 ms pause and 150 more (the
 * time), 5 blocks (not at all), and 19,999 calls (over a quarter of a
 * ring, under a half: at the next fork).  Of each batch one block stays.  Each
 * child allocates its number's worth of blocks plus the pairs, leaks one,
 * and ends alternately with exit() and _exit().  Every process prints its
 * own counts ("expect who=parent", "who=child<i>"), which its trace must
 * match: nothing may be lost while the tracer's writer stops for each
 * fork.  "threads ..." says what the counts were.
 */
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "progs.h"

#define BATCH_MAX 40000

static void *blocks[BATCH_MAX];

/* Field 20 of /proc/self/stat, read without stdio (which allocates). */
static long stat_threads(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 20; field++)
		p = strchr(p + 1, ' ');
	CHECK(p != NULL);
	return strtol(p + 1, NULL, 10);
}

/* The entries of /proc/self/task, listed with getdents64 (opendir
 * allocates). */
static long task_threads(void)
{
	char buf[4096];
	long count = 0;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
		CHECK(n >= 0);
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			const char *name = buf + off + 19; /* d_ino, d_off, d_reclen, d_type */
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, sizeof reclen);
			count += name[0] != '.';
			off += reclen;
		}
	}
	close(fd);
	return count;
}

/* Both counts, now and after 100 malloc/free pairs: the largest. */
static long threads_after_fork(void)
{
	long most = stat_threads();
	long tasks = task_threads();
	most = tasks > most ? tasks : most;
	for (int i = 0; i < 100; i++)
		c_free(c_malloc(24), 24);
	long later = stat_threads();
	most = later > most ? later : most;
	tasks = task_threads();
	return tasks > most ? tasks : most;
}

/* n blocks of one size; the first stays. */
static void batch(int n, size_t size)
{
	for (int i = 0; i < n; i++)
		blocks[i] = c_malloc(size);
	for (int i = 1; i < n; i++)
		c_free(blocks[i], size);
}

static void pause_ms(long ms)
{
	struct timespec ts = {0, ms * 1000 * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void before_fork(int i)
{
	switch (i % 4) {
	case 0:
		batch(BATCH_MAX / 2, 32);
		batch(BATCH_MAX / 2, 40);
		break;
	case 1:
		batch(150, 48);
		pause_ms(15);
		batch(150, 56);
		break;
	case 2:
		batch(5, 64);
		break;
	default:
		batch(10000, 72);
		break;
	}
}

static void child(int i)
{
	counts = (struct counts){0};
	long threads = threads_after_fork();
	batch(i + 1, 100 + (size_t)i);
	char who[16] = "child";
	char *p = who + 5;
	if (i >= 10)
		*p++ = (char)('0' + i / 10 % 10);
	*p++ = (char)('0' + i % 10);
	*p = 0;
	print_counts(who);
	int status = threads == 1 ? 0 : 10 + (int)(threads > 50 ? 50 : threads);
	if (i % 2)
		_exit(status);
	exit(status);
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 40;
	long parent_most = 0, children_other = 0;
	CHECK(forks > 0 && forks < 100);
	for (int i = 0; i < forks; i++) {
		before_fork(i);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			child(i);
		long threads = threads_after_fork();
		parent_most = threads > parent_most ? threads : parent_most;
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status));
		children_other += WEXITSTATUS(status) != 0;
	}
	print_counts("parent");
	put_str(1, "threads parent_most=");
	put_num(1, parent_most);
	put_str(1, " children_with_more=");
	put_num(1, children_other);
	put_str(1, "\n");
	return 0;
}
