/*
 * glibc_view - what glibc decides for the program, which the tracer must
 * not change: a 200 KiB malloc is above glibc's initial mmap threshold
 * (128 KiB) and gets a mapping of its own; freeing it raises the threshold
 * to its size, so the next 200 KiB malloc comes from the heap.  A tracer
 * that freed a large block of its own before main would raise the
 * threshold first.  Prints where each block came from and glibc's mapped
 * bytes, the same with or without the tracer.
 */
#include "progs.h" /* first: _GNU_SOURCE */

static const char *where(const void *p)
{
	return (const char *)p < (const char *)sbrk(0) ? "heap" : "mapped";
}

int main(void)
{
	void *p = c_malloc(200 * 1024);
	CHECK(p);
	put_str(1, "first 200 KiB block: ");
	put_str(1, where(p));
	put_str(1, "\nglibc mapped bytes: ");
	put_num(1, (long)mallinfo2().hblkhd);
	c_free(p, 200 * 1024);
	p = c_malloc(200 * 1024);
	CHECK(p);
	put_str(1, "\nsecond 200 KiB block: ");
	put_str(1, where(p));
	put_str(1, "\nglibc mapped bytes: ");
	put_num(1, (long)mallinfo2().hblkhd);
	put_str(1, "\n");
	c_free(p, 200 * 1024);
	print_counts("glibc_view");
	return 0;
}
