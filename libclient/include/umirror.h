/* SPDX-License-Identifier: MIT */
/*
 * umirror.h - libumirror, mirror a process's CPU page tables from user space.
 *
 * The model is the kernel's mmu_interval_notifier with its hmm_range API
 * (Documentation/mm/hmm.rst) as a thin layer on top:
 *
 *   um_connect()              connect to umirrord (one connection per process
 *                             is plenty; it is thread-safe)
 *   um_interval_insert()      mirror [addr, addr+len) of this process: the
 *                             library hands the daemon a userfaultfd (once per
 *                             connection) and closes its own copy
 *   um_interval_subscribe()   mirror an interval another process inserted
 *   um_interval_read_begin()  begin a read side critical section: the even
 *                             sequence value, waiting while it is odd
 *   um_range_snapshot()       page-table entries of a range, no faulting,
 *                             checked against range->notifier_seq
 *   um_interval_read_retry()  under the caller's update lock: did anything
 *                             invalidate the interval since read_begin?
 *   ops->invalidate()         runs on the library's event thread (or in
 *                             um_dispatch()) for every invalidation; takes the
 *                             caller's update lock, drops device mappings
 *
 * The usage pattern is the kernel's: the sequence value goes into the
 * range (range.notifier_seq = mmu_interval_read_begin()), the snapshot is
 * checked against it, and read_retry under the update lock decides. The
 * same loop as in the README and libumirror(3), compiled and run by
 * tests/integration/test_doc_loop.c:
 *
 *	again:
 *		ret = um_interval_read_begin(iv, &range.notifier_seq);
 *		if (ret == 0)
 *			ret = um_range_snapshot(&range); // no lock held
 *		if (ret == -EAGAIN)
 *			goto again; // an invalidation since read_begin
 *		if (ret < 0)
 *			return ret;
 *		pthread_mutex_lock(&dev->update);
 *		if (um_interval_read_retry(iv, range.notifier_seq)) {
 *			pthread_mutex_unlock(&dev->update);
 *			goto again;
 *		}
 *		// program the device from range.pfns[]
 *		pthread_mutex_unlock(&dev->update);
 *
 * and ops->invalidate takes dev->update before tearing mappings down.
 * A loop that keeps read_begin's value in a variable of its own instead
 * still ends: um_range_snapshot() answers -EAGAIN to a stale
 * range->notifier_seq only once, having taken a new one.
 *
 * Conventions. Every function that can fail returns 0 (or a count) on
 * success and a negative errno on failure, as the kernel does; results come
 * back through out-parameters. -EINVAL bad arguments; -EPERM a page without
 * read permission (PROT_NONE), or an access the mapping does not allow;
 * -EACCES this peer is not allowed (another user's process or interval,
 * never a page's protection); -EFAULT no mapping, a
 * VM_IO/PFNMAP mapping, or a dead owner; -EAGAIN retry; -ENOMEM; -ETIMEDOUT
 * a wait ran out; -ENOTCONN the daemon went away (the connection is then
 * dead for good: every interval is released, waiters wake).
 *
 * Threads and locks. A struct um_client may be used from any number of
 * threads. Requests to the daemon are serialised by one internal mutex
 * (the "request lock"), held for the round trip; no library lock is ever
 * held while a callback runs. Callbacks run on one thread at a time: the
 * library's event thread (default), or the thread calling um_dispatch()
 * when UM_CONNECT_MANUAL was given. A callback must not call functions that
 * wait for the daemon (um_range_snapshot, um_interval_insert/remove ...):
 * the daemon may be waiting for that callback's acknowledgement.
 * Never insert an interval over memory the callbacks themselves write
 * (their stacks, the library's heap): a callback that faults on its own
 * interval waits for itself until the daemon's acknowledgement timeout.
 */
#ifndef UMIRROR_H
#define UMIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umirror_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(UMIRROR_BUILDING)
#define UM_EXPORT __attribute__((visibility("default")))
#else
#define UM_EXPORT
#endif

#define UM_DEFAULT_TIMEOUT_MS 1000

struct um_client;
struct um_interval;

/* --- version ---------------------------------------------------------- */

/**
 * um_version() - the version of the library that is loaded, which may be
 * newer than the headers the program was compiled with
 * (UMIRROR_VERSION_STRING, UMIRROR_VERSION_MAJOR/MINOR/PATCH in
 * umirror_version.h).
 *
 * Waits for nothing, holds nothing.
 * Return: "MAJOR.MINOR.PATCH", a static string.
 */
UM_EXPORT const char *um_version(void);

/* --- connection ------------------------------------------------------- */

