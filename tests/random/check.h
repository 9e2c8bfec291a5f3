/* SPDX-License-Identifier: MIT */
/*
 * check.h - umirror-check, the randomized differential checker: the state
 * one run shares between its parts.
 *
 *   oracle.c     what the kernel says (/proc/self/pagemap, PROCMAP_QUERY,
 *                /proc/kpageflags) and what docs/SEMANTICS.md says a
 *                snapshot entry must then be
 *   receivers.c  the owner's intervals and their event logs, and the
 *                subscriber process
 *   ops.c        the random operations and the checks after each step
 *   main.c       options, runs, the summary line
 *
 * One run = one memory kind, one seed, one scan mode, in a window of
 * address space far below where the kernel places mappings by itself (so
 * holes the run punches are never filled by anyone else).
 */
#ifndef UMIRROR_CHECK_H
#define UMIRROR_CHECK_H

#include "harness.h"
#include "uapi_compat.h"
#include "umirror.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define HPAGE (2ul << 20)
#define HPAGE_PAGES (HPAGE / PAGE)
#define MAX_IV 3	      /* owner intervals at once */
#define MAX_SUB 3	      /* subscriptions of the subscriber process at once */
#define MAX_WINDOW_PAGES 4096 /* region + scratch */
#define SUB_RING 16384	      /* events a subscription logs between two checks */
#define HIST 24		      /* operations shown when something fails */
#define LONG_PERIOD 600000    /* scan period: only UM_REVALIDATE_NOW scans */

/* hugetlb last: a write to protected hugetlb memory can hang the run (findings) */
enum kind_id { K_ANON, K_SHARED, K_MEMFD, K_THP, K_TMPFS, K_HUGETLB, K_NR };

struct kind {
	const char *name;
	size_t npages; /* region pages (scratch has as many) */
	size_t gran;   /* pages per unit of munmap/mprotect/madvise/mremap/insert */
};

extern const struct kind kinds[K_NR];

/* --- the oracle: what the kernel says ------------------------------------ */

#define OV_R 1u
#define OV_W 2u
#define OV_S 4u	      /* shared */
#define OV_HUGETLB 8u /* page size above 4 KiB */

struct ovma {
	uint64_t start, end;
	uint32_t flags;
};

struct oracle {
	uint64_t base;	/* window start */
	size_t n;	/* window pages */
	uint64_t *pm;	/* pagemap entry per page */
	int32_t *vi;	/* VMA index per page, -1 unmapped */
	struct ovma *v; /* VMAs meeting the window, ascending */
	size_t nv, capv;
};

/* raw entry bits as the daemon sends them (umirror_proto.h UM_E_*) */
#define E_PFN ((1ull << 52) - 1)
#define E_PRESENT (1ull << 52)
#define E_WRITE (1ull << 53)
#define E_ZERO (1ull << 54)
#define E_SWAP (1ull << 55)
#define E_FILE (1ull << 56)
#define E_EXCL (1ull << 57)
#define E_HUGE (1ull << 58)
#define E_UFFD_WP (1ull << 59)
#define E_NOPERM (1ull << 62)
#define E_HOLE (1ull << 63)

/**
 * oracle_init() - allocate an oracle of @n pages at @base. Exits on ENOMEM.
 */
void oracle_init(struct oracle *o, uint64_t base, size_t n);
void oracle_free(struct oracle *o);

/**
 * oracle_read() - read pagemap and the VMAs of the window now.
 * Return: 0, or -errno when /proc/self/pagemap or the VMA query fails.
 */
int oracle_read(struct oracle *o);

/** oracle_same() - do two reads show the same page tables and VMAs? */
bool oracle_same(const struct oracle *a, const struct oracle *b);

/** oracle_copy() - @dst = @src (same window). */
void oracle_copy(struct oracle *dst, const struct oracle *src);

/** oracle_vma() - OV_* flags of window page @w plus 1 << 31 when mapped; 0 unmapped. */
uint32_t oracle_vma(const struct oracle *o, size_t w);
#define OV_MAPPED (1u << 31)

