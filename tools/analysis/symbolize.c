/*
 * symbolize.c - see symbolize.h.  One Dwfl session per object (objects of
 * a trace may have occupied the same addresses one after the other), made
 * with dwfl_report_elf at the recorded load bias.  For an address:
 *
 *   - DWARF: dwarf_getscopes gives the nesting of subprogram and
 *     inlined_subroutine DIEs; each becomes a frame, the line table gives
 *     the innermost one's file and line and each inlined_subroutine's
 *     DW_AT_call_file/DW_AT_call_line its caller's;
 *   - else the ELF symbol table (or the dynamic one) with the line table if
 *     any;
 *   - else "module+0xoffset" (offset from the object's load bias, what
 *     addr2line -e module takes).
 *
 * C++ names are demangled with __cxa_demangle when libstdc++ can be loaded
 * (dlopen: the reporter itself is C and does not link it).
 */
#define _GNU_SOURCE
#include "symbolize.h"

#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"

#define MAX_INLINE 64 /* frames per address */

struct fsym {
	uint64_t lo, hi;
	const char *name; /* in the object's string table */
};

struct symmod {
	Dwfl *dwfl;
	Dwfl_Module *mod;
	bool tried, syms_loaded;
	struct fsym *syms; /* its function symbols by address: libdwfl's own
			      address lookup is a linear search */
	size_t nsyms;
};

struct mt_symbolizer {
	struct symmod *mods;
	size_t nmods;
	struct heapmap cache; /* module << 48 | ip -> first << 8 | count */
	struct heapmap names; /* module << 48 | ip -> index into strings + 1 */
	struct mt_sym *frames;
	size_t nframes, frames_cap;
	char **strings; /* owned copies */
	size_t nstrings, strings_cap;
	void *libstdcxx;
	char *(*demangle)(const char *, char *, size_t *, int *);
	bool demangle_tried;
};

struct mt_symbolizer *mt_sym_new(void)
{
	struct mt_symbolizer *s = calloc(1, sizeof *s);
	if (s && hm_init(&s->cache) | hm_init(&s->names)) {
		hm_free(&s->cache);
		hm_free(&s->names);
		free(s);
		return NULL;
	}
	return s;
}

void mt_sym_free(struct mt_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmods; i++)
	{
		if (s->mods[i].dwfl)
			dwfl_end(s->mods[i].dwfl);
		free(s->mods[i].syms);
	}
	for (size_t i = 0; i < s->nstrings; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->mods);
	free(s->frames);
	hm_free(&s->cache);
	hm_free(&s->names);
	if (s->libstdcxx)
		dlclose(s->libstdcxx);
	free(s);
}

/* Keeps str (malloc'd, may be NULL) and returns it. */
static const char *keep(struct mt_symbolizer *s, char *str)
{
	if (!str)
		return NULL;
	if (s->nstrings == s->strings_cap) {
		size_t cap = s->strings_cap ? 2 * s->strings_cap : 256;
		char **p = realloc(s->strings, cap * sizeof *p);
		if (!p) {
			free(str);
			return NULL;
		}
		s->strings = p;
		s->strings_cap = cap;
	}
	s->strings[s->nstrings++] = str;
	return str;
}

static const char *keep_copy(struct mt_symbolizer *s, const char *str)
{
	return str ? keep(s, strdup(str)) : NULL;
}

/* The demangled name of a C++ symbol, else the name itself. */
static const char *name_of(struct mt_symbolizer *s, const char *name)
{
	if (!name)
		return NULL;
	if (name[0] == '_' && name[1] == 'Z') {
		if (!s->demangle_tried) {
			s->demangle_tried = true;
			s->libstdcxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
			if (s->libstdcxx)
				*(void **)&s->demangle = dlsym(s->libstdcxx, "__cxa_demangle");
		}
		int status = -1;
		char *d = s->demangle ? s->demangle(name, NULL, NULL, &status) : NULL;
		if (d && status == 0)
			return keep(s, d);
		free(d);
	}
	return keep_copy(s, name);
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static bool same_build_id(Dwfl_Module *m, const char *want)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	if (!want || !*want)
		return true;
	int n = dwfl_module_build_id(m, &bits, &vaddr);
	if (n <= 0 || strlen(want) != 2 * (size_t)n)
		return n <= 0; /* the file has none: nothing to compare */
	char hex[3];
	for (int i = 0; i < n; i++) {
		snprintf(hex, sizeof hex, "%02x", bits[i]);
		if (memcmp(hex, want + 2 * i, 2))
			return false;
	}
	return true;
}

