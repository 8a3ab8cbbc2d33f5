/*
 * report.h - the figures memtrace reports about one trace, and the builder
 * that streams a trace file block by block to compute them.  Output
 * formatting lives in output.h; this module knows nothing about it.
 *
 * The analyses live in their own modules (analysis.h): Python pools and
 * arenas (pools.c), list item buffers (lists.c), allocation sites, the heap
 * peak and temporaries (sites.c), the timeline and size histogram
 * (timeline.c), the steps between marks (marks.c), the program's own
 * mappings (mappings.c) and what the OS sees of the process (memory.c).
 * Their results are plain data in struct mt_report, so that every output
 * is drawn from it.
 */
#ifndef MEMTRACE_REPORT_H
#define MEMTRACE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <memtrace/trace_format.h>

/* Bytes copied out of the header; p == NULL when the header lacked the key. */
struct mt_bytes {
	uint8_t *p;
	size_t n;
};

struct mt_dom_stats {
	uint64_t allocs, frees, reallocs, failed;
	uint64_t bytes_allocated, peak_bytes;
	uint64_t live_bytes, live_blocks; /* at the end of the trace */
	uint64_t unmatched_frees;         /* frees of addresses never seen live */
	uint64_t inconsistent;            /* allocs of addresses already live */
	uint64_t freed_below;             /* blocks that ended with the block under
					   * them, their own free unseen (report.c) */
};

/* Which numeric header keys the trace carried. */
enum mt_have {
	MT_HAVE_PID = 1 << 0,
	MT_HAVE_PPID = 1 << 1,
	MT_HAVE_START = 1 << 2,
	MT_HAVE_PAGE_SIZE = 1 << 3,
	MT_HAVE_PYTHON = 1 << 4, /* MT_H_PY_VERSION: a CPython process */
	MT_HAVE_FREE_THREADED = 1 << 5, /* MT_H_PY_FREE_THREADED: no pymalloc */
};

/* end_reason when no final footer says, or when it names an unknown one. */
#define MT_REASON_NONE (-1)
#define MT_REASON_UNKNOWN (-2)

struct mt_process {
	unsigned have; /* enum mt_have */
	uint64_t pid, ppid, start_ns, page_size;
	struct mt_bytes exe, argv, version; /* argv: NUL-separated */
	/* CPython: PY_VERSION_HEX, pymalloc geometry and frames per location.
	 * pool_size and arena_size fall back to CPython's for the version
	 * when the header lacks them. */
	uint64_t py_version, pool_size, arena_size, py_depth;
	/* Its place in its run: ids are 0 when the header lacks them. */
	uint64_t trace_id, parent_trace, exec_pred, run_id;
	bool run_top;            /* an image of the run's top process */
	struct mt_bytes run_name; /* file name of the run's first trace */
};

/* ---- Python locations ------------------------------------------------- */

/* A Python stack node (a FRAME record), resolved: its strings live in the
 * report's string table.  parent is an index into mt_report.frames, 0 for
 * an outermost frame (index 0 itself is unused). */
struct mt_frame {
	uint32_t parent;
	uint32_t file, function; /* indexes into mt_report.strings */
	uint32_t first_line;     /* the function's first line (0: unknown) */
	uint64_t line;
};

/* One allocation site: a Python location (innermost frame) in one domain,
 * or frame 0: no Python location ("<native>").  Every block is counted at
 * the site of its topmost domain only: the malloc block under a large
 * PyObject_Malloc belongs to the PyObject site, not to "<native>".  In a
 * build with MT_BUILD_PER_THREAD a site is also one thread's: tid. */
struct mt_site {
	uint32_t frame; /* index into mt_report.frames; 0: native */
	int dom;
	uint64_t allocs, bytes;            /* allocations and reallocs made here */
	/* live: at the end of the trace (of the window); peak: at the heap
	 * peak.  Bytes and blocks apart: the compiler would pair their
	 * updates into vector operations, which cost the reporter 1% more
	 * instructions */
	uint64_t live_bytes, peak_bytes;
	uint64_t live_blocks, peak_blocks;
	uint64_t temp_allocs, temp_bytes;  /* temporary allocations */
	uint64_t epoch;                    /* sites.c: when peak_bytes was taken */
	uint32_t list;                     /* lists.c: 1 + its index in lists.sites */
	uint32_t stack;                    /* stacks.h: native stack node, 0: none */
	uint64_t tid;                      /* MT_BUILD_PER_THREAD: who allocated */
	/* while the trace is read: the main script's line the blocks were
	 * made under (lines.c), and the live blocks made before the window
	 * opened (view.c) */
	uint32_t script;
	uint64_t old_bytes, old_blocks;
};