/* um_connect() flags */
#define UM_CONNECT_MANUAL (1u << 0) /* no event thread: call um_dispatch() */
/*
 * UM_CONNECT_TRAP_VMA - trap mode: invalidate before mprotect,
 * pkey_mprotect, munmap, mremap, madvise (DONTNEED, FREE, REMOVE,
 * PAGEOUT, DONTNEED_LOCKED, COLLAPSE, GUARD_INSTALL), mmap with
 * MAP_FIXED, shmdt and brk (shrinking) over a mirrored range, as the
 * kernel's mmu_interval_notifier is called before such a change
 * (invalidate_range_start). See SEMANTICS.md, "Trap mode".
 *
 * um_connect() installs, once per process, a seccomp filter on every
 * thread (SECCOMP_FILTER_FLAG_TSYNC) that stops those calls in a user
 * notification (SECCOMP_RET_USER_NOTIF), and starts a thread that holds
 * the listener and a second connection to the daemon. A trapped call of
 * one of this process's threads continues only once the daemon answered:
 * at once when the range meets no interval of this address space, else
 * once every synchronous receiver's invalidate callback (reason
 * UM_REASON_PROTECTION, UM_REASON_UNMAPPING or UM_REASON_REMOVE) has
 * returned, or its ack timed out. The after-the-fact events (UNMAP,
 * REMAP, REMOVE) still follow.
 *
 * What it costs and implies:
 * - every trapped call (malloc's munmap of large blocks too) stops in the
 *   kernel until the trap thread answers: about 7 us more on this
 *   machine when it meets no interval this process inserted (the thread
 *   knows their ranges), a round trip to the daemon and every sync
 *   mirror's callback when it does (about 90 us with two);
 * - PR_SET_NO_NEW_PRIVS is set on the process: set-uid and file-capability
 *   programs it executes do not gain their privileges;
 * - the filter cannot be removed: um_disconnect() leaves it, its
 *   thread and the thread's connection in place (they then answer at
 *   once), and it survives exec(2) and is inherited by children. A
 *   child's calls are answered by this process's thread: at once, or,
 *   once this process has inserted a UM_INTERVAL_FOLLOW_FORK interval,
 *   after asking the daemon, which invalidates a followed child's
 *   intervals before the call as this process's own (every call of every
 *   child then takes a round trip; a child's calls before the daemon
 *   followed it, i.e. before ops->fork, are not held). The library
 *   hands the daemon a copy of the listener, which the daemon serves
 *   (every call continues at once) only once this process has exited or
 *   exec'd: the program it execs starts and children that outlive it
 *   keep working, as long as that daemon runs (without it their trapped
 *   calls fail with ENOSYS). A program started from this process cannot
 *   use trap mode itself (-EBUSY: its filter has a listener);
 * - calls made by the library's threads and by callbacks (on any thread)
 *   continue at once: they may be what the invalidation waits for;
 * - if the daemon dies, every pending and later trapped call continues.
 *
 * Not with UM_CONNECT_MANUAL (-EINVAL): a trapped call of the thread that
 * dispatches would wait for the ack only its own um_dispatch() can send.
 * With WAIT_KILLABLE_RECV (Linux 5.19) a signal does not interrupt a held
 * call once the trap thread received it; on older kernels a signal
 * handler without SA_RESTART can make it fail with EINTR.
 *
 * Errors of um_connect() with this flag: -EOPNOTSUPP no seccomp user
 * notification with SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux 5.7), a
 * seccomp sandbox that refuses it, an architecture other than x86_64 and
 * aarch64, or a daemon started with --trap=forbid; -EBUSY the process
 * already has a seccomp listener, or a thread could not take the filter.
 */
#define UM_CONNECT_TRAP_VMA (1u << 1)

/**
 * um_connect() - connect to umirrord.
 * @path: socket path; NULL means $UMIRROR_SOCKET, else /run/umirror/umirrord.sock
 * @flags: UM_CONNECT_*
 * @out: the new client on success
 *
 * Connects (SOCK_SEQPACKET), exchanges versions and features (HELLO), maps
 * the result buffer the daemon passed, and unless UM_CONNECT_MANUAL starts
 * the event thread. No userfaultfd is created yet (that happens at the
 * first um_interval_insert()). With UM_CONNECT_TRAP_VMA (see above), the
 * first such call of the process also connects the trap thread's socket,
 * sets PR_SET_NO_NEW_PRIVS and installs the seccomp filter.
 *
 * Waits for: the HELLO round trip, at most 10 s (a socket-activated
 * daemon answers once it has started); in trap mode a second one.
 * Holds: nothing on return.
 * Return: 0; -ENOENT/-ECONNREFUSED no daemon; -EPROTONOSUPPORT version
 * mismatch; -ENOMEM; -ETIMEDOUT; -EINVAL unknown @flags, or
 * UM_CONNECT_MANUAL with UM_CONNECT_TRAP_VMA; with UM_CONNECT_TRAP_VMA also
 * -EOPNOTSUPP (no seccomp user notification, or the daemon forbids trap
 * mode) and -EBUSY (the process already has a seccomp listener).
 */
UM_EXPORT int um_connect(const char *path, unsigned int flags, struct um_client **out);

/**
 * um_disconnect() - close the connection and free the client.
 * @c: client (NULL is a no-op)
 *
 * Every interval still inserted or subscribed is removed; its release
 * callback is NOT called (the caller is the one tearing down). The daemon
 * closes the userfaultfd, so any of this process's threads blocked in a
 * write fault resume. Joins the event thread; must not be called from a
 * callback.
 *
 * Waits for: the event thread to exit. Holds: nothing.
 */
UM_EXPORT void um_disconnect(struct um_client *c);

/**
 * um_fd() - the connection's socket, for the caller's poll loop.
 * Return: the fd (readable when um_dispatch() has work) or -EINVAL.
 * Only meaningful with UM_CONNECT_MANUAL.
 */
UM_EXPORT int um_fd(struct um_client *c);

/**
 * um_dispatch() - receive and handle events (UM_CONNECT_MANUAL only).
 * @c: client
 * @timeout_ms: 0 poll once, <0 wait forever, else wait up to this long
 *
 * Runs invalidate/release callbacks on the calling thread and sends the
 * acknowledgements of synchronous invalidations after each callback
 * returns. A thread blocked in a request (um_range_snapshot ...) also
 * receives events meanwhile, so callbacks may run on that thread too.
 *
 * Waits for: the socket, up to @timeout_ms. Holds: nothing while a
 * callback runs.
 * Return: number of events handled (>= 0); -ENOTCONN daemon gone;
 * -EINVAL when the client has an event thread.
 */