/**
 * oracle_expect() - the raw entries a snapshot of window pages [@w, @w+@n)
 * must hold (docs/SEMANTICS.md "SNAPSHOT"), @gone pages as holes.
 * Reads /proc/kpageflags for THP candidates. @out gets @n entries.
 * Return: the status the snapshot must return: 0, -EFAULT, -EPERM.
 */
int oracle_expect(const struct oracle *o, const uint8_t *gone, size_t w, size_t n,
		  uint64_t zero_pfn, bool show_pfn, uint64_t *out);

/** encode_default() - @raw in the library's default encoding (umirror.h). */
uint64_t encode_default(uint64_t raw);

/** entry_str() - a default-encoded entry as text, in @buf (>= 96 bytes). */
const char *entry_str(uint64_t e, char *buf, size_t len);

/**
 * downgrade() - does going from @held to @now (default encoding) take
 * away something a mirror holding @held relies on? (PFN change, present
 * -> not, writable -> not, zero page change, anything -> hole/no access)
 */
bool downgrade(uint64_t held, uint64_t now);

/* --- receivers: intervals and their event logs ------------------------------ */

struct evrec {
	uint64_t seq, start, end;
	uint32_t reason;
	uint32_t sync;
};

struct run;

/* an interval this process inserted, with its invalidate callback's log */
struct ivrec {
	struct run *run;
	struct um_interval *iv;
	uint64_t id;
	size_t first, np; /* window pages */
	pthread_mutex_t lock;
	struct evrec *ev; /* every invalidation the callback saw, in order */
	size_t nev, cap;
	uint64_t seq0;	   /* seq when inserted */
	uint64_t last_odd; /* highest odd seq delivered (0 none) */
	bool odd_gap;	   /* an odd seq value was skipped: an invalidation never came */
	/* the mirror: the last snapshot and the seq it is valid for */
	uint64_t *mirror;
	uint64_t mirror_seq;
	uint8_t *touched;  /* pages a uffd-reported operation changed since the mirror */
	uint8_t *stouched; /* pages an operation only the scan sees changed */
	/* the scan's baseline: the page as last scanned or last invalidated */
	uint64_t *base;
	uint64_t *base_seq; /* seq when that was observed */
	uint64_t *snap;	    /* the last snapshot (check_owner) */
	uint64_t *exp;	    /* what it had to be */
	long snap_ret;
	uint64_t snap_seq;
	unsigned int drop_every; /* self-test: forget every Nth REMOVE/UNMAP/REMAP */
	unsigned int dropped_seen;
	atomic_uint dropped; /* events forgotten on purpose */
};

/* shared with the subscriber process (MAP_SHARED before the fork) */
struct sub_slot {
	_Atomic uint64_t n; /* events logged since subscribed */
	struct evrec ring[SUB_RING];
	atomic_int released; /* release/evicted callback ran */
	atomic_int release_error;
};

struct sub_shm {
	struct sub_slot slot[MAX_SUB];
	uint64_t entries[MAX_WINDOW_PAGES];
};

/* the parent's view of one subscription */
struct subrec {
	bool used;
	bool sync;
	struct ivrec *of; /* the owner interval (NULL once removed) */
	uint64_t id;
	size_t own_next;   /* next owner event the subscription must match */
	uint64_t sub_next; /* next subscription event to compare */
	uint64_t seq0;
	uint64_t last_odd;
	bool evicted;
};

/**
 * sub_start() - fork the subscriber process (before any connection exists
 * in this process) with its shared log. Exits on failure.
 */
void sub_start(void);

/** sub_stop() - tell the subscriber process to exit and reap it. */
void sub_stop(void);

/** sub_shm() - the log shared with the subscriber process. */
struct sub_shm *sub_shm(void);

/**
 * sub_call() - one request to the subscriber process: subscribe (@op 'S'
 * with @id, @flags), unsubscribe ('U'), snapshot ('P', @start @npages),
 * fault ('F', @start @npages @write). Waits for its answer.
 * @seq: the seq the snapshot/fault entries are valid for (may be NULL)
 * Return: the library's result.
 */
long sub_call(char op, int slot, uint64_t id, unsigned int flags, uint64_t start, uint64_t npages,
	      bool write, uint64_t *seq);