/* ---- Python pools and arenas ------------------------------------------ */

#define MT_SIZE_CLASSES 32 /* pymalloc's 16-byte classes, up to 512 bytes */

struct mt_size_class {
	uint64_t allocs;                       /* blocks handed out from pools */
	uint64_t live_objects, pools;          /* now (at exit when done) */
	uint64_t live_objects_peak, pools_peak;
};

struct mt_arena_info {
	uint64_t address, live_objects, live_bytes, pools_in_use;
};

struct mt_pools {
	uint64_t arena_size, pool_size;
	uint64_t arenas_allocated, arenas_freed, arenas_live, arenas_peak;
	uint64_t arenas_empty;                             /* mapped, no pool in use */
	uint64_t pools_touched;   /* pools of mapped arenas that ever held a block */
	uint64_t arena_bytes_live;                         /* all arena-allocator blocks */
	uint64_t other_allocated, other_freed, other_bytes, other_bytes_peak;
	uint64_t pools_in_use, pools_peak;
	uint64_t object_bytes;                             /* live blocks inside arenas */
	struct {
		uint64_t arena_bytes, object_bytes, pools;
	} at_peak, at_exit;                                /* at the heap peak, at exit */
	struct mt_size_class classes[MT_SIZE_CLASSES];     /* [i]: size 16 * (i + 1) */
	struct mt_arena_info *retained;                    /* arenas mapped at exit */
	size_t nretained;                                  /* fewest live objects first */
};

/* ---- list item buffers ----------------------------------------------- */

#define MT_CHAIN_MAX 64  /* capacities kept per chain: */
#define MT_CHAIN_HEAD 16 /* the first ones, and the latest ones */

struct mt_list_site {
	uint32_t site;        /* index into mt_report.sites of its first resize */
	uint64_t resizes, buffers, bytes_copied;
	/* the longest chain seen here: its capacities (the first MT_CHAIN_HEAD
	 * then, after chain_skipped left out, the latest), its resizes and its
	 * slack after its last resize */
	uint64_t chain[MT_CHAIN_MAX];
	uint32_t chain_len;
	uint64_t chain_skipped;
	uint64_t longest;     /* resizes of that chain */
	uint64_t final_capacity, slack_slots;
};

struct mt_lists {
	uint64_t resizes, buffers, bytes_copied;
	uint64_t slack_bytes_live, slack_bytes_at_peak;   /* live: at exit when done */
	struct mt_list_site *sites;
	size_t nsites;
};

/* ---- timeline, histogram, marks ---------------------------------------- */

#define MT_TIMELINE_MAX 1000

struct mt_tpoint {
	uint64_t time_us, heap, dom[MT_DOM_COUNT], arenas, pools;
};

struct mt_timeline {
	uint64_t interval_us;
	struct mt_tpoint *points;
	size_t npoints;
};

#define MT_HIST_BUCKETS 65 /* [0]: size 0; [k]: 2^(k-1) .. 2^k - 1 */
struct mt_hist_bucket {
	uint64_t allocs, bytes;
};

/* The figures the marks compare: counters that only grow, and levels. */
struct mt_counters {
	uint64_t time_us;
	uint64_t allocs, frees;   /* each allocation once, at its topmost domain */
	uint64_t heap;            /* malloc domain + arena blocks */
	uint64_t arenas, pools, list_resizes;
	uint64_t dom_allocs[MT_DOM_COUNT], dom_frees[MT_DOM_COUNT];
	uint64_t dom_reallocs[MT_DOM_COUNT], dom_bytes[MT_DOM_COUNT]; /* bytes allocated */
	uint64_t dom_copied[MT_DOM_COUNT]; /* by reallocs that moved: min(old, new) */
	uint64_t dom_live[MT_DOM_COUNT];
	/* PyMem and PyObject requests of 1 to 512 bytes, by pymalloc class */
	uint64_t class_allocs[MT_SIZE_CLASSES], class_frees[MT_SIZE_CLASSES];
};

/* One step: from a mark to the next one, or to the end.  The first step
 * is "(before first mark)" (label UINT32_MAX) when the trace starts with
 * allocations before its first mark. */
