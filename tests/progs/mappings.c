/*
 * mappings - mmap, mmap64, munmap and mremap of anonymous memory and of a
 * file: a partial munmap, an mremap that must move and one that shrinks,
 * a MAP_FIXED mapping over part of another, a munmap across two
 * mappings, and calls the kernel refuses.  Prints every result and errno
 * (the same with or without the tracer), then its own count of the mmap
 * domain, and the malloc domain's: two 1 MiB mallocs, which glibc maps on
 * its own and which must count as malloc blocks only.
 *
 * At exit 7 pages stay mapped in 5 mappings, 1 of them from the file.
 */
#include "progs.h" /* first: _GNU_SOURCE */

#include <fcntl.h>
#include <sys/mman.h>

static struct {
	long allocs, frees, reallocs, failed, bytes, live, peak, blocks;
} m;

static size_t page;

static void result(const char *what, long rc)
{
	put_str(1, "result ");
	put_str(1, what);
	put_str(1, " rc=");
	put_num(1, rc);
	put_str(1, " errno=");
	put_num(1, rc < 0 ? errno : 0);
	put_str(1, "\n");
}

static void live(long pages, long blocks)
{
	m.live += pages * (long)page;
	m.blocks += blocks;
	if (m.live > m.peak)
		m.peak = m.live;
}

static char *map(void *addr, size_t len, int prot, int flags, int fd, off_t off, int use64)
{
	errno = 0;
	void *p = use64 ? mmap64(addr, len, prot, flags, fd, off) : mmap(addr, len, prot, flags, fd, off);
	result(use64 ? "mmap64" : "mmap", p == MAP_FAILED ? -1 : 0);
	if (p == MAP_FAILED) {
		m.failed++;
		return NULL;
	}
	m.allocs++;
	m.bytes += (long)((len + page - 1) / page * page);
	return p;
}

static void unmap(void *addr, size_t len, int counts)
{
	errno = 0;
	result("munmap", munmap(addr, len));
	m.frees += counts;
}

static char *remap(void *old, size_t old_len, size_t len, int flags)
{
	errno = 0;
	void *p = mremap(old, old_len, len, flags);
	result("mremap", p == MAP_FAILED ? -1 : 0);
	if (p == MAP_FAILED) {
		m.failed++;
		return NULL;
	}
	m.reallocs++;
	m.bytes += (long)len;
	return p;
}

int main(int argc, char **argv)
{
	const int rw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
	(void)argc;
	page = (size_t)sysconf(_SC_PAGESIZE);

	char *a = map(NULL, 10 * page, rw, anon, -1, 0, 0);
	CHECK(a);
	memset(a, 1, 10 * page);
	live(10, 1);
	unmap(a + 4 * page, 2 * page, 1); /* a hole: two mappings */
	live(-2, 1);
	/* pages 4-5 are free but 6 is mapped: growing to 8 pages must move */
	char *b = remap(a, 4 * page, 8 * page, MREMAP_MAYMOVE);
	CHECK(b && b != a);
	live(4, 0);
	char *c = remap(b, 8 * page, 3 * page, 0); /* shrinks in place */
	CHECK(c == b);
	live(-5, 0);
	unmap(a + 6 * page, 4 * page, 1); /* the other half of a */
	live(-4, -1);

	char *d = map(NULL, 5 * page, rw, anon, -1, 0, 1);
	CHECK(d);
	live(5, 1);
	/* MAP_FIXED over pages 1-2 of d: three mappings where d was */
	CHECK(map(d + page, 2 * page, PROT_READ, anon | MAP_FIXED, -1, 0, 0) == d + page);
	live(0, 2);
	/* across two of them: the fixed one's second page, d's page 3 */
	unmap(d + 2 * page, 2 * page, 1);
	live(-2, 0);

	int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	char *f = map(NULL, 3000, PROT_READ, MAP_PRIVATE, fd, 0, 0);
	CHECK(f && f[1] == 'E'); /* "\177ELF" */
	live(1, 1);

	/* refused: not recorded (munmap), or counted as failed */
	unmap(a + 1, page, 0);
	unmap(c, 0, 0);
	CHECK(!map(NULL, page, rw, 0, -1, 0, 0));
	CHECK(!map(NULL, page, PROT_READ, MAP_PRIVATE, fd, 100, 0));
	CHECK(!remap((void *)page, page, 2 * page, MREMAP_MAYMOVE));
	CHECK(!remap(c, 3 * page, 4 * page, 0x80)); /* bad flags: c stays */
	close(fd);

	/* glibc maps these chunks itself: malloc blocks, not mappings */
	c_free(c_malloc(1 << 20), 1 << 20);
	escape(c_malloc(1 << 20));

	const struct { const char *name; long value; } fields[] = {
		{ "allocs", m.allocs }, { "frees", m.frees }, { "reallocs", m.reallocs },
		{ "failed", m.failed }, { "bytes", m.bytes }, { "live_bytes", m.live },
		{ "live_blocks", m.blocks }, { "peak", m.peak }, { "file_bytes", (long)page },
	};
	put_str(1, "expect who=mmap");
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		put_str(1, " ");
		put_str(1, fields[i].name);
		put_str(1, "=");
		put_num(1, fields[i].value);
	}
	put_str(1, "\n");
	print_counts("mappings");
	return 0;
}
