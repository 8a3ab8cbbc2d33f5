/*
 * fork - parent and child allocate and leak different, known amounts.
 *
 * Before the fork: 111 and 222 bytes leaked, and one 333-byte block that
 * both processes free afterwards.  After it the child leaks 444 + 500 bytes
 * (malloc, calloc) and the parent 555 bytes.
 *
 * The child's trace starts at the fork, so its figures cover only what the
 * child did: its free of the inherited 333-byte block has no matching
 * allocation there.  Each process prints its own counts, plus (child) what
 * it inherited, which valgrind counts in the child's heap.
 */
#include <sys/wait.h>

#include "progs.h"

int main(void)
{
	CHECK(c_malloc(111) != NULL);
	CHECK(c_malloc(222) != NULL);
	void *shared = c_malloc(333);
	CHECK(shared != NULL);
	const long inherited_bytes = counts.live_bytes - 333;
	const long inherited_blocks = counts.live_blocks - 1;

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		counts = (struct counts){0};
		/* a free call like any other, but of a block the child's trace
		 * never saw allocated: live figures are unaffected */
		free(shared);
		COUNT(frees, 1);
		CHECK(c_malloc(444) != NULL);
		CHECK(c_calloc(5, 100) != NULL);
		void *tmp = c_realloc(NULL, 0, 10);
		tmp = c_realloc(tmp, 10, 5000);
		CHECK(tmp != NULL);
		c_free(tmp, 5000);
		print_counts("child");
		put_str(1, "inherited live_bytes=");
		put_num(1, inherited_bytes);
		put_str(1, " live_blocks=");
		put_num(1, inherited_blocks);
		put_str(1, " unmatched_frees=1\n");
		exit(0);
	}

	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	c_free(shared, 333);
	CHECK(c_malloc(555) != NULL);
	print_counts("parent");
	return 0;
}