struct mt_mark {
	uint32_t label; /* index into mt_report.strings; UINT32_MAX: none */
	uint64_t count; /* marks folded into this step (see marks.c) */
	struct mt_counters start, end;
	uint64_t heap_peak; /* highest heap during the step */
	uint32_t mem;   /* memory.c: 1 + index into memory.at_marks, 0: no sample */
};

/* ---- the sites over time (MT_BUILD_TIME_GRID) ---------------------------- */

/* Time cut into buckets of bucket_us: the grid starts at 1 us a bucket
 * and doubles whenever the trace runs past MT_GRID_MAX buckets.  A site's
 * cell is its running figures at the end of a bucket in which they
 * changed; in the buckets without a cell they are the previous cell's. */
#define MT_GRID_MAX 256

struct mt_tcell {
	uint64_t bucket;
	uint64_t allocs, bytes, live_bytes, temp_allocs, temp_bytes;
};

struct mt_site_times {
	struct mt_tcell *cells; /* by bucket, ascending */
	uint32_t n, cap;
	uint64_t bucket;        /* of the site's last change (or its making) */
};

struct mt_grid {
	uint64_t from_us;             /* where bucket 0 starts: 0, or the window's start */
	uint64_t bucket_us, nbuckets; /* nbuckets: up to the end of the trace (window) */
	struct mt_site_times *sites;  /* parallel to mt_report.sites; NULL: no grid */
	size_t nsites;
};

/* ---- the main script, line by line (lines.c) --------------------------- */

/* What happened while one line of the main script was the innermost frame
 * of that script in the thread that did it (a call on the line counts what
 * the callee did). */
struct mt_script_line {
	uint32_t file;        /* index into mt_report.strings */
	uint64_t line;
	uint64_t allocs, frees;            /* blocks, each once at its topmost domain */
	uint64_t bytes_allocated, bytes_freed;
	uint64_t peak_bytes;               /* live at the heap peak, made by this line */
	uint64_t arenas_allocated, arenas_freed, pools_allocated, pools_freed;
	uint64_t list_resizes;
	uint64_t dom_allocs[MT_DOM_COUNT], dom_bytes[MT_DOM_COUNT]; /* allocs by domain */
};

/* The source of a script, read when the report is made; lines NULL when
 * the file could not be read. */
struct mt_source {
	uint32_t file;
	char **lines;   /* lines[i] is line i + 1, without its newline */
	size_t nlines;
};

/* ---- views ------------------------------------------------------------- */

enum mt_sort {
	MT_SORT_PEAK,      /* live bytes at the heap peak */
	MT_SORT_ALLOCS,    /* allocations */
	MT_SORT_BYTES,     /* bytes allocated */
	MT_SORT_LEAKED,    /* bytes live at exit */
	MT_SORT_TEMPORARY, /* temporary allocations */
};
enum mt_group { MT_GROUP_LINE, MT_GROUP_FUNCTION, MT_GROUP_FILE };

/* One end of a time window: microseconds since the start, or the first
 * mark with this label (from: of the trace; to: after the window opened). */
struct mt_bound {
	bool set;
	uint64_t us;
	const char *mark; /* not owned; NULL: us */
};

/* What a report shows.  The first part is applied while the trace is read,
 * since it changes what the peak, the leaks and the temporaries are; the
 * second by the outputs.  All zero: the whole trace, every site. */
struct mt_view {
	struct mt_bound from, to;
	unsigned domains;    /* bit per domain to count; 0: all */
	bool thread_set;
	uint64_t thread;     /* only blocks this thread allocated */
	bool no_lines;       /* skip the per-line view of the main script */

	enum mt_sort sort;   /* of the sites */
	enum mt_group by;
	size_t top;          /* rows; 0: the output's default */
	uint64_t threshold;  /* sites whose sorted figure, in bytes, is below: left out */
	bool inverted;       /* flame graph: innermost frames at the root */
	bool folded_lines;   /* folded: "function (file:line)" frames */
	enum mt_sort flame_value; /* what the flame graph counts; 0 (peak) means bytes */
};

/* Allocations per thread, in view (at their topmost domain). */
struct mt_thread_stats {
	uint64_t tid, allocs, bytes;
};

/* ---- the mmap domain (mappings.c) ------------------------------------- */

