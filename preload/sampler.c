/*
 * sampler.c - what the OS sees of the process: resident memory by kind
 * (the sampling thread's /proc status: the writer reads it each round
 * anyway, to see whether the program's threads are all gone), glibc's own
 * view of its heap (mallinfo2 and the program break), the brk heap's
 * resident pages (mincore), and the tracer's own mappings.  The writer thread samples every MEMTRACE_RSS_MS,
 * so the traced threads pay nothing for it; a thread that marks a step
 * samples at its mark, where the figures belong to the step.
 *
 * mallinfo2() walks every free chunk of every arena with the arena's lock
 * held: on a fragmented heap that takes milliseconds (48 ms for 500,000
 * free chunks here), during which the program's mallocs wait.  The writer
 * therefore takes the allocator figures only while they cost at most 1%
 * of the time since it last took them; the /proc status (10-15 us) and
 * the program break come with every sample.  Costs are the writer's CPU
 * time: on a loaded machine a descheduled writer would otherwise look
 * expensive and stop taking them.
 */
#define _GNU_SOURCE
#include "sampler.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "lifecycle.h"
#include "ownmem.h"
#include "record.h"

#define BUDGET 100 /* the allocator figures: at most 1/BUDGET of the time */
#define OWN_US 1000000 /* the tracer's own resident pages change slowly: the
			  writer measures them once a second (marks always) */

static struct {
	uint64_t start_brk; /* 0: unknown */
	int malloc_kind;    /* enum mt_malloc_kind, 0: unknown */
	/* the writer's schedule and costs */
	uint64_t next_us, next_alloc_us;
	uint64_t samples, cost_us;
	uint64_t own_us, own_resident; /* the writer's last measure of its own */
} smp;

static uint64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

static uint64_t cpu_us(void)
{
	return clock_us(CLOCK_THREAD_CPUTIME_ID);
}