UM_EXPORT int um_dispatch(struct um_client *c, int timeout_ms);

/* how the library obtained its userfaultfd (struct um_status.uffd_mode) */
enum um_uffd_mode {
	UM_UFFD_NONE = 0,      /* not created yet (no interval inserted) */
	UM_UFFD_DEV = 1,       /* /dev/userfaultfd: kernel faults delivered too */
	UM_UFFD_SYSCALL = 2,   /* userfaultfd(2): kernel faults delivered too */
	UM_UFFD_USER_ONLY = 3, /* UFFD_USER_MODE_ONLY: a system call that writes
				  into protected memory (read(2) into it) fails
				  with EFAULT instead of being mirrored */
};

/* kernel features (struct um_status.kfeatures) as the daemon found them */
#define UM_FEAT_PAGEMAP_SCAN (1ull << 0)
#define UM_FEAT_SOFT_DIRTY (1ull << 1)
#define UM_FEAT_PROCMAP_QUERY (1ull << 2)
#define UM_FEAT_PFN_VISIBLE (1ull << 3) /* this process is shown real PFNs */
#define UM_FEAT_WP_UNPOPULATED (1ull << 4)
#define UM_FEAT_WP_ASYNC (1ull << 5)
#define UM_FEAT_IO_URING (1ull << 6)

/**
 * struct um_status - what um_status() reports.
 * @size: sizeof(struct um_status) as the caller was compiled: set it with
 *	UM_STATUS_INIT; the library never changes it, so the struct can be
 *	reused
 * @filled: set by um_status(): how many bytes hold fields the library
 *	knows (UM_STATUS_SIZE_VER0 or more, never more than @size). A program
 *	built against newer headers than the library it runs with checks
 *	offsetof(struct um_status, field) < @filled before using a field.
 * @daemon_version: the daemon's version, NUL-terminated
 * @protocol_version: the protocol version the connection speaks
 * @uffd_mode: how the library obtained its userfaultfd
 * @daemon_pid: the daemon's process id
 * @clients: connections the daemon holds
 * @mms: address spaces it mirrors
 * @intervals: intervals it holds
 * @kfeatures: UM_FEAT_*, as the daemon found them
 * @uffd_features: UFFDIO_API features the kernel offers
 * @events: invalidations the daemon sent since start
 * @uptime_ms: time since the daemon started
 * @kfeatures_masked: UM_FEAT_* the kernel has but the daemon was told not
 *	to use (--mask-features)
 * @reserved: zero; room for fields to come, so that sizeof stays the same
 *
 * The caller allocates it. New fields take room from @reserved; the
 * library zeroes whatever of the caller's @size it does not fill.
 */
struct um_status {
	uint32_t size;
	uint32_t filled;
	char daemon_version[32];
	uint32_t protocol_version;
	enum um_uffd_mode uffd_mode;
	pid_t daemon_pid;
	uint32_t clients, mms, intervals;
	uint64_t kfeatures;
	uint64_t uffd_features;
	uint64_t events;
	uint64_t uptime_ms;
	uint64_t kfeatures_masked;
	uint64_t reserved[8];
};

/* initialiser for a struct um_status handed to um_status() */
/* a braced initialiser, kept as written (clang-format would break it up) */
/* clang-format off */
#define UM_STATUS_INIT { .size = sizeof(struct um_status) }
/* clang-format on */
/* the bytes of struct um_status's fields in version 0.1 */
#define UM_STATUS_SIZE_VER0 104

/**
 * um_status() - daemon and connection status.
 * @c: client
 * @out: its @size set (UM_STATUS_INIT); filled on success, @out->filled
 *	telling how far
 *
 * Waits for: one round trip. Holds: the request lock during it.
 * Return: 0, -EINVAL (@out->size below UM_STATUS_SIZE_VER0),
 * -ENOTCONN, -ETIMEDOUT.
 */
UM_EXPORT int um_status(struct um_client *c, struct um_status *out);

/* --- intervals (mmu_interval_notifier) ------------------------------- */

enum um_reason {
	UM_REASON_WRITE = 1,	   /* first write since armed; zero page / COW break */
	UM_REASON_REMOVE = 2,	   /* madvise(MADV_DONTNEED / MADV_REMOVE) */
	UM_REASON_UNMAP = 3,	   /* munmap */
	UM_REASON_REMAP = 4,	   /* mremap moved the pages away */
	UM_REASON_FORK = 5,	   /* fork made written pages copy-on-write */
	UM_REASON_RELEASE = 6,	   /* watchers only (um_watch): the interval ended
				      (owner exited, interval removed, daemon
				      shutting down); receivers hear it through
				      ops->release instead */
	UM_REASON_MIGRATE = 7,	   /* a placement request moves the pages (um_range_place) */
	UM_REASON_REVALIDATE = 8,  /* the revalidation scan found a change after the fact:
				      migration, swap-out, KSM, THP split/collapse,
				      reclaim, mprotect (see README) */
	UM_REASON_PROTECT = 9,	   /* the daemon write-protects pages this mirror may
				      hold writable: another interval was inserted over
				      them (tracking starts write-protected), or a
				      dirty harvest with UM_DIRTY_REARM */
	UM_REASON_PROTECTION = 10, /* trap mode: mprotect/pkey_mprotect is about
				      to change the protection (the kernel's
				      MMU_NOTIFY_PROTECTION_VMA) */
	UM_REASON_UNMAPPING = 11,  /* trap mode: munmap, mremap, mmap MAP_FIXED,
				      shmdt or brk is about to unmap the span
				      (MMU_NOTIFY_UNMAP); UNMAP/REMAP follow */
};

