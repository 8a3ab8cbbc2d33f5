/*
 * exec - allocates, leaks 1234 + 3000 bytes in 2 blocks, then replaces
 * itself with TARGET (normally exec_target, which leaks other amounts).
 *
 * usage: exec TARGET   exec TARGET with LD_PRELOAD and the rest inherited
 *        exec -        exit(0) where it would exec: valgrind does not report
 *                      on an image that execs, so this gives the figures the
 *                      first image has at the moment of its exec
 *
 * If the exec fails (TARGET does not exist) the program carries on, leaks
 * 10 more bytes and exits 0: a traced process whose exec failed must go on
 * being traced into the same file.
 */
#include "progs.h"

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	CHECK(c_malloc(1234) != NULL);
	CHECK(c_calloc(3, 1000) != NULL);
	void *tmp = c_malloc(64);
	CHECK(tmp != NULL);
	tmp = c_realloc(tmp, 64, 640);
	CHECK(tmp != NULL);
	c_free(tmp, 640);

	if (strcmp(argv[1], "-") == 0) {
		print_counts("exec");
		exit(0);
	}
	print_counts("exec");
	char *const args[] = {argv[1], "from-exec", NULL};
	execv(argv[1], args);

	put_str(1, "exec failed\n");
	CHECK(c_malloc(10) != NULL);
	print_counts("exec-failed");
	return 0;
}