size_t mt_proc_read(const char *path, char *buf, size_t cap)
{
	int saved = errno;
	int fd = mt_fd_off_std(open(path, O_RDONLY | O_CLOEXEC));
	size_t len = 0;
	ssize_t n;
	while (fd >= 0 && len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	if (fd >= 0)
		close(fd);
	buf[len] = 0;
	errno = saved;
	return len;
}

/* start_brk, field 47 of /proc/self/stat: where the brk heap begins. */
static uint64_t start_brk(void)
{
	char buf[1024];
	mt_proc_read("/proc/self/stat", buf, sizeof buf);
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 47; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* glibc's mallinfo2 describes the program's heap only if the malloc the
 * program reaches after ours is glibc's. */
static int malloc_kind(void)
{
	Dl_info next, libc;
	void *m = dlsym(RTLD_NEXT, "malloc");
	if (!m || !dladdr(m, &next) || !dladdr((void *)mallinfo2, &libc))
		return 0;
	return next.dli_fbase == libc.dli_fbase ? MT_MALLOC_GLIBC : MT_MALLOC_OTHER;
}

void mt_sampler_start(void)
{
	smp.start_brk = start_brk();
	smp.malloc_kind = malloc_kind();
}

size_t mt_sampler_header(uint8_t *buf, size_t len)
{
	len = mt_kv_put_u64(buf, len, MT_H_RSS_MS, mt_cfg.rss_ms);
	if (smp.start_brk)
		len = mt_kv_put_u64(buf, len, MT_H_START_BRK, smp.start_brk);
	if (smp.malloc_kind)
		len = mt_kv_put_u64(buf, len, MT_H_MALLOC, (uint64_t)smp.malloc_kind);
	return len;
}

/* ---- taking a sample ---------------------------------------------------- */

static void put(struct mt_sample *s, int field, uint64_t v)
{
	s->v[field] = v;
	s->mask |= 1ull << field;
}

/* "Name:    1234 kB" of /proc/self/status, in bytes. */
static void status_field(struct mt_sample *s, int field, const char *text, const char *name)
{
	const char *p = strstr(text, name);
	if (p)
		put(s, field, strtoull(p + strlen(name), NULL, 10) * 1024);
}

static void resident(struct mt_sample *s, const char *status)
{
	char buf[4096];
	if (!status)
		status = mt_proc_read(MT_PROC_STATUS, buf, sizeof buf) ? buf : NULL;
	if (!status)
		return;
	status_field(s, MT_S_RSS_ANON, status, "\nRssAnon:");
	status_field(s, MT_S_RSS_FILE, status, "\nRssFile:");
	status_field(s, MT_S_RSS_SHMEM, status, "\nRssShmem:");
}

static void allocator(struct mt_sample *s, uint64_t brk, uint64_t now_us, int full)
{
	if (smp.start_brk && brk >= smp.start_brk) {
		size_t page = (size_t)getpagesize();
		uint64_t end = (brk + page - 1) & ~(uint64_t)(page - 1);
		put(s, MT_S_BRK_RESIDENT, mt_resident_bytes(smp.start_brk, end - smp.start_brk));
	}
	if (smp.malloc_kind == MT_MALLOC_GLIBC) {
		struct mallinfo2 mi = mallinfo2();
		put(s, MT_S_GLIBC_ARENA, mi.arena);
		put(s, MT_S_GLIBC_MMAP, mi.hblkhd);
		put(s, MT_S_GLIBC_USED, mi.uordblks);
		put(s, MT_S_GLIBC_FREE, mi.fordblks);
		put(s, MT_S_GLIBC_TOP, mi.keepcost);
	}
	put(s, MT_S_OWN_MAPPED, mt_own_mapped());
	if (full) {
		put(s, MT_S_OWN_RESIDENT, mt_own_resident());
		return;
	}
	if (!smp.own_us || now_us - smp.own_us >= OWN_US) {
		smp.own_resident = mt_own_resident();
		smp.own_us = now_us;
	}
	put(s, MT_S_OWN_RESIDENT, smp.own_resident);
}

void mt_sampler_take(struct mt_sample *s, uint64_t now_us, int full, const char *status)
{
	int saved = errno;
	uint64_t start = full ? 0 : cpu_us();
	uint64_t brk = (uint64_t)(uintptr_t)sbrk(0);
	s->mask = 0;
	resident(s, status);
	if (brk != (uint64_t)-1)
		put(s, MT_S_BRK, brk);
	if (full || now_us >= smp.next_alloc_us) {
		uint64_t t0 = full ? 0 : cpu_us();
		allocator(s, brk, now_us, full);
		if (!full)
			smp.next_alloc_us = now_us + BUDGET * (cpu_us() - t0);
	}
	if (!full) {
		smp.samples++;
		smp.cost_us += cpu_us() - start;
		uint64_t step = mt_cfg.rss_ms * 1000ull;
		/* on a fixed grid, so that a late round does not shift the rest */
		smp.next_us = smp.next_us + step > now_us ? smp.next_us + step : now_us + step;
	}
	errno = saved;
}

uint64_t mt_sampler_wait_us(uint64_t now_us)
{
	if (!mt_cfg.rss_ms)
		return UINT64_MAX;
	return smp.next_us > now_us ? smp.next_us - now_us : 0;
}

void mt_sampler_totals(uint64_t *samples, uint64_t *us)
{
	*samples = smp.samples;
	*us = smp.cost_us;
}

void mt_sampler_fork_child(void)
{
	smp.next_us = smp.next_alloc_us = smp.own_us = 0;
	smp.samples = smp.cost_us = 0;
}

/* ---- at a mark ------------------------------------------------------------ */

/* Three figures per ring event: addr, size (54 bits) and aux. */
static uint64_t part_value(const struct mt_sample *s, int field, uint64_t absent)
{
	return field < MT_S_COUNT && (s->mask >> field & 1) ? s->v[field] : absent;
}

void mt_sampler_mark(uint64_t label)
{
	struct mt_sample s = {0};
	int n = mt_cfg.rss_ms ? MT_SAMPLE_PARTS : 0;
	if (n)
		mt_sampler_take(&s, mono_us(), 1, NULL);
	struct mt_ring *r = mt_record_begin(1 + (uint64_t)n);
	if (!r)
		return;
	uint64_t epoch = mt_record_epoch(r);
	mt_record_put(r, 0, epoch, MT_EV_OP(MT_REC_MARK, 0, 0), 0, (const void *)(uintptr_t)label, 0);
	for (int k = 0; k < n; k++)
		mt_record_put(r, 1 + (uint64_t)k, epoch, MT_EV_OP(MT_REC_SAMPLE, 0, k),
			      part_value(&s, 3 * k + 1, MT_EV_SIZE_MASK),
			      (const void *)(uintptr_t)part_value(&s, 3 * k, MT_SAMPLE_ABSENT),
			      part_value(&s, 3 * k + 2, MT_SAMPLE_ABSENT));
	mt_record_end(r, 1 + (uint64_t)n);
}

void mt_sample_from_part(struct mt_sample *s, int part, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t v[3] = {a, b == MT_EV_SIZE_MASK ? MT_SAMPLE_ABSENT : b, c};
	if (part == 0)
		s->mask = 0;
	for (int i = 0; i < 3; i++) {
		int field = 3 * part + i;
		if (field < MT_S_COUNT && v[i] != MT_SAMPLE_ABSENT)
			put(s, field, v[i]);
	}
}