/** um_reason_str() - "write", "remove", "unmap", ... ("?" if unknown). */
UM_EXPORT const char *um_reason_str(enum um_reason reason);

struct um_invalidation {
	uint64_t start; /* page aligned, within the interval */
	uint64_t end;	/* exclusive */
	uint64_t seq;	/* the odd sequence value of this invalidation */
	enum um_reason reason;
	bool sync; /* the writer waits until this callback returns */
	pid_t tid; /* faulting thread, or 0 when unknown */
};

struct um_interval_ops {
	/*
	 * invalidate - the CPU page tables of [inv->start, inv->end) are about
	 * to change (WRITE, REMOVE, MIGRATE) or just changed (UNMAP, REMAP,
	 * FORK, REVALIDATE).
	 * Take your update lock, drop the mirror's entries for the span, drop
	 * the lock, return. For a sync invalidation the writing thread is
	 * held until this returns. Runs on the event thread; must not wait for
	 * the daemon (see the file comment).
	 */
	void (*invalidate)(struct um_interval *iv, const struct um_invalidation *inv, void *priv);
	/*
	 * release - the interval is dead: its owner exited, or the connection
	 * to the daemon was lost (error -EFAULT / -ENOTCONN), or this
	 * subscriber was evicted (-ETIMEDOUT). Every later call on it returns
	 * -EFAULT; the caller still calls um_interval_remove() to free it.
	 */
	void (*release)(struct um_interval *iv, int error, void *priv);
	/*
	 * fork - (UM_INTERVAL_FOLLOW_FORK) the owner forked; @child mirrors
	 * the child's copy of @parent, with the same ops and priv, on the
	 * same client. Runs on the event thread. The caller owns @child and
	 * frees it with um_interval_remove(). Required with FOLLOW_FORK.
	 */
	void (*fork)(struct um_interval *parent, struct um_interval *child, pid_t child_pid,
		     void *priv);
};

/* um_interval_insert() / um_interval_subscribe() flags */
#define UM_INTERVAL_ASYNC (1u << 0)	  /* writers do not wait for this mirror */
#define UM_INTERVAL_FOLLOW_FORK (1u << 1) /* insert only: mirror children too (ops->fork) */
#define UM_INTERVAL_TRACK_ASYNC                                   \
	(1u << 2) /* insert only: writes tracked without ever     \
		     stopping the writer (WP_ASYNC, soft-dirty,   \
		     or the revalidation scan): needed for memory \
		     uffd-wp cannot track synchronously (regular  \
		     files); invalidations then come after the    \
		     fact (UM_REASON_REVALIDATE) */

/* how an interval's writes are tracked: um_interval_backend() */
enum um_backend {
	UM_BACKEND_UFFD_WP = 1,	   /* sync userfaultfd write-protect: exact, before the fact */
	UM_BACKEND_WP_ASYNC = 2,   /* UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN (Linux 6.7+) */
	UM_BACKEND_SOFT_DIRTY = 3, /* clear_refs + pagemap soft-dirty bit */
	UM_BACKEND_SCAN = 4,	   /* writes not tracked: revalidation scan only */
};

/** um_backend_str() - "uffd-wp", "wp-async", "soft-dirty", "scan" ("?"). */
UM_EXPORT const char *um_backend_str(enum um_backend backend);

/**
 * um_interval_insert() - mirror [addr, addr + len) of the calling process.
 * @c: client
 * @addr: page aligned
 * @len: page aligned, > 0, addr + len must not overflow
 * @flags: UM_INTERVAL_*
 * @ops: callbacks (may be NULL: then only the sequence protocol is used)
 * @priv: passed to the callbacks
 * @out: the interval on success
 *
 * The first insert on a connection creates a userfaultfd (trying
 * /dev/userfaultfd, then userfaultfd(2), then UFFD_USER_MODE_ONLY), passes
 * it to the daemon and closes the library's copy. The daemon takes only a
 * userfaultfd that serves this very address space: it proves it on one
 * private page the library maps (and unmaps) for the call, by
 * write-protecting it through the userfaultfd and reading this process's
 * pagemap (-EBADF otherwise). The daemon registers the range for
 * write-protect tracking and write-protects it; from then on the
 * first write to each page is an invalidation. Intervals may overlap.
 * The whole range must be mapped now (later munmap is reported, and the
 * unmapped parts then snapshot as holes). Memory the kernel cannot
 * write-protect through userfaultfd (a regular file's page cache, VM_IO)
 * is refused rather than mirrored blind.
 *
 * Waits for: one or two round trips. Holds: the request lock meanwhile.
 * Return: 0; -EINVAL bad range; -EFAULT part of the range is not mapped;
 * -EOPNOTSUPP a mapping userfaultfd cannot track; -EPERM no userfaultfd
 * could be created; -EBADF the daemon could not prove the userfaultfd is
 * this process's; -ENOMEM; -ENOSPC the address space has the most
 * intervals the daemon allows in one (umirrord --max-intervals-per-mm, at
 * most 1048576); -ENOTCONN.
 */