/* A mapping live at exit. */
struct mt_mapping_info {
	uint64_t address, bytes;
	uint32_t prot, flags; /* as given to mmap (mremap keeps the first's) */
	uint32_t frame;       /* the thread's Python location then (frames), 0: none */
};

#define MT_MAPPINGS_SHOWN 10

struct mt_mappings {
	/* allocs: mmaps, frees: munmaps, reallocs: mremaps, failed: either
	 * failing; bytes are whole pages; live_blocks: mappings (a partial
	 * munmap can leave two); unmatched_frees: munmaps that unmapped none
	 * of the program's mappings; inconsistent: mmaps over a live mapping
	 * without MAP_FIXED (the trace missed its munmap) */
	struct mt_dom_stats stats;
	uint64_t anon_bytes, file_bytes;     /* live now, at exit when done */
	struct mt_mapping_info *largest;     /* live at exit, largest first */
	size_t nlargest;
};

/* ---- what the OS sees (memory.c) ---------------------------------------- */

/* A SAMPLE with the trace's own figures at its place in the stream. */
struct mt_mem_point {
	uint64_t time_us;
	uint64_t have;          /* bits of enum mt_sample_field the sample holds */
	uint64_t v[MT_S_COUNT]; /* its figures */
	uint64_t malloc_live;   /* requested bytes live in the malloc domain */
	uint64_t objects;       /* requested bytes of blocks in pymalloc's pools */
	uint64_t unpooled;      /* of PyMem/PyObject blocks counted by themselves (mimalloc's) */
	uint64_t arenas;        /* pymalloc arenas mapped, in bytes */
	uint64_t pools;         /* bytes of pools in use */
	uint64_t empty_arenas;  /* bytes of arenas without a pool in use */
	uint64_t touched;       /* bytes of arena pools ever used (written to) */
	uint64_t frame_stacks;  /* CPython's other arena-allocator blocks */
	uint64_t mmap_anon, mmap_file; /* the mmap domain */
};

/* The live malloc block with the highest address below glibc's top chunk
 * in the brk heap: while it lives, the heap cannot shrink below it. */
struct mt_top_block {
	bool known;          /* computed (see memory.c for when) */
	bool found;          /* a live block was there */
	uint64_t top;        /* where the top chunk begins: brk - keepcost */
	uint64_t address, size;
	uint32_t site;       /* index into mt_report.sites */
	uint64_t gap;        /* bytes between its chunk and the top chunk */
	uint64_t below_free; /* glibc's free bytes below the top (fordblks - keepcost) */
};

#define MT_MEM_POINTS_MAX 1000

struct mt_memory {
	uint64_t rss_ms;      /* the sampling interval; 0: not sampled */
	bool have_rss_ms;     /* the header said (traces before format 1.1 do not) */
	uint64_t start_brk;   /* 0: unknown */
	int malloc_kind;      /* enum mt_malloc_kind, 0: unknown */
	uint64_t samples, sample_us; /* the writer's, from the footer */
	uint64_t interval_us;        /* of the series, doubling as it fills */
	struct mt_mem_point *points; /* the series: per interval, the highest RSS */
	size_t npoints;
	struct mt_mem_point *at_marks; /* the samples taken at marks */
	size_t nat_marks;
	bool have_peak, have_exit;
	struct mt_mem_point peak, exit; /* the highest RSS; the last sample */
	struct mt_top_block peak_top, exit_top;
	struct mt_top_block *marks_top; /* per at_marks entry */
};

/* "Why RSS is higher than the requested heap" at one sample: RSS split
 * into the requested heap and the parts that make up the difference.  A
 * part that the sample could not measure has measured = false. */
enum mt_part {
	MT_PART_FILE,          /* file-backed pages: RssFile + RssShmem */
	MT_PART_GLIBC_TOP,     /* free at the top of glibc's heap: keepcost */
	MT_PART_GLIBC_BELOW,   /* free below the top: fordblks - keepcost */
	MT_PART_GLIBC_EXTRA,   /* glibc in use beyond the requests */
	MT_PART_POOL_FREE,     /* pools in use, beyond their objects' requests */
	MT_PART_EMPTY_POOLS,   /* empty pools in arenas that hold objects */
	MT_PART_EMPTY_ARENAS,  /* arenas without a pool in use */
	MT_PART_FRAME_STACKS,  /* CPython's frame stacks */
	MT_PART_MMAP,          /* the program's anonymous mappings */
	MT_PART_MEMTRACE,      /* memtrace's own resident memory */
	MT_PART_BRK_UNTOUCHED, /* minus: brk heap pages not resident */
	MT_PART_ARENA_UNTOUCHED, /* minus: arena pages pymalloc never used */
	MT_PART_REST,          /* the rest of RssAnon, not told apart */
	MT_PART_COUNT,
};

