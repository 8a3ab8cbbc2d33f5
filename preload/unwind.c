/*
 * unwind.c - native stacks without a general unwinder (see unwind.h).
 *
 * libunwind's unw_backtrace costs about 30 ns a call and 6 ns a frame here:
 * setting up its cursor, and a lookup in a large table for every frame,
 * whose latency the next frame waits on.  Nearly every frame of compiled
 * x86-64 code follows the simplest rule there is: CFA = rsp or rbp +
 * offset, return address at CFA - 8, rbp unchanged or saved at a fixed
 * offset from the CFA.  This module asks libdw for the rule at each return
 * address once and keeps it in a table shared by all threads, and in a
 * small one of each thread's.
 *
 * Successive allocations of a thread share most of their callers.  So each
 * thread keeps its last stack, outermost first, each frame with its stack
 * pointer and a hash of it and its callers; a walk stops at the first
 * frame that is that stack's frame at the same stack pointer with the same
 * callers (checked against the stack's memory, all loads at once), and
 * only the new frames are walked, stored and hashed.  The tracer's own
 * frames keep frame pointers, so the walk starts in the program's code.
 */
#define _GNU_SOURCE
#include "unwind.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle.h"
#include "meta.h"

#define RULES_BITS 16 /* 65536 return addresses: large C++ programs have tens of thousands */
#define RULES (1u << RULES_BITS)
#define PROBES 16
#define OBJECTS_MAX 1024
#define OWN_FRAMES_MAX 16

/* DWARF register numbers on x86-64 */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* A rule, packed in one word so that readers need no lock:
 * bits 0-31 the CFA's offset, 32-47 where the caller's rbp is saved
 * (from the CFA; 0: unchanged, RBP_LOST: not recoverable), bit 48 set when
 * the CFA is rbp-based, bits 56-63 the kind. */
enum { RULE_NONE = 1, RULE_CALL = 2, RULE_LAST = 3 };
#define RBP_LOST INT16_MIN
#define RULE(kind, cfa_rbp, cfa_off, rbp_off)                                       \
	((uint64_t)(kind) << 56 | (uint64_t)!!(cfa_rbp) << 48 |                        \
	 (uint64_t)(uint16_t)(rbp_off) << 32 | (uint32_t)(cfa_off))
#define RULE_KIND(w) ((int)((w) >> 56))
#define RULE_CFA_RBP(w) ((int)(((w) >> 48) & 1))
#define RULE_CFA_OFF(w) ((int32_t)(uint32_t)(w))
#define RULE_RBP_OFF(w) ((int16_t)(uint16_t)((w) >> 32))

static struct {
	int on;
	uintptr_t own_start, own_end;
	struct {
		uintptr_t ip; /* a return address; 0: empty */
		uint64_t rule;
	} rules[RULES];
	struct {
		const void *map; /* the object's link_map */
		Elf *elf;
		Dwarf_CFI *cfi;  /* NULL: the object has none we can read */
	} objects[OBJECTS_MAX];
	int nobjects;
	unsigned generation; /* bumped when rules are forgotten */
	/* libdw and libelf, loaded privately */
	unsigned (*elf_version)(unsigned);
	Elf *(*elf_begin)(int, Elf_Cmd, Elf *);
	int (*elf_cntl)(Elf *, Elf_Cmd);
	int (*elf_end)(Elf *);
	Dwarf_CFI *(*getcfi_elf)(Elf *);
	int (*cfi_end)(Dwarf_CFI *);
	int (*cfi_addrframe)(Dwarf_CFI *, Dwarf_Addr, Dwarf_Frame **);
	int (*frame_info)(Dwarf_Frame *, Dwarf_Addr *, Dwarf_Addr *, bool *);
	int (*frame_cfa)(Dwarf_Frame *, Dwarf_Op **, size_t *);
	int (*frame_register)(Dwarf_Frame *, int, Dwarf_Op *, Dwarf_Op **, size_t *);
} uw;

