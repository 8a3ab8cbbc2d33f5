/*
 * symbolize.h - native return addresses to functions, source files and
 * lines, with elfutils' libdw.  Each loaded object of the trace (its path,
 * load bias and build id) is opened on first use, with its separate debug
 * information when the system has it (/usr/lib/debug, .gnu_debuglink);
 * an object whose build id differs from the recorded one (rebuilt since)
 * is not trusted and yields "module+0xoffset" frames.  Results are cached
 * per (object, address): the reporter symbolizes only the frames it shows.
 */
#ifndef MEMTRACE_SYMBOLIZE_H
#define MEMTRACE_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One source-level frame.  An address inside inlined code gives several:
 * the real function first, then each inlined callee, the innermost last;
 * each one's file and line are where it was executing (for all but the
 * innermost: the call site of the next one).  Strings live as long as the
 * symbolizer; file is NULL and line 0 when unknown. */
struct mt_sym {
	const char *function; /* demangled when C++; "module+0x1f2e" when unknown */
	const char *file;
	uint64_t line;
	bool known;           /* false: the function is unknown */
};

struct mt_symbolizer;

struct mt_symbolizer *mt_sym_new(void);
void mt_sym_free(struct mt_symbolizer *s);

/* The frames of return address ip (the lookup is done at ip - 1, inside
 * the call instruction) in object `module` (a caller's index, used only
 * for the cache) loaded from path at load bias `bias`, with build id
 * build_id (hex; NULL or "" when unknown).  path NULL: an address outside
 * every known object.  Returns the count (at least 1, 0 only when out of
 * memory) and sets *out to them, outermost first. */
size_t mt_sym_lookup(struct mt_symbolizer *s, uint32_t module, const char *path, uint64_t bias,
		     const char *build_id, uint64_t ip, const struct mt_sym **out);

/* Only the name of the function holding ip, from the ELF symbol table
 * (cheaper than mt_sym_lookup: no DWARF, no inlined frames); "" when
 * unknown.  Not demangled. */
const char *mt_sym_name(struct mt_symbolizer *s, uint32_t module, const char *path, uint64_t bias,
			const char *build_id, uint64_t ip);

#endif