struct mt_report;

struct mt_breakdown {
	bool have_rss;
	uint64_t rss, anon, file, shmem, requested;
	bool measured[MT_PART_COUNT];
	int64_t bytes[MT_PART_COUNT];
};

/* The requested heap at a sample: malloc and CPython's objects. */
uint64_t mt_mem_requested(const struct mt_mem_point *p);
void mt_memory_breakdown(const struct mt_report *rep, const struct mt_mem_point *p,
			 struct mt_breakdown *b);
/* "file_backed", ... as used in every output; and what a part is. */
const char *mt_part_key(int part);
const char *mt_part_text(int part);
const char *mt_part_label(int part); /* short: for tables */
/* The sample's RSS, false when it has none. */
bool mt_mem_rss(const struct mt_mem_point *p, uint64_t *rss);

struct mt_report {
	struct mt_process process;
	struct mt_view view; /* the view it was built with */
	/* the window, when --from or --to was given: where it opened and
	 * closed (closed: before the trace ended) */
	struct {
		bool opened, closed;
		uint64_t from_us, to_us;
	} window;
	struct {
		bool complete;  /* the trace ends with a footer */
		int end_reason; /* enum mt_end_reason or MT_REASON_* */
		uint64_t blocks; /* event blocks */
		uint64_t duration_us, threads;
		int exit_status; /* from the footer; -1: not known */
	} trace;
	struct {
		uint64_t total, lost, producer_waits;
	} events;
	struct mt_dom_stats dom[MT_DOM_COUNT];

	/* heap = malloc domain + CPython arena-allocator blocks + PyMem and
	 * PyObject blocks that sit in neither (mimalloc's, report.c) */
	struct {
		uint64_t live, peak, peak_time_us;
		uint64_t snapshot_us; /* when the sites were taken at the peak */
		uint64_t live_blocks; /* those blocks at exit */
		uint64_t own_in;      /* PyMem/PyObject blocks that came into the heap
				       * by themselves (allocs and reallocs) */
	} heap;
	uint64_t temp_allocs, temp_bytes;
	struct mt_hist_bucket hist[MT_HIST_BUCKETS];

	/* strings[i] for i >= 1: STRING definitions, NUL-terminated copies */
	struct mt_bytes *strings;
	size_t nstrings;
	struct mt_frame *frames; /* [0] unused */
	size_t nframes;
	struct mt_site *sites;
	size_t nsites;

	struct mt_pools pools;
	struct mt_lists lists;
	struct mt_timeline timeline;
	struct mt_grid grid;
	struct mt_mark *marks;
	size_t nmarks;
	uint64_t marks_total; /* MARK records, some maybe folded */

	struct mt_native *native; /* stacks.h: native stacks, NULL when not recorded */
	bool per_thread;          /* built with MT_BUILD_PER_THREAD */

	struct mt_thread_stats *threads;
	size_t nthreads;
	struct mt_script_line *lines; /* in file order */
	size_t nlines;
	struct mt_source *sources;    /* of the files in lines */
	size_t nsources;
	struct mt_mappings mappings; /* the mmap domain */
	struct mt_memory memory;     /* samples of what the OS saw */

	char error[200]; /* why the build failed or stopped early */
	/* Notes shown first by every rendering (`memtrace report --intro`):
	 * paragraphs separated by blank lines.  Not owned; NULL: none. */
	const char *intro;
};

enum mt_report_status {
	MT_REPORT_OK,        /* read to the end; trace.complete tells if it had a footer */
	MT_REPORT_TORN,      /* the last block is torn: figures cover the blocks before */
	MT_REPORT_BAD_TRACE, /* not a trace, a newer format, or corrupt: no figures */
	MT_REPORT_FAILED,    /* read error or out of memory: no figures */
};

/* Called now and then while a trace is read: bytes read so far. */
typedef void mt_progress_fn(void *arg, uint64_t offset);

/* Streams the trace in f.  rep must be released with mt_report_free whatever
 * the result; on failure rep->error says why.  view NULL: the default. */
enum mt_report_status mt_report_build(FILE *f, struct mt_report *rep);