static Dwfl_Module *open_module(struct mt_symbolizer *s, uint32_t idx, const char *path,
				uint64_t bias, const char *build_id)
{
	if (idx >= s->nmods) {
		size_t n = idx + 16;
		struct symmod *p = realloc(s->mods, n * sizeof *p);
		if (!p)
			return NULL;
		memset(p + s->nmods, 0, (n - s->nmods) * sizeof *p);
		s->mods = p;
		s->nmods = n;
	}
	struct symmod *sm = &s->mods[idx];
	if (sm->tried)
		return sm->mod;
	sm->tried = true;
	if (!path || path[0] != '/')
		return NULL; /* the vdso, or an object without a file */
	sm->dwfl = dwfl_begin(&callbacks);
	if (!sm->dwfl)
		return NULL;
	dwfl_report_begin(sm->dwfl);
	const char *base = strrchr(path, '/');
	Dwfl_Module *m = dwfl_report_elf(sm->dwfl, base ? base + 1 : path, path, -1, bias, false);
	dwfl_report_end(sm->dwfl, NULL, NULL);
	if (m && !same_build_id(m, build_id))
		m = NULL;
	sm->mod = m;
	return m;
}

/* A DIE's name: its linkage name demangled (C++), else its name. */
static const char *die_name(struct mt_symbolizer *s, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!linkage)
		linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (linkage)
		return name_of(s, linkage);
	return keep_copy(s, dwarf_diename(die));
}

static int cmp_fsym(const void *a, const void *b)
{
	const struct fsym *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The function symbol holding addr in object idx (opened), NULL if none. */
static const char *symbol_at(struct mt_symbolizer *s, uint32_t idx, GElf_Addr addr)
{
	struct symmod *sm = &s->mods[idx];
	if (!sm->syms_loaded) {
		sm->syms_loaded = true;
		int n = dwfl_module_getsymtab(sm->mod);
		sm->syms = n > 0 ? malloc((size_t)n * sizeof *sm->syms) : NULL;
		for (int i = 1; sm->syms && i < n; i++) {
			GElf_Sym sym;
			GElf_Addr value;
			const char *name = dwfl_module_getsym_info(sm->mod, i, &sym, &value, NULL,
								   NULL, NULL);
			if (name && *name && GELF_ST_TYPE(sym.st_info) == STT_FUNC && value)
				sm->syms[sm->nsyms++] =
					(struct fsym){ value, value + (sym.st_size ? sym.st_size : 1),
						       name };
		}
		if (sm->nsyms)
			qsort(sm->syms, sm->nsyms, sizeof *sm->syms, cmp_fsym);
	}
	size_t lo = 0, hi = sm->nsyms;
	while (lo < hi) { /* the first symbol above addr */
		size_t mid = lo + (hi - lo) / 2;
		if (sm->syms[mid].lo <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* aliases share an address; sizes differ: any that holds addr */
	for (size_t i = lo; i-- > 0 && sm->syms[i].lo + (1u << 20) > addr;)
		if (addr < sm->syms[i].hi)
			return sm->syms[i].name;
	return NULL;
}

static int push(struct mt_symbolizer *s, const char *function, const char *file, uint64_t line,
		bool known)
{
	if (s->nframes == s->frames_cap) {
		size_t cap = s->frames_cap ? 2 * s->frames_cap : 256;
		struct mt_sym *p = realloc(s->frames, cap * sizeof *p);
		if (!p)
			return -1;
		s->frames = p;
		s->frames_cap = cap;
	}
	s->frames[s->nframes++] = (struct mt_sym){ function ? function : "??", file, line, known };
	return 0;
}

/* Frames from the DWARF scopes at addr, innermost first; how many. */
static size_t dwarf_frames(struct mt_symbolizer *s, Dwfl_Module *m, GElf_Addr addr)
{
	Dwarf_Addr bias;
	Dwarf_Die *cu = dwfl_module_addrdie(m, addr, &bias);
	if (!cu)
		return 0;
	const char *file = NULL;
	int line = 0;
	Dwfl_Line *l = dwfl_module_getsrc(m, addr);
	if (l)
		file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
	/* dwarf_getscopes goes from an inlined_subroutine to its abstract
	 * origin's scopes; the DIE nesting from the innermost scope gives the
	 * callers it was inlined into */
	Dwarf_Die *scopes = NULL, innermost;
	int n = dwarf_getscopes(cu, addr - bias, &scopes);
	if (n > 0) {
		innermost = scopes[0];
		free(scopes);
		scopes = NULL;
		n = dwarf_getscopes_die(&innermost, &scopes);
	}
	size_t pushed = 0;
	for (int i = 0; i < n && pushed < MAX_INLINE; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine &&
		    tag != DW_TAG_entry_point)
			continue;
		if (push(s, die_name(s, &scopes[i]), keep_copy(s, file), line > 0 ? (uint64_t)line : 0,
			 true))
			break;
		pushed++;
		if (tag != DW_TAG_inlined_subroutine)
			break;
		/* the caller's location: this inlined call's site */
		Dwarf_Attribute attr;
		Dwarf_Word w;
		Dwarf_Files *files;
		size_t nfiles;
		file = NULL;
		line = 0;
		if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &w) == 0 &&
		    dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && w < nfiles)
			file = dwarf_filesrc(files, w, NULL, NULL);
		if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &w) == 0)
			line = (int)w;
	}
	free(scopes);
	return pushed;
}

