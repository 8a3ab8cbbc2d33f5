/*
 * cxx - new/delete, new[]/delete[], vector growth and std::string, repeated
 * ROUNDS times; counts its own operator new/delete calls (libstdc++'s
 * operator new calls malloc once, operator delete free once).
 *
 * usage: cxx ROUNDS
 *
 * libstdc++ allocates on its own at start-up (the emergency exception pool),
 * so the totals include a constant the program does not count: the tests
 * compare the difference between two runs with different ROUNDS.  What is
 * live at exit is checked against valgrind as usual.
 *
 * Leaks per run: one int[25] (100 bytes) and one std::string of 200
 * characters (the string object and its buffer).
 *
 * No failing new here: libstdc++ implements nothrow new by catching
 * bad_alloc, which allocates the exception object, while valgrind's nothrow
 * new just returns NULL; the calls would differ.  every_call covers failures.
 */
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "progs.h"
}

/* new and delete are counted like malloc and free */
template <typename T> static T *counted(T *p, size_t n)
{
	note_alloc(p, n);
	return p;
}

static void count_delete(size_t n)
{
	COUNT(frees, 1);
	COUNT(live_bytes, -(long)n);
	COUNT(live_blocks, -1);
}

static void one_round()
{
	int *one = counted(new int(42), sizeof(int));
	escape(one);
	delete one;
	count_delete(sizeof(int));

	int *arr = counted(new int[25], 25 * sizeof(int));
	escape(arr);
	delete[] arr;
	count_delete(25 * sizeof(int));

	/* every capacity change is one new (and one delete of the old
	 * buffer, if there was one) */
	{
		std::vector<int> v;
		for (int i = 0; i < 1000; i++) {
			size_t cap = v.capacity();
			v.push_back(i);
			if (v.capacity() != cap) {
				note_alloc(v.data(), v.capacity() * sizeof(int));
				if (cap != 0)
					count_delete(cap * sizeof(int));
			}
		}
		CHECK(v[999] == 999);
		count_delete(v.capacity() * sizeof(int));
	}

	/* beyond the 15-character small-string buffer: one allocation of
	 * capacity + 1 */
	{
		std::string s(100, 'x');
		note_alloc(&s[0], s.capacity() + 1);
		escape(&s[0]);
		count_delete(s.capacity() + 1);
	}
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	const long rounds = std::atol(argv[1]);

	for (long r = 0; r < rounds; r++)
		one_round();

	counted(new int[25], 25 * sizeof(int)); /* leaked */
	std::string *s = counted(new std::string(200, 'y'), sizeof(std::string));
	note_alloc(&(*s)[0], s->capacity() + 1); /* leaked with it */

	print_counts("cxx");
	return 0;
}