/* What a build may keep beyond what the report shows. */
enum mt_build_flags {
	/* Sites per (place, domain, thread), and with native stacks not
	 * merged by identity: one per (native stack, Python location, domain,
	 * thread).  The samples of the profile exports (export.h); the other
	 * outputs want the merged sites of a plain build. */
	MT_BUILD_PER_THREAD = 1 << 0,
	/* Each site's figures over time (struct mt_grid), for the HTML page's
	 * time window.  Only with MT_BUILD_PER_THREAD, whose sites are never
	 * merged after the build. */
	MT_BUILD_TIME_GRID = 1 << 1,
};
enum mt_report_status mt_report_build_flags(FILE *f, struct mt_report *rep,
					    const struct mt_view *view, unsigned flags,
					    mt_progress_fn *progress, void *arg);
void mt_report_free(struct mt_report *rep);
void mt_grid_free(struct mt_grid *g);

/* Only the header of the trace in f, into *p (free with
 * mt_process_free): 0, or -1 when it is no readable trace. */
int mt_report_read_header(FILE *f, struct mt_process *p);
void mt_process_free(struct mt_process *p);

/* "malloc", "pymem_raw", ... as used in every output. */
const char *mt_domain_name(int dom);
/* "exit", "exec", "_exit", "unknown", or NULL for MT_REASON_NONE. */
const char *mt_end_reason_name(int reason);
/* For a CPython trace: what its PyObject and PyMem blocks came from,
 * "pymalloc" (arenas), "mimalloc" (counted in the heap block by block) or
 * "malloc"; and, when pymalloc served none of them, why there are no arenas
 * or pools (else NULL). */
const char *mt_object_allocator(const struct mt_report *rep);
const char *mt_no_pymalloc_reason(const struct mt_report *rep);

/* Helpers for the outputs.  Strings of a site: "<native>" and "" for
 * frame 0; never NULL. */
const char *mt_report_string(const struct mt_report *rep, uint32_t idx);
const char *mt_site_file(const struct mt_report *rep, const struct mt_site *s);
const char *mt_site_function(const struct mt_report *rep, const struct mt_site *s);
uint64_t mt_site_line(const struct mt_report *rep, const struct mt_site *s);
/* The source text of a script line, NULL when unknown. */
const char *mt_line_source(const struct mt_report *rep, const struct mt_script_line *l);
/* The label of a step: its mark's text or "(before first mark)". */
const char *mt_mark_label(const struct mt_report *rep, const struct mt_mark *m);

/* Names of the view's choices as options and JSON spell them
 * ("peak", "allocs", "bytes", "leaked", "temporary"; "line", "function",
 * "file"), and back (-1: no such name). */
const char *mt_sort_name(enum mt_sort sort);
const char *mt_group_name(enum mt_group by);
int mt_sort_parse(const char *name);
int mt_group_parse(const char *name);
/* "123", "64K", "1.5M", "2GiB" (powers of 1024) into *out, as --threshold
 * and --fail-on spell byte counts; false if not a byte count. */
bool mt_bytes_parse(const char *s, uint64_t *out);
/* The default view: the whole trace, by peak, by line; the flame graph
 * counts bytes. */
void mt_view_default(struct mt_view *v);

/* The figure of a site that `sort` ranks by. */
uint64_t mt_site_key(const struct mt_site *s, enum mt_sort sort);

/* The sites as the view shows them: grouped by rep->view.by (sites of one
 * line, function or file and domain summed; the stack shown is the one of
 * the member that allocated the most bytes), those with a nonzero figure
 * for `sort` (all: any nonzero figure) and whose sorted figure in bytes is
 * at least the view's threshold, best first (then by bytes), at most max.
 * The rows are copies. */
struct mt_rows {
	struct mt_site *v;
	size_t n;     /* rows kept */
	size_t total; /* rows before the cut at max */
};
/* 0, or -1 when out of memory.  Free with mt_rows_free. */
int mt_site_rows(const struct mt_report *rep, enum mt_sort sort, bool all, size_t max,
		 struct mt_rows *out);
void mt_rows_free(struct mt_rows *r);
/* Where a row is, at the view's grouping: file, function and line (by
 * function: the function's first line, 0 when unknown; by file: "" and 0). */
void mt_row_where(const struct mt_report *rep, const struct mt_site *s, const char **file,
		  const char **function, uint64_t *line);

#endif
