/*
 * spawn - starts TARGET (exec_target) twice, with posix_spawn and with
 * vfork + execv, and allocates before, between and after.
 *
 * usage: spawn TARGET
 *
 * A vfork child runs in its parent's memory until it execs: whatever the
 * tracer does in the child's exec must leave the parent's trace intact, and
 * the parent goes on recording into it.  The parent leaks 100 + 200 + 300
 * bytes in 3 blocks; each exec_target writes its own trace.
 */
#include <spawn.h>
#include <sys/wait.h>

#include "progs.h"

extern char **environ;

static void wait_ok(pid_t pid)
{
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	char *const args[] = {argv[1], "from-exec", NULL};
	pid_t pid;

	CHECK(c_malloc(100) != NULL);
	void *tmp = c_malloc(1000);
	CHECK(tmp != NULL);

	CHECK(posix_spawn(&pid, argv[1], NULL, NULL, args, environ) == 0);
	wait_ok(pid);
	c_free(tmp, 1000);
	CHECK(c_malloc(200) != NULL);

	pid = vfork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execv(argv[1], args);
		_exit(127);
	}
	wait_ok(pid);
	CHECK(c_malloc(300) != NULL);
	print_counts("spawn");
	return 0;
}