static size_t resolve(struct mt_symbolizer *s, uint32_t module, const char *path, uint64_t bias,
		      const char *build_id, uint64_t ip)
{
	GElf_Addr addr = ip ? ip - 1 : 0;
	Dwfl_Module *m = path ? open_module(s, module, path, bias, build_id) : NULL;
	if (m) {
		size_t n = dwarf_frames(s, m, addr);
		if (n)
			return n;
		const char *name = symbol_at(s, module, addr);
		if (name) {
			const char *file = NULL;
			int line = 0;
			Dwfl_Line *l = dwfl_module_getsrc(m, addr);
			if (l)
				file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
			return push(s, name_of(s, name), keep_copy(s, file),
				    line > 0 ? (uint64_t)line : 0, true) ? 0 : 1;
		}
	}
	char *name = NULL;
	const char *base = path ? strrchr(path, '/') : NULL;
	int r = path ? asprintf(&name, "%s+0x%llx", base ? base + 1 : path,
				(unsigned long long)(ip - bias))
		     : asprintf(&name, "0x%llx", (unsigned long long)ip);
	if (r < 0)
		name = NULL;
	return push(s, keep(s, name), NULL, 0, false) ? 0 : 1;
}

size_t mt_sym_lookup(struct mt_symbolizer *s, uint32_t module, const char *path, uint64_t bias,
		     const char *build_id, uint64_t ip, const struct mt_sym **out)
{
	uint64_t key = ip ^ ((uint64_t)module << 48), v, unused;
	if (hm_get(&s->cache, key, &v)) {
		*out = s->frames + (v >> 8);
		return v & 0xff;
	}
	size_t first = s->nframes, n = resolve(s, module, path, bias, build_id, ip);
	if (!n)
		return 0;
	/* innermost first from libdw: outermost first for the callers */
	for (size_t i = 0; i < n / 2; i++) {
		struct mt_sym t = s->frames[first + i];
		s->frames[first + i] = s->frames[first + n - 1 - i];
		s->frames[first + n - 1 - i] = t;
	}
	hm_put(&s->cache, key, (uint64_t)first << 8 | n, &unused);
	*out = s->frames + first;
	return n;
}

const char *mt_sym_name(struct mt_symbolizer *s, uint32_t module, const char *path, uint64_t bias,
			const char *build_id, uint64_t ip)
{
	uint64_t key = ip ^ ((uint64_t)module << 48), v, unused;
	if (hm_get(&s->names, key, &v))
		return v ? s->strings[v - 1] : "";
	Dwfl_Module *m = path ? open_module(s, module, path, bias, build_id) : NULL;
	const char *name = m ? symbol_at(s, module, ip - 1) : NULL;
	const char *kept = keep_copy(s, name);
	hm_put(&s->names, key, kept ? s->nstrings : 0, &unused);
	return kept ? kept : "";
}