UM_EXPORT int um_interval_insert(struct um_client *c, void *addr, size_t len, unsigned int flags,
				 const struct um_interval_ops *ops, void *priv,
				 struct um_interval **out);

/**
 * um_interval_subscribe() - mirror an interval another process inserted.
 * @c: client
 * @pid: the owner process
 * @interval_id: its um_interval_id()
 * @flags: UM_INTERVAL_*
 * @ops, @priv, @out: as um_interval_insert()
 *
 * Allowed for root, the owner's uid and uids it granted; -EACCES
 * otherwise. The
 * subscriber gets every invalidation of the interval, in order, exactly
 * once, and maps the owner's sequence area read-only.
 *
 * Waits for: one round trip. Holds: the request lock meanwhile.
 * Return: 0; -ESRCH no such owner or interval; -EACCES not allowed;
 * -ENOTCONN.
 */
UM_EXPORT int um_interval_subscribe(struct um_client *c, pid_t pid, uint64_t interval_id,
				    unsigned int flags, const struct um_interval_ops *ops,
				    void *priv, struct um_interval **out);

/**
 * um_interval_remove() - stop mirroring and free the interval.
 * @iv: interval (NULL is a no-op)
 *
 * After return no callback for @iv runs or is running (like
 * mmu_interval_notifier_remove). Must not be called from @iv's own
 * callbacks. Works on a dead interval too.
 *
 * Waits for: one round trip, and any callback of @iv in progress.
 * Holds: the request lock during the round trip.
 * Return: 0; -ENOTCONN (the interval is freed anyway).
 */
UM_EXPORT int um_interval_remove(struct um_interval *iv);

/**
 * um_interval_backend() - how the daemon tracks writes to @iv (chosen at
 * insert from what the kernel offers; a subscriber sees the owner's).
 * Waits for nothing. Return: enum um_backend.
 */
UM_EXPORT enum um_backend um_interval_backend(const struct um_interval *iv);

/**
 * um_interval_grant() - let processes of @uid subscribe to @iv (@allow),
 * or no longer (!@allow; existing subscriptions stay).
 * @iv: an interval this client inserted
 *
 * Waits for: one round trip. Holds: the request lock meanwhile.
 * Return: 0; -EACCES @iv was subscribed, not inserted; -ENOSPC too many
 * grants (16 per interval); -EFAULT dead; -ENOTCONN.
 */
UM_EXPORT int um_interval_grant(struct um_interval *iv, uid_t uid, bool allow);

/* a harvested run of written pages (um_interval_dirty) */
struct um_dirty_range {
	uint64_t start, end; /* page aligned, end exclusive */
};

/* um_interval_dirty() flags */
#define UM_DIRTY_REARM (1u << 0) /* clear what is reported: next harvest starts now */

/**
 * um_interval_dirty() - the pages of [@start, @end) written since they were
 * last re-armed (or since insert), as merged ranges; with UM_DIRTY_REARM
 * also re-arm exactly what was reported, in the same daemon step, so no
 * write between harvest and re-arm is lost.
 * @iv: interval (inserted or subscribed)
 * @start, @end: page aligned, inside @iv
 * @flags: UM_DIRTY_*
 * @out: receives up to @max ranges
 * @max: > 0
 * @walk_end: where the harvest stopped: @end, or earlier when @max ranges
 *            were filled (call again from there)
 *
 * Writes by the kernel on the owner's behalf (read(2) into the memory)
 * count as writes; a page zapped (MADV_DONTNEED) counts as written.
 * Backends: UM_BACKEND_UFFD_WP (the daemon's log of write faults),
 * UM_BACKEND_WP_ASYNC (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING),
 * UM_BACKEND_SOFT_DIRTY (pagemap's soft-dirty bit, harvested for every
 * soft-dirty interval of the process at once; a transparent huge page has
 * one bit, so a write reports its whole 2 MiB); never reports "clean"
 * from UM_BACKEND_SCAN.
 *
 * Waits for: one round trip per result buffer of ranges. Holds: the
 * request lock meanwhile.
 * Return: number of ranges (>= 0); -EOPNOTSUPP the backend cannot see
 * writes; -EINVAL; -EFAULT dead; -ENOTCONN.
 */
UM_EXPORT long um_interval_dirty(struct um_interval *iv, uint64_t start, uint64_t end,
				 unsigned int flags, struct um_dirty_range *out, size_t max,
				 uint64_t *walk_end);

/* um_interval_revalidate() */
#define UM_REVALIDATE_DEFAULT UINT32_MAX /* period: the daemon's --revalidate-ms */
#define UM_REVALIDATE_NOW (1u << 0)	 /* flags: scan once now, before returning */

/**
 * um_interval_revalidate() - set @iv's revalidation scan period, and/or scan now.
 * @iv: interval (inserted or subscribed)
 * @period_ms: 0 off (intervals whose backend needs the scan keep the
 *             daemon's default), UM_REVALIDATE_DEFAULT, else >= 10
 * @flags: UM_REVALIDATE_NOW: scan at once; the invalidations it finds
 *         have started (their callbacks may still be running) on return
 * @changed: optional; pages the NOW scan found changed
 *
 * The scan compares the page tables with what it saw last time and sends
 * UM_REASON_REVALIDATE invalidations for what changed behind userfaultfd's
 * back (migration, swap-out, KSM, THP split/collapse, reclaim, mprotect).
 *
 * Waits for: one round trip (and the scan with NOW). Holds: the request lock.
 * Return: 0; -EINVAL; -EFAULT dead; -ENOTCONN.
 */