#define LOCAL_RULES MT_UNWIND_LOCAL_RULES
#define RBP_VALID (1ull << 49) /* in a walked frame's rule: its rbp is known */

/* The calling thread's stack, found once: the walk reads nothing outside. */
static int thread_stack(struct mt_unwind_thread *t)
{
	if (!t->hi && !t->failed) {
		pthread_attr_t attr;
		void *base;
		size_t size;
		t->failed = 1;
		if (!pthread_getattr_np(pthread_self(), &attr)) {
			if (!pthread_attr_getstack(&attr, &base, &size)) {
				t->lo = (uintptr_t)base;
				t->hi = (uintptr_t)base + size;
				t->failed = 0;
			}
			pthread_attr_destroy(&attr);
		}
	}
	return t->failed ? -1 : 0;
}

/* ---- learning rules (under the meta lock) ------------------------------------ */

static Dwarf_CFI *object_cfi(const struct link_map *map)
{
	for (int i = 0; i < uw.nobjects; i++)
		if (uw.objects[i].map == map)
			return uw.objects[i].cfi;
	if (uw.nobjects == OBJECTS_MAX)
		return NULL;
	Elf *elf = NULL;
	Dwarf_CFI *cfi = NULL;
	int fd = mt_fd_off_std(open(map->l_name[0] ? map->l_name : "/proc/self/exe",
				    O_RDONLY | O_CLOEXEC));
	if (fd >= 0) {
		elf = uw.elf_begin(fd, ELF_C_READ_MMAP, NULL);
		cfi = elf ? uw.getcfi_elf(elf) : NULL;
		/* the object stays mapped, not open: programs count their fds
		 * (ELF_C_FDREAD also lets go of the descriptor) */
		if (elf && uw.elf_cntl(elf, ELF_C_FDREAD)) {
			if (cfi)
				uw.cfi_end(cfi);
			cfi = NULL;
		}
		close(fd);
	}
	uw.objects[uw.nobjects++] = (typeof(uw.objects[0])){map, elf, cfi};
	return cfi;
}

/* DW_OP_call_frame_cfa, DW_OP_plus_uconst N: saved at CFA + N. */
static int cfa_offset(const Dwarf_Op *ops, size_t n, int64_t *off)
{
	if (n != 2 || ops[0].atom != DW_OP_call_frame_cfa || ops[1].atom != DW_OP_plus_uconst)
		return -1;
	*off = (int64_t)ops[1].number;
	return 0;
}

static uint64_t frame_rule(Dwarf_Frame *f)
{
	bool signal;
	Dwarf_Op mem[3], *ops;
	size_t n;
	int64_t ra_off, rbp_off = 0;
	if (uw.frame_info(f, NULL, NULL, &signal) != REG_RA || signal ||
	    uw.frame_cfa(f, &ops, &n) || n != 1 || ops[0].atom != DW_OP_bregx ||
	    (ops[0].number != REG_RSP && ops[0].number != REG_RBP) ||
	    (int64_t)ops[0].number2 != (int32_t)ops[0].number2)
		return RULE(RULE_NONE, 0, 0, 0);
	int cfa_rbp = ops[0].number == REG_RBP;
	int32_t cfa_off = (int32_t)ops[0].number2;
	if (uw.frame_register(f, REG_RA, mem, &ops, &n))
		return RULE(RULE_NONE, 0, 0, 0);
	if (n == 0 && ops == mem) /* no return address: the outermost frame */
		return RULE(RULE_LAST, 0, 0, 0);
	if (cfa_offset(ops, n, &ra_off) || ra_off != -8 ||
	    uw.frame_register(f, REG_RBP, mem, &ops, &n))
		return RULE(RULE_NONE, 0, 0, 0);
	if (n == 0)
		rbp_off = ops == mem ? RBP_LOST : 0;
	else if (cfa_offset(ops, n, &rbp_off) || !rbp_off || rbp_off != (int16_t)rbp_off ||
		 rbp_off == RBP_LOST)
		return RULE(RULE_NONE, 0, 0, 0);
	return RULE(RULE_CALL, cfa_rbp, cfa_off, rbp_off);
}

