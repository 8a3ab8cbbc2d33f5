/*
 * forks - a program that forks a lot, for what fork() costs under the
 * tracer (its writer thread stops before each fork and starts again when
 * the events need it).
 *
 * usage: forks FORKS PAIRS
 *
 * FORKS times, the parent makes PAIRS malloc/free pairs of small sizes and
 * forks a child that makes PAIRS pairs too and exits; the parent waits for
 * it.  Prints "forks=N pairs=N" with its own totals.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void pairs(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		void *p = malloc(16 + i % 256);
		__asm__ volatile("" : : "g"(p) : "memory");
		free(p);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: forks FORKS PAIRS\n");
		return 2;
	}
	unsigned long forks = strtoul(argv[1], NULL, 10), n = strtoul(argv[2], NULL, 10);
	unsigned long done = 0;
	for (unsigned long i = 0; i < forks; i++) {
		pairs(n);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			pairs(n);
			exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			done++;
	}
	printf("forks=%lu pairs=%lu\n", done, forks * n);
	return done == forks ? 0 : 1;
}