/** ivrec_new() - insert [@first, +@np) window pages with the logging callback. */
int ivrec_insert(struct run *r, size_t first, size_t np, struct ivrec **out);

/** ivrec_remove() - remove the interval and free its record. */
void ivrec_remove(struct ivrec *v);

/**
 * ivrec_covered() - is window page @w covered by an event of @v with seq
 * >= @min_seq? And the same over a subscription's shared log.
 */
bool ivrec_covered(struct ivrec *v, size_t w, uint64_t min_seq);
bool slot_covered(int slot, uint64_t from, uint64_t base, size_t w, uint64_t min_seq);

/* --- one run ------------------------------------------------------------------ */

struct counters {
	uint64_t steps;
	uint64_t divergences; /* snapshot/status/order/validity disagreements */
	uint64_t misses;      /* downgrades without their invalidation */
	uint64_t unchecked;   /* scan-only downgrades with the scan off */
	uint64_t unstable;    /* steps whose page tables never held still */
	uint64_t collapsed, forks, evicted;
	uint64_t planted, planted_div, planted_miss; /* self-test: planted, caught */
	uint64_t sub_events;  /* subscriber events compared with the owner's */
	uint64_t trap_misses; /* trap mode: calls that returned before their invalidation */
};

struct run {
	const struct kind *k;
	enum kind_id kid;
	uint64_t seed, rng;
	uint64_t nsteps;
	bool scan;
	bool selftest;
	bool trap; /* UM_CONNECT_TRAP_VMA: invalidated before the call returns */
	bool stop_on_fail;
	uint64_t ops_mask;  /* allowed operations (1 << OP_*) */
	const char *replay; /* the command line that replays this run */
	struct um_client *c;
	uint64_t zero_pfn;
	bool show_pfn;
	char *win;     /* window start */
	size_t np;     /* region pages: window [0, np) */
	size_t nw;     /* window pages: scratch is [np, nw) */
	int fd;	       /* memfd / tmpfs file, -1 */
	int map_flags; /* MAP_PRIVATE / MAP_SHARED (| MAP_ANONYMOUS | MAP_HUGETLB) */
	uint8_t *gone; /* window pages the daemon must report as holes */
	struct ivrec *iv[MAX_IV];
	struct subrec sub[MAX_SUB];
	struct oracle cur, o1, o2;
	uint64_t *raw;	     /* scratch entry buffer (window size) */
	uint8_t *touch_step; /* pages a uffd-reported op touched in this step */
	size_t hot;	     /* the page the last operation picked */
	pid_t child;	     /* a forked child kept alive, 0 none */
	int child_fd;
	uint64_t step;
	char hist[HIST][200];
	unsigned int nhist;
	struct counters cnt;
	unsigned int printed; /* detailed failure reports so far */
	pthread_mutex_t fail_lock;
	bool corrupt_now; /* self-test: corrupt one expected entry this step */
};

/* operations (--ops names them) */
enum op {
	OP_WRITE,
	OP_SPAN,
	OP_READ,
	OP_THREADS,
	OP_FAULT,
	OP_DONTNEED,
	OP_MUNMAP,
	OP_MMAP,
	OP_MREMAP,
	OP_MPROTECT,
	OP_FORK,
	OP_PAGEOUT,
	OP_COLLAPSE,
	OP_REINSERT,
	OP_SUB,
	OP_SUBSNAP,
	OP_SUBFAULT,
	OP_COMBO,
	OP_NR
};

extern const char *const op_names[OP_NR];

/** run_kind() - one run; adds to @total. Return: 0 ran, 77 skipped (reason printed). */
int run_kind(struct run *r, struct counters *total);

/** hist() - add a line to the run's operation history. */
void hist(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * report() - count a failure of @cls ("divergence" or "miss" family) and,
 * for the first few, print it with the history tail and the replay line.
 */
void report(struct run *r, bool miss, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** rnd() - the run's random generator (splitmix64). rnd_below(n): [0, n). */
uint64_t rnd(struct run *r);
uint64_t rnd_below(struct run *r, uint64_t n);

#endif /* UMIRROR_CHECK_H */