/* The rule at return address ip: the call instruction's, just before it. */
static uint64_t describe(uintptr_t ip)
{
	Dl_info info;
	struct link_map *map = NULL;
	Dwarf_Frame *f;
	if (!dladdr1((void *)(ip - 1), &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
		return RULE(RULE_NONE, 0, 0, 0);
	Dwarf_CFI *cfi = object_cfi(map);
	if (!cfi || uw.cfi_addrframe(cfi, ip - 1 - map->l_addr, &f))
		return RULE(RULE_NONE, 0, 0, 0);
	uint64_t rule = frame_rule(f);
	free(f);
	return rule;
}

static uint32_t rule_slot(uintptr_t ip)
{
	return (uint32_t)((ip * 0x9e3779b97f4a7c15ull) >> (64 - RULES_BITS));
}

static uint64_t learn(uintptr_t ip)
{
	mt_meta_lock();
	uint64_t rule = describe(ip);
	for (uint32_t p = 0, h = rule_slot(ip); p < PROBES; p++) {
		typeof(uw.rules[0]) *s = &uw.rules[(h + p) & (RULES - 1)];
		if (s->ip == ip)
			break;
		if (!s->ip) {
			__atomic_store_n(&s->rule, rule, __ATOMIC_RELAXED);
			__atomic_store_n(&s->ip, ip, __ATOMIC_RELEASE);
			break;
		}
	}
	mt_meta_unlock();
	return rule;
}

void mt_unwind_forget(void)
{
	for (uint32_t i = 0; i < RULES; i++) {
		__atomic_store_n(&uw.rules[i].ip, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&uw.rules[i].rule, 0, __ATOMIC_RELEASE);
	}
	for (int i = 0; i < uw.nobjects; i++) {
		if (uw.objects[i].cfi)
			uw.cfi_end(uw.objects[i].cfi);
		if (uw.objects[i].elf)
			uw.elf_end(uw.objects[i].elf);
	}
	uw.nobjects = 0;
	__atomic_add_fetch(&uw.generation, 1, __ATOMIC_RELEASE);
}

/* ---- walking ----------------------------------------------------------------- */

/* The rule of ip in the shared table; a slot being reused under us reads
 * as kind 0. */
static uint64_t shared_rule(uintptr_t ip)
{
	for (uint32_t p = 0, h = rule_slot(ip); p < PROBES; p++) {
		typeof(uw.rules[0]) *s = &uw.rules[(h + p) & (RULES - 1)];
		uintptr_t key = __atomic_load_n(&s->ip, __ATOMIC_ACQUIRE);
		if (key == ip) {
			uint64_t rule = __atomic_load_n(&s->rule, __ATOMIC_ACQUIRE);
			return __atomic_load_n(&s->ip, __ATOMIC_RELAXED) == ip ? rule : 0;
		}
		if (!key)
			break;
	}
	return learn(ip);
}

static uint64_t local_rule(struct mt_unwind_thread *t, uintptr_t ip)
{
	typeof(t->rules[0]) *s = &t->rules[(ip ^ ip >> 8) & (LOCAL_RULES - 1)];
	if (s->ip == ip)
		return s->rule;
	uint64_t rule = shared_rule(ip);
	if (rule)
		*s = (typeof(*s)){ip, rule};
	return rule;
}

/* The thread's cached rules hold while no object was unloaded. */
static void check_generation(struct mt_unwind_thread *t)
{
	unsigned gen = __atomic_load_n(&uw.generation, __ATOMIC_ACQUIRE);
	if (t->generation != gen) {
		memset(t->rules, 0, sizeof t->rules);
		t->n = 0;
		t->generation = gen;
	}
}

/* The frame that called into the tracer: up its frame-pointer chain. */
static int first_frame(const struct mt_unwind_thread *t, uintptr_t *ip, uintptr_t *sp,
		       uintptr_t *rbp)
{
	const uintptr_t *fp = __builtin_frame_address(0);
	for (int k = 0;; k++) {
		if ((uintptr_t)fp < t->lo || (uintptr_t)fp > t->hi - 2 * sizeof *fp ||
		    k == OWN_FRAMES_MAX)
			return -1;
		if (fp[1] < uw.own_start || fp[1] >= uw.own_end)
			break;
		fp = (const uintptr_t *)fp[0];
	}
	*ip = fp[1];
	*sp = (uintptr_t)(fp + 2);
	*rbp = fp[0];
	return 0;
}

/* Registers of a frame as the walk knows them. */
struct regs {
	uintptr_t ip, sp, rbp;
	int rbp_ok;
};

/* From a frame to its caller by the frame's rule: 1 when the frame was
 * the outermost, -1 when the rule does not do (or leads off the stack). */
static int step(struct regs *r, uint64_t rule, uintptr_t hi)
{
	if (RULE_KIND(rule) == RULE_LAST)
		return 1;
	if (RULE_KIND(rule) != RULE_CALL || (RULE_CFA_RBP(rule) && !r->rbp_ok))
		return -1;
	uintptr_t cfa = (RULE_CFA_RBP(rule) ? r->rbp : r->sp) + (intptr_t)RULE_CFA_OFF(rule);
	if (cfa <= r->sp || cfa > hi)
		return -1;
	int16_t rbp_off = RULE_RBP_OFF(rule);
	if (rbp_off == RBP_LOST) {
		r->rbp_ok = 0;
	} else if (rbp_off) {
		uintptr_t at = cfa + rbp_off;
		if (at < r->sp || at > hi - sizeof r->rbp)
			return -1;
		r->rbp = *(const uintptr_t *)at;
		r->rbp_ok = 1;
	}
	r->ip = *(const uintptr_t *)(cfa - sizeof r->ip);
	r->sp = cfa;
	return r->ip ? 0 : 1;
}

/*
 * Whether frame p of the last stack is the frame at r, and its callers are
 * still those of the last stack.  Applying the rules again would reach
 * the same addresses and compare what they hold; since the addresses are
 * known, the loads are checked all at once instead of one after the
 * other: each return address, and each saved rbp that a rule could use.
 */
static int same_as_last(const struct mt_unwind_frame *st, int p, const struct regs *r)
{
	if (st[p].sp != r->sp || st[p].ip != r->ip || !r->rbp_ok || !(st[p].rule & RBP_VALID) ||
	    st[p].rbp != r->rbp)
		return 0;
	int same = 1;
	for (int j = p - 1; j >= 0; j--) {
		int16_t rbp_off = RULE_RBP_OFF(st[j + 1].rule);
		same &= *(const uintptr_t *)(st[j].sp - sizeof st[j].ip) == st[j].ip;
		if (rbp_off && rbp_off != RBP_LOST)
			same &= *(const uintptr_t *)(st[j].sp + rbp_off) == st[j].rbp;
	}
	return same;
}

/* Walks from r up to max frames into t->walked, innermost first, until
 * the outermost frame or one whose callers are the last stack's (*join
 * is its index there, else -1).  The number of frames walked, or -1. */
static int walk(struct mt_unwind_thread *t, struct regs *r, int max, int *join, int *end)
{
	int p = t->whole ? t->n - 1 : -1, m = 0;
	*join = -1;
	*end = 0;
	while (m < max && !*end) {
		while (p >= 0 && t->stack[p].sp < r->sp)
			p--;
		if (p >= 0 && same_as_last(t->stack, p, r)) {
			*join = p;
			*end = 1;
			break;
		}
		uint64_t rule = local_rule(t, r->ip);
		t->walked[m++] = (struct mt_unwind_frame){r->sp, r->ip, r->rbp,
							  rule | (r->rbp_ok ? RBP_VALID : 0), 0};
		*end = step(r, rule, t->hi);
		if (*end < 0)
			return -1;
	}
	return m;
}

/* The new stack: `keep` frames of the last one, then the m walked ones,
 * the innermost max of them, with their hashes. */
static int assemble(struct mt_unwind_thread *t, int keep, int m, int max, int whole)
{
	int from = 0;
	if (keep + m > max) { /* cut at the depth: the outermost frames go */
		int drop = keep + m - max < keep ? keep + m - max : keep;
		memmove(t->stack, t->stack + drop, (size_t)(keep - drop) * sizeof *t->stack);
		keep -= drop;
		whole = 0;
		m = m < max ? m : max;
	} else {
		from = keep;
	}
	for (int i = 0; i < m; i++)
		t->stack[keep + i] = t->walked[m - 1 - i];
	uint64_t h = from ? t->stack[from - 1].hash : MT_UNWIND_HASH_SEED;
	for (int i = from; i < keep + m; i++)
		t->stack[i].hash = h = mt_unwind_hash(h, t->stack[i].ip);
	t->n = keep + m;
	t->whole = whole;
	return t->n;
}

int mt_unwind_fast(struct mt_unwind_thread *t, int max)
{
	struct regs r = {.rbp_ok = 1};
	int join, end;
	if (!uw.on || thread_stack(t) || first_frame(t, &r.ip, &r.sp, &r.rbp))
		return -1;
	check_generation(t);
	int m = walk(t, &r, max, &join, &end);
	if (m < 0)
		return -1;
	return assemble(t, join + 1, m, max, end);
}

int mt_unwind_start(uintptr_t own_start, uintptr_t own_end)
{
	void *lib = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return -1;
	uw.elf_version = (unsigned (*)(unsigned))dlsym(lib, "elf_version");
	uw.elf_begin = (Elf * (*)(int, Elf_Cmd, Elf *)) dlsym(lib, "elf_begin");
	uw.elf_cntl = (int (*)(Elf *, Elf_Cmd))dlsym(lib, "elf_cntl");
	uw.elf_end = (int (*)(Elf *))dlsym(lib, "elf_end");
	uw.getcfi_elf = (Dwarf_CFI * (*)(Elf *)) dlsym(lib, "dwarf_getcfi_elf");
	uw.cfi_end = (int (*)(Dwarf_CFI *))dlsym(lib, "dwarf_cfi_end");
	uw.cfi_addrframe =
		(int (*)(Dwarf_CFI *, Dwarf_Addr, Dwarf_Frame **))dlsym(lib, "dwarf_cfi_addrframe");
	uw.frame_info = (int (*)(Dwarf_Frame *, Dwarf_Addr *, Dwarf_Addr *, bool *))dlsym(
		lib, "dwarf_frame_info");
	uw.frame_cfa = (int (*)(Dwarf_Frame *, Dwarf_Op **, size_t *))dlsym(lib, "dwarf_frame_cfa");
	uw.frame_register = (int (*)(Dwarf_Frame *, int, Dwarf_Op *, Dwarf_Op **, size_t *))dlsym(
		lib, "dwarf_frame_register");
	if (!uw.elf_version || !uw.elf_begin || !uw.elf_cntl || !uw.elf_end || !uw.getcfi_elf ||
	    !uw.cfi_end || !uw.cfi_addrframe || !uw.frame_info || !uw.frame_cfa ||
	    !uw.frame_register || uw.elf_version(EV_CURRENT) == EV_NONE)
		return -1;
	uw.own_start = own_start;
	uw.own_end = own_end;
	uw.on = 1;
	return 0;
}