UM_EXPORT int um_interval_revalidate(struct um_interval *iv, unsigned int period_ms,
				     unsigned int flags, uint64_t *changed);

/** um_interval_id() - the daemon's id of @iv (what subscribers name). */
UM_EXPORT uint64_t um_interval_id(const struct um_interval *iv);

/** um_interval_start() / um_interval_length() - the mirrored range. */
UM_EXPORT uint64_t um_interval_start(const struct um_interval *iv);
UM_EXPORT uint64_t um_interval_length(const struct um_interval *iv);

/**
 * um_interval_read_begin() - begin a read side critical section.
 * @iv: interval
 * @seq: the even sequence value on success; for um_range_snapshot() pass
 *       &range->notifier_seq (the kernel's range.notifier_seq =
 *       mmu_interval_read_begin())
 *
 * Like mmu_interval_read_begin(): if an invalidation is in progress
 * (sequence odd) waits, with a futex on the shared sequence word, until it
 * completes.
 *
 * Waits for: the invalidation in progress, if any, up to
 * UM_DEFAULT_TIMEOUT_MS. Holds: nothing. No system call when the
 * sequence is even.
 * Return: 0; -EFAULT the interval is dead (owner exited, daemon gone);
 * -ETIMEDOUT.
 */
UM_EXPORT int um_interval_read_begin(struct um_interval *iv, uint64_t *seq);

/**
 * um_interval_read_retry() - did an invalidation start since @seq?
 * @iv: interval
 * @seq: from um_interval_read_begin()
 *
 * Call with the caller's update lock held (the lock the invalidate
 * callback takes), before using a snapshot. One load from shared memory,
 * with acquire ordering; no system call.
 * Return: true if the snapshot taken after read_begin must be discarded
 * (including when the interval is dead).
 */
UM_EXPORT bool um_interval_read_retry(const struct um_interval *iv, uint64_t seq);

/**
 * um_interval_check_retry() - as read_retry, but lockless and advisory
 * (mmu_interval_check_retry): true means retry, false proves nothing.
 */
UM_EXPORT bool um_interval_check_retry(const struct um_interval *iv, uint64_t seq);

/* --- ranges (hmm_range) ---------------------------------------------- */

/* indexes into range->flags[] */
enum um_pfn_flag {
	UM_PFN_VALID = 0,     /* maps a page */
	UM_PFN_WRITE = 1,     /* a CPU write would not trap: mirror writable */
	UM_PFN_ZERO = 2,      /* the shared zero page */
	UM_PFN_SWAP = 3,      /* swapped out (not VALID) */
	UM_PFN_FILE = 4,      /* file page or shared anonymous memory */
	UM_PFN_EXCLUSIVE = 5, /* mapped by this process only */
	UM_PFN_HUGE = 6,      /* part of a huge page */
	UM_PFN_UFFD_WP = 7,   /* still write-protected: not written since armed */
	UM_PFN_FLAG_MAX = 8,
};

/* indexes into range->values[] */
enum um_pfn_value {
	UM_PFN_ERROR = 0,   /* no read permission, hole, VM_IO/PFNMAP */
	UM_PFN_NONE = 1,    /* nothing mapped (never touched, or zapped) */
	UM_PFN_SPECIAL = 2, /* reserved for special mappings */
	UM_PFN_VALUE_MAX = 3,
};

/*
 * The library's default encoding (used when range->flags/values are NULL):
 * flags[i] = 1 << i, pfn_shift = 12, values[ERROR] = 1 << 11,
 * values[NONE] = 0, values[SPECIAL] = 1 << 10. So an entry is
 * (pfn << 12) | UM_DEFAULT_* bits, and pfn = entry >> 12.
 */
#define UM_DEFAULT_PFN_SHIFT 12
#define UM_DEFAULT_VALID (1ull << UM_PFN_VALID)
#define UM_DEFAULT_WRITE (1ull << UM_PFN_WRITE)
#define UM_DEFAULT_ZERO (1ull << UM_PFN_ZERO)
#define UM_DEFAULT_SWAP (1ull << UM_PFN_SWAP)
#define UM_DEFAULT_FILE (1ull << UM_PFN_FILE)
#define UM_DEFAULT_EXCLUSIVE (1ull << UM_PFN_EXCLUSIVE)
#define UM_DEFAULT_HUGE (1ull << UM_PFN_HUGE)
#define UM_DEFAULT_UFFD_WP (1ull << UM_PFN_UFFD_WP)
#define UM_DEFAULT_ERROR (1ull << 11)
#define UM_DEFAULT_SPECIAL (1ull << 10)

/*
 * struct um_range - like struct hmm_range. The caller fills
 * start, end, pfns (end-start >> 12 entries) and optionally flags, values,
 * pfn_shift; um_range_register() fills the rest.
 */
struct um_range {
	struct um_interval *iv; /* set by um_range_register() */
	uint64_t start;		/* page aligned, inside the interval */
	uint64_t end;		/* page aligned, exclusive, > start */
	uint64_t *pfns;		/* output: one entry per page */
	const uint64_t *flags;	/* [UM_PFN_FLAG_MAX] or NULL for defaults */
	const uint64_t *values; /* [UM_PFN_VALUE_MAX] or NULL for defaults */
	uint8_t pfn_shift;	/* used when flags != NULL */
	/*
	 * The sequence value the entries are checked against, as the
	 * kernel's range.notifier_seq: set it with
	 * um_interval_read_begin(iv, &range.notifier_seq) at the top of the
	 * read loop and pass it to um_interval_read_retry(). Also set by
	 * um_range_register(), um_range_wait_until_valid(), um_range_fault()
	 * and by um_range_snapshot() when it answers -EAGAIN.
	 */
	uint64_t notifier_seq;
	/*
	 * um_range_fault() input, as hmm_range's: page i is
	 * requested with (pfns[i] & pfn_flags_mask) | default_flags, in the
	 * range's own encoding: flags[UM_PFN_VALID] asks for the page to be
	 * faulted in, flags[UM_PFN_WRITE] for it to be writable.
	 */
	uint64_t default_flags;
	uint64_t pfn_flags_mask;
	int32_t *nodes; /* optional output: NUMA node per page, or -errno (NULL: not asked) */
};

/**
 * um_range_register() - bind @range to @iv and take a sequence value
 * (range->notifier_seq: the current one, even odd; no wait).
 * @range: caller-filled start/end/pfns (and optionally flags/values)
 * @iv: interval that contains [start, end)
 *
 * Return: 0; -EINVAL range not page aligned, empty, or outside @iv;
 * -EFAULT dead interval. Waits for nothing, holds nothing.
 */
UM_EXPORT int um_range_register(struct um_range *range, struct um_interval *iv);

/** um_range_unregister() - forget the binding; never fails, never waits. */
UM_EXPORT void um_range_unregister(struct um_range *range);

/**
 * um_range_valid() - true while no invalidation touched @range's interval
 * since its notifier_seq was taken (a lockless read_retry).
 */
UM_EXPORT bool um_range_valid(const struct um_range *range);

/**
 * um_range_wait_until_valid() - wait until no invalidation is in progress.
 * @range: registered range
 * @timeout_ms: 0 means UM_DEFAULT_TIMEOUT_MS
 *
 * Futex wait on the shared sequence word while it is odd, then takes a new
 * notifier_seq (hmm_range_wait_until_valid).
 *
 * Waits for: the invalidation in progress, up to @timeout_ms. Holds: nothing.
 * Return: 0 valid; -ETIMEDOUT; -EFAULT the owner is dead or the daemon gone.
 */
UM_EXPORT int um_range_wait_until_valid(struct um_range *range, unsigned int timeout_ms);

/**
 * um_range_snapshot() - read the page-table entries of @range, no faulting,
 * valid for range->notifier_seq (as hmm_range_fault() for its range).
 * @range: registered range; pfns[] receives one entry per page
 *
 * Asks the daemon, which walks the owner's pagemap and VMAs. Entries with
 * no read permission or no mapping get values[UM_PFN_ERROR]; never-touched
 * or zapped pages get values[UM_PFN_NONE] (with flags[UM_PFN_UFFD_WP] while
 * they are armed, so their first write will be reported). PFNs are 0 unless
 * UM_FEAT_PFN_VISIBLE (root / CAP_SYS_ADMIN peers).
 *
 * When an invalidation started since range->notifier_seq was taken
 * (before or during the walk) the entries are not valid: the call takes a
 * new range->notifier_seq, waiting while an invalidation is in progress
 * (um_range_wait_until_valid()), and returns -EAGAIN. So calling again
 * always makes progress, whatever the caller did with read_begin's value;
 * the kernel's loop (see the top of this file) sets range->notifier_seq
 * with um_interval_read_begin() anyway and checks it with read_retry.
 *
 * Waits for: one round trip per 2 GiB of range; on -EAGAIN the
 * invalidation in progress (up to UM_DEFAULT_TIMEOUT_MS). Holds: the
 * request lock during each round trip; not the caller's update lock (take
 * that afterwards).
 * Return: number of pages filled (all of them); -EPERM some page is
 * PROT_NONE; -EFAULT a hole or a dead owner; -EAGAIN an invalidation
 * started since range->notifier_seq (a new one is taken: call again);
 * -ETIMEDOUT the invalidation in progress outlasted the wait; -EINVAL
 * unregistered range; -ENOTCONN.
 */
UM_EXPORT long um_range_snapshot(struct um_range *range);

/* um_range_fault() flags */
#define UM_FAULT_NONBLOCK (1u << 0) /* -EBUSY instead of waiting for validity */

/**
 * um_range_fault() - fault in the pages @range requests, then snapshot
 * (hmm_range_fault).
 * @range: registered range; pfns[] and default_flags/pfn_flags_mask say
 *         what to fault (see struct um_range); on success pfns[] holds
 *         the entries, as um_range_snapshot(), and notifier_seq the
 *         sequence they are valid for (check read_retry under your lock)
 * @flags: UM_FAULT_*
 *
 * Read faults are done by the daemon through /proc/PID/mem (no data is
 * ever written); write faults by an invalidation (reason WRITE) followed
 * by MADV_POPULATE_WRITE in the owner's own process (its library runs
 * it on a worker thread), so copy-on-write and zero pages are broken the
 * way the CPU would, and no concurrent update is lost.
 *
 * Waits for: validity (unless UM_FAULT_NONBLOCK), round trips, the
 * owner's populate and the acknowledgements of the invalidation it
 * causes (this client's own callbacks included: they run on the event
 * thread meanwhile). Holds: the request lock during each round trip.
 * Return: number of pages (all); -EPERM write requested on a read-only
 * mapping, or a PROT_NONE page (entries get values[UM_PFN_ERROR]);
 * -EFAULT hole, VM_IO/PFNMAP, dead owner; -EBUSY (NONBLOCK) not valid;
 * -ETIMEDOUT the owner did not populate in time; -EINVAL; -ENOTCONN.
 */
UM_EXPORT long um_range_fault(struct um_range *range, unsigned int flags);

/**
 * um_range_place() - placement hint: move the present pages of @range to
 * NUMA node @node (move_pages(2) on the owner, by the daemon), announced
 * first as a UM_REASON_MIGRATE invalidation.
 * @range: registered range
 * @node: target node, >= 0
 *
 * Waits for: the invalidation's acknowledgements and the migration.
 * Holds: the request lock meanwhile.
 * Return: pages now on @node (>= 0); -ENODEV @node is not online;
 * -EOPNOTSUPP the kernel has no NUMA; -EACCES not this client's
 * interval; -EFAULT; -ENOTCONN.
 */
UM_EXPORT long um_range_place(struct um_range *range, int node);

/* --- raw snapshot and introspection (umirrorctl) ---------------------- */

/*
 * Raw entry bits, as the daemon sends them (see proto/umirror_proto.h):
 * PFN in bits 0-51 and these flags.
 */
#define UM_RAW_PFN_MASK ((1ull << 52) - 1)
#define UM_RAW_PRESENT (1ull << 52)
#define UM_RAW_WRITE (1ull << 53)
#define UM_RAW_ZERO (1ull << 54)
#define UM_RAW_SWAP (1ull << 55)
#define UM_RAW_FILE (1ull << 56)
#define UM_RAW_EXCL (1ull << 57)
#define UM_RAW_HUGE (1ull << 58)
#define UM_RAW_UFFD_WP (1ull << 59)
#define UM_RAW_NOPERM (1ull << 62)
#define UM_RAW_HOLE (1ull << 63)

/**
 * um_snapshot_raw() - raw entries of any range of a mirrored process.
 * @c: client
 * @pid: a process attached to the daemon (root or same uid)
 * @start: page aligned
 * @npages: > 0
 * @out: @npages raw entries (UM_RAW_*)
 *
 * Waits for: one round trip per 2 GiB. Holds: the request lock.
 * Return: @npages; -EPERM some page PROT_NONE; -EFAULT a hole (entries are
 * filled either way); -EACCES not allowed (neither root nor the owner's
 * uid; nothing filled); -ESRCH pid not attached; -EINVAL; -ENOTCONN.
 */
UM_EXPORT long um_snapshot_raw(struct um_client *c, pid_t pid, uint64_t start, uint64_t npages,
			       uint64_t *out);

/**
 * struct um_interval_info - one interval in um_list()'s answer.
 * @size: how many bytes of this record hold fields the library knows
 *	(UM_INTERVAL_INFO_SIZE_VER0 or more): a program built against newer
 *	headers than the library it runs with checks
 *	offsetof(struct um_interval_info, field) < @size before using a field
 * @subscribers: connections subscribed to it
 * @interval_id: its id (daemon-wide)
 * @start: first byte
 * @length: bytes
 * @seq: its sequence value now
 * @invalidations: invalidations since it was inserted
 * @pid: the owner
 * @uid: the owner's user
 * @sync: invalidations wait for acknowledgement (not UM_INTERVAL_ASYNC)
 * @dead: released or evicted, not yet removed
 * @backend: how its writes are tracked
 * @revalidate_ms: scan period in force, 0 off
 * @reserved0, @reserved: zero; room for fields to come
 *
 * The library allocates the array; its stride is sizeof(struct
 * um_interval_info), which does not change: new fields take room from
 * @reserved.
 */
struct um_interval_info {
	uint32_t size;
	uint32_t subscribers;
	uint64_t interval_id;
	uint64_t start, length;
	uint64_t seq;
	uint64_t invalidations;
	pid_t pid;
	uid_t uid;
	bool sync;
	bool dead;
	enum um_backend backend;
	uint32_t revalidate_ms;
	uint32_t reserved0;
	uint64_t reserved[6];
};

/* the bytes of struct um_interval_info's fields in version 0.1 */
#define UM_INTERVAL_INFO_SIZE_VER0 72

/**
 * um_list() - intervals the daemon holds that this peer may see.
 * @c: client
 * @out: on success a malloc'ed array the caller frees
 * @count: its length
 *
 * Waits for: one round trip. Return: 0, -ENOMEM, -ENOTCONN.
 */
UM_EXPORT int um_list(struct um_client *c, struct um_interval_info **out, size_t *count);

/**
 * um_watch() - receive a copy of every invalidation of @pid's intervals
 * (0: all this peer may see) through @cb, on the event thread / in
 * um_dispatch(). The copies need no acknowledgement; writers never wait
 * for watchers. The end of each interval (its owner exited, it was
 * removed, the daemon is shutting down) comes as a last copy with reason
 * UM_REASON_RELEASE over the whole interval.
 *
 * Waits for: one round trip. Return: 0, -EACCES @pid is another user's,
 * -ESRCH @pid not attached, -ENOTCONN.
 */
UM_EXPORT int um_watch(struct um_client *c, pid_t pid,
		       void (*cb)(uint64_t interval_id, pid_t pid,
				  const struct um_invalidation *inv, void *priv),
		       void *priv);

/**
 * um_ping() - one request/reply round trip (benchmarks, liveness).
 * Waits for: the round trip. Return: 0, -ENOTCONN, -ETIMEDOUT.
 */
UM_EXPORT int um_ping(struct um_client *c);

#ifdef __cplusplus
}
#endif

#endif /* UMIRROR_H */
