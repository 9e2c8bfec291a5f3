/* SPDX-License-Identifier: MIT */
/*
 * umirror_proto.h - the umirror wire protocol, every message in one place.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET. One datagram is one message: a
 * struct ump_hdr followed by a typed body. File descriptors ride with the
 * message that names them (SCM_RIGHTS). All integers are host-endian (the
 * socket never leaves the machine) and every structure has explicit
 * padding, so its layout is fixed by the _Static_asserts below.
 *
 * Requests go client -> daemon and carry a client-chosen non-zero id; the
 * daemon answers each with exactly one reply of type (request | UMP_REPLY)
 * carrying the same id, a ump_reply_hdr status (0 or -errno) and the typed
 * reply body. Events go daemon -> client with id 0 and are never answered,
 * except UMP_EV_INVALIDATE with UMP_INV_SYNC which the client acknowledges
 * with UMP_MSG_ACK (a request that has no reply).
 *
 * Bulk results (snapshot entries, list records) never go through the
 * socket: the daemon writes them into the client's result buffer, a memfd
 * it creates at HELLO, seals with F_SEAL_FUTURE_WRITE and passes to the
 * client, which can only map it read-only. The daemon never reads it.
 *
 * Sequence numbers live in a per-address-space memfd ("seq area") of
 * struct ump_seq_slot, sealed the same way; each interval owns one slot
 * (up to UMP_SEQ_SLOTS_MAX per address space).
 *
 * Decoding: ump_proto_decode() (proto.c) is the only function that turns
 * bytes into a message. It checks magic, version, type, the exact body
 * length for the type, the number of fds for the type and every count
 * inside the body before anyone looks at it.
 */
#ifndef UMIRROR_PROTO_H
#define UMIRROR_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "um_page.h"

#define UMP_PROTO_MAGIC 0x524d4d55u /* "UMMR" little-endian */
#define UMP_PROTO_VERSION 1
#define UMP_MSG_MAX 512 /* largest message, header included */
#define UMP_MSG_MAX_FDS 1
#define UMP_DEFAULT_SOCKET "/run/umirror/umirrord.sock"
#define UMP_SOCKET_ENV "UMIRROR_SOCKET"

/* Protocol feature bits exchanged at HELLO (ump_hello.features). */
#define UMP_PFEAT_SNAPSHOT (1ull << 0)
#define UMP_PFEAT_SUBSCRIBE (1ull << 1)
#define UMP_PFEAT_WATCH (1ull << 2)
#define UMP_PFEAT_TRAP (1ull << 3) /* TRAP requests (umirrord --trap=allow, the default) */
/* TRAP_HANDOVER: the daemon serves the listener once the owner is gone */
#define UMP_PFEAT_TRAP_HANDOVER (1ull << 4)
#define UMP_PFEAT_ALL                                                                  \
	(UMP_PFEAT_SNAPSHOT | UMP_PFEAT_SUBSCRIBE | UMP_PFEAT_WATCH | UMP_PFEAT_TRAP | \
	 UMP_PFEAT_TRAP_HANDOVER)

struct ump_hdr {
	uint32_t magic;	  /* UMP_PROTO_MAGIC */
	uint16_t version; /* UMP_PROTO_VERSION */
	uint16_t type;	  /* enum ump_msg_type */
	uint32_t flags;	  /* must be 0 for now */
	uint32_t length;  /* whole message, header included */
	uint64_t id;	  /* request id; 0 for events */
};

enum ump_msg_type {
	/* requests */
	UMP_MSG_HELLO = 1,     /* ump_hello -> ump_hello_reply + fd: result buffer */
	UMP_MSG_ATTACH = 2,    /* ump_attach + fd: uffd -> ump_attach_reply + fd: seq area */
	UMP_MSG_INSERT = 3,    /* ump_insert -> ump_insert_reply */
	UMP_MSG_REMOVE = 4,    /* ump_remove -> (status only) */
	UMP_MSG_SUBSCRIBE = 5, /* ump_subscribe -> ump_subscribe_reply + fd: seq area */
	UMP_MSG_SNAPSHOT = 6,  /* ump_snapshot -> ump_snapshot_reply, entries in result buffer */
	UMP_MSG_ACK = 7,       /* ump_ack, no reply */
	UMP_MSG_STATUS = 8,    /* empty -> ump_status_reply */
	UMP_MSG_LIST = 9,      /* empty -> ump_list_reply, ump_list_rec[] in result buffer */
	UMP_MSG_WATCH = 10,    /* ump_watch -> (status only); then UMP_EV_INVALIDATE copies */
	UMP_MSG_PING = 11,     /* empty -> (status only); a round trip, for benchmarks */
	UMP_MSG_FAULT = 12,    /* ump_fault -> ump_snapshot_reply (entries after the fault) */
	UMP_MSG_POPULATE_DONE = 13, /* ump_populate_done, no reply: answers UMP_EV_POPULATE */
	UMP_MSG_GRANT = 14,	    /* ump_grant -> (status only) */
	UMP_MSG_DIRTY = 15, /* ump_dirty -> ump_dirty_reply, ump_dirty_rec[] in result buffer */
	UMP_MSG_PLACE = 16, /* ump_place -> ump_place_reply */
	UMP_MSG_REVALIDATE = 17,    /* ump_revalidate -> ump_revalidate_reply */
	UMP_MSG_TRAP = 18,	    /* ump_trap -> ump_trap_reply, once the change may go ahead */
	UMP_MSG_TRAP_HANDOVER = 19, /* ump_trap_handover + fd, no reply */
	UMP_MSG_REQ_MAX = 19,

	UMP_REPLY = 0x8000, /* or'ed into the request type */

	/* events (daemon -> client, id 0) */
	UMP_EV_INVALIDATE = 0x4001, /* ump_ev_invalidate */
	UMP_EV_RELEASE = 0x4002,    /* ump_ev_release: interval is dead */
	UMP_EV_EVICTED = 0x4003,    /* ump_ev_release: subscription dropped (no ack in time) */
	UMP_EV_POPULATE = 0x4004,   /* ump_ev_populate: owner, write-fault this range yourself */
	UMP_EV_FORK = 0x4005,	    /* ump_ev_fork + fd: child's seq area (UM_INSERT_FOLLOW_FORK) */
};

/* Every reply body starts with this. */
struct ump_reply_hdr {
	int32_t status; /* 0 or -errno */
	uint32_t pad;
};

/* --- HELLO ----------------------------------------------------------- */

struct ump_hello {
	uint32_t version; /* highest protocol version the client speaks */
	uint32_t pad;
	uint64_t features; /* UM_PFEAT_* the client wants */
};

/* kernel feature bits the daemon detected (ump_hello_reply.kfeatures) */
#define UMP_KFEAT_PAGEMAP_SCAN (1ull << 0)
#define UMP_KFEAT_SOFT_DIRTY (1ull << 1)
#define UMP_KFEAT_PROCMAP_QUERY (1ull << 2)
#define UMP_KFEAT_PFN_VISIBLE (1ull << 3) /* this peer is shown real PFNs */
#define UMP_KFEAT_WP_UNPOPULATED (1ull << 4)
#define UMP_KFEAT_WP_ASYNC (1ull << 5)
#define UMP_KFEAT_IO_URING (1ull << 6)

struct ump_hello_reply {
	struct ump_reply_hdr r;
	uint32_t version;	 /* protocol version chosen */
	uint32_t result_size;	 /* bytes in the result buffer (fd attached) */
	uint64_t features;	 /* UM_PFEAT_* granted */
	uint64_t kfeatures;	 /* UM_KFEAT_* */
	uint64_t uffd_features;	 /* UFFDIO_API features the kernel offers */
	char daemon_version[32]; /* NUL-terminated */
};

/* --- ATTACH (owner hands over its userfaultfd) ------------------------ */

/* how the client created the uffd (ump_attach.uffd_mode) */
enum ump_proto_uffd_mode {
	UMP_UFFD_DEV = 1,	/* /dev/userfaultfd */
	UMP_UFFD_SYSCALL = 2,	/* userfaultfd(2) */
	UMP_UFFD_USER_ONLY = 3, /* userfaultfd(2) with UFFD_USER_MODE_ONLY */
};

/* ump_attach.flags */
#define UMP_ATTACH_ASYNC (1u << 0)  /* second uffd of an attached owner: WP_ASYNC tracking */
#define UMP_ATTACH_CANARY (1u << 1) /* @probe is the soft-dirty canary: see below */
#define UMP_ATTACH_ALL (UMP_ATTACH_ASYNC | UMP_ATTACH_CANARY)

/*
 * @probe proves that the uffd is the sender's own: a page of the sender's,
 * mapped readable and writable and present (written once), registered
 * with no userfaultfd, that nobody writes until the reply. The daemon
 * registers it on the uffd, write-protects it through the uffd and reads
 * the sender's /proc/PID/pagemap: its PTE must show uffd-wp; then
 * unprotects it the same way and the bit must be gone; then unregisters
 * it. The bit lives in the page table of the address space the uffd
 * serves, so another process's uffd (a child's, with the same layout and
 * the same page shared) fails: -EBADF. The page is the sender's again
 * when the reply arrives.
 *
 * With UMP_ATTACH_CANARY (first ATTACH only) the probe page also stays
 * mapped, private and writable, and unused by the sender, for the rest of
 * the process's life (never unmapped: the daemon may write it until it
 * has seen the connection close). The daemon writes a byte to it through
 * /proc/PID/mem after each soft-dirty clear and checks its soft-dirty bit
 * before the next: a clear it finds there was made by another writer of
 * /proc/PID/clear_refs (CRIU), whose clear took the bits of the writes
 * before it, so every soft-dirty interval is then reported written.
 */
struct ump_attach {
	uint32_t uffd_mode; /* enum ump_proto_uffd_mode */
	uint32_t flags;	    /* UM_ATTACH_* */
	uint64_t probe;	    /* page aligned, non-zero: see above */
};

struct ump_attach_reply {
	struct ump_reply_hdr r;
	uint64_t mm_id;		/* daemon's id for this address space */
	uint64_t uffd_features; /* what UFFDIO_API enabled on it */
	uint32_t seq_slots;	/* slots in the seq area (fd attached) */
	uint32_t pad;
};

/* --- intervals -------------------------------------------------------- */

/* ump_insert.flags */
#define UMP_INSERT_SYNC (1u << 0)	 /* writers wait for every ack (default) */
#define UM_INSERT_FOLLOW_FORK (1u << 1)	 /* mirror the child's copy too (UMP_EV_FORK) */
#define UMP_INSERT_TRACK_ASYNC (1u << 2) /* writers never wait: WP_ASYNC / soft-dirty / scan */
#define UMP_INSERT_ALL (UMP_INSERT_SYNC | UM_INSERT_FOLLOW_FORK | UMP_INSERT_TRACK_ASYNC)
#define UMP_SUBSCRIBE_ALL (UMP_INSERT_SYNC)

/* how an interval's writes are tracked (ump_insert_reply.backend, ump_list_rec) */
enum ump_proto_backend {
	UMP_BACKEND_UFFD_WP = 1,    /* sync uffd write-protect: every first write faults */
	UMP_BACKEND_WP_ASYNC = 2,   /* UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN harvest */
	UMP_BACKEND_SOFT_DIRTY = 3, /* clear_refs 4 + pagemap bit 55 */
	UMP_BACKEND_SCAN = 4,	    /* no write tracking: revalidation scan only */
	UMP_BACKEND_MAX = 4,
};

struct ump_insert {
	uint64_t start;	 /* page aligned */
	uint64_t length; /* page aligned, > 0, no overflow */
	uint32_t flags;	 /* UM_INSERT_* */
	uint32_t pad;
};

struct ump_insert_reply {
	struct ump_reply_hdr r;
	uint64_t interval_id; /* non-zero, unique for the daemon's life */
	uint32_t slot;	      /* index into the seq area */
	uint32_t backend;     /* enum ump_proto_backend */
};

struct ump_remove {
	uint64_t interval_id;
};

struct ump_subscribe {
	uint64_t interval_id;
	int32_t pid;	/* the owner */
	uint32_t flags; /* UMP_INSERT_SYNC: acknowledge invalidations */
};

struct ump_subscribe_reply {
	struct ump_reply_hdr r;
	uint64_t start;
	uint64_t length;
	uint32_t slot;
	uint32_t seq_slots; /* slots in the seq area (fd attached) */
};

/* --- snapshot --------------------------------------------------------- */

/* ump_snapshot.flags */
#define UMP_SNAP_NODES (1u << 0) /* also int32 NUMA node (or -errno) per page */
#define UMP_SNAP_ALL (UMP_SNAP_NODES)

struct ump_snapshot {
	uint64_t interval_id; /* 0: any attached address space of pid (umirrorctl show) */
	uint64_t start;	      /* page aligned */
	uint64_t npages;      /* > 0 */
	int32_t pid;	      /* with interval_id 0 */
	uint32_t flags;	      /* UM_SNAP_* */
};

struct ump_snapshot_reply {
	struct ump_reply_hdr r; /* 0, -EPERM (some page not readable), -EFAULT (hole) */
	uint64_t seq;		/* interval sequence read before the walk */
	uint64_t npages;	/* entries written (may be less than asked) */
	uint64_t offset;	/* byte offset of entry 0 in the result buffer */
	uint64_t nodes_offset;	/* UMP_SNAP_NODES: byte offset of int32 node[npages] */
};

/*
 * One snapshot entry (uint64_t): PFN in the low bits, flags above. PFN is
 * 0 when the peer may not see PFNs (as the kernel does for pagemap).
 */
#define UMP_E_PFN_MASK ((1ull << 52) - 1)
#define UMP_E_PRESENT (1ull << 52) /* maps a page (valid) */
#define UMP_E_WRITE (1ull << 53)   /* a CPU write would not trap */
#define UMP_E_ZERO (1ull << 54)	   /* the shared zero page */
#define UMP_E_SWAP (1ull << 55)	   /* swapped out */
#define UMP_E_FILE (1ull << 56)	   /* file page or shared anon */
#define UMP_E_EXCL (1ull << 57)	   /* mapped exclusively */
#define UMP_E_HUGE (1ull << 58)	   /* part of a huge page (THP/hugetlb) */
#define UMP_E_UFFD_WP (1ull << 59) /* still write-protected: not written since armed */
#define UMP_E_NOPERM (1ull << 62)  /* VMA without read permission (PROT_NONE) */
#define UMP_E_HOLE (1ull << 63)	   /* no VMA, or a part of the interval unmapped since insert */

/* --- fault (hmm_range_fault) ------------------------------------------ */

/* ump_fault.flags */
#define UMP_FAULT_WRITE (1u << 0) /* make every page present and writable */
#define UMP_FAULT_ALL (UMP_FAULT_WRITE)

struct ump_fault {
	uint64_t interval_id; /* the requester inserted or subscribed it */
	uint64_t start;	      /* page aligned, inside the interval */
	uint64_t npages;      /* > 0, inside the interval */
	uint32_t flags;	      /* UM_FAULT_* */
	uint32_t pad;
};

/*
 * The owner's library answers UMP_EV_POPULATE with this after
 * madvise(MADV_POPULATE_WRITE) over [start, end) returned.
 */
struct ump_ev_populate {
	uint64_t token; /* echo in ump_populate_done */
	uint64_t start; /* page aligned */
	uint64_t end;	/* exclusive, > start */
	uint32_t flags; /* 0 */
	uint32_t pad;
};

struct ump_populate_done {
	uint64_t token;
	int32_t status; /* 0 or -errno of the madvise */
	uint32_t pad;
};

/* --- grant / dirty / place / revalidate -------------------------------- */

#define UMP_GRANT_REVOKE (1u << 0)

struct ump_grant {
	uint64_t interval_id; /* inserted by the requester */
	uint32_t uid;	      /* may subscribe from now on (or no more: REVOKE) */
	uint32_t flags;	      /* UM_GRANT_* */
};

#define UMP_DIRTY_REARM (1u << 0) /* clear what is reported: next call starts from now */

struct ump_dirty {
	uint64_t interval_id;
	uint64_t start;	     /* page aligned, inside the interval */
	uint64_t end;	     /* exclusive, page aligned, > start, inside the interval */
	uint32_t max_ranges; /* > 0; the daemon also stops at result_size / 16 */
	uint32_t flags;	     /* UM_DIRTY_* */
};

struct ump_dirty_reply {
	struct ump_reply_hdr r; /* 0; -EOPNOTSUPP the backend cannot see writes */
	uint64_t count;		/* ump_dirty_rec written */
	uint64_t offset;	/* byte offset of record 0 in the result buffer */
	uint64_t walk_end;	/* harvest (and re-arm) covered [start, walk_end) */
	uint32_t backend;	/* enum ump_proto_backend that answered */
	uint32_t pad;
};

struct ump_dirty_rec {
	uint64_t start, end; /* page aligned, written since last re-armed */
};

struct ump_place {
	uint64_t interval_id;
	uint64_t start;	 /* page aligned, inside the interval */
	uint64_t npages; /* > 0 */
	int32_t node;	 /* >= 0 */
	uint32_t flags;	 /* 0 */
};

struct ump_place_reply {
	struct ump_reply_hdr r; /* 0; -ENODEV node offline; -EOPNOTSUPP no NUMA */
	uint64_t moved;		/* pages now on the node */
	uint64_t failed;	/* present pages that could not be moved */
};

#define UMP_REVAL_NOW (1u << 0)		    /* scan now; reply after its invalidations started */
#define UMP_REVAL_DEFAULT_PERIOD UINT32_MAX /* period_ms: the daemon's --revalidate-ms */

struct ump_revalidate {
	uint64_t interval_id;
	uint32_t period_ms; /* 0 off, UMP_REVAL_DEFAULT_PERIOD, else >= 10 */
	uint32_t flags;	    /* UM_REVAL_* */
};

struct ump_revalidate_reply {
	struct ump_reply_hdr r;
	uint64_t changed;   /* UMP_REVAL_NOW: pages the scan found changed */
	uint32_t period_ms; /* in force now (0: off) */
	uint32_t pad;
};

/* --- trap (seccomp user notification, UM_CONNECT_TRAP_VMA) ------------ */

/*
 * A thread of the sender's process is stopped in a system call that will
 * change the page tables of [start, end) (and of [start2, end2) when
 * end2 > 0: mremap's MREMAP_FIXED target). The daemon invalidates the
 * intervals of the sender's address space that meet the ranges and
 * answers once every synchronous receiver acknowledged; only then does the
 * library let the call continue. The seqs stay odd until the change shows
 * in the owner's maps or pagemap (or a bounded wait ran out: a call that
 * failed changes nothing).
 *
 * UMP_TRAP_BRK: @start is the new break; the daemon finds the range the
 * break drops ([start, end of the VMA covering it)), @end is 0.
 * UMP_TRAP_SHMDT: @start is shmdt's address; the range is the VMA there.
 * UMP_TRAP_CHILD (with or without one of those): @tid is a thread of
 * another process, a child that inherited the sender's filter; the
 * address space is that child's, served only if the daemon follows it
 * for the sender's process (UMP_INSERT_FOLLOW_FORK), else -ENOENT. A
 * daemon without it refuses the flag (-EINVAL).
 */
#define UMP_TRAP_BRK (1u << 0)
#define UMP_TRAP_SHMDT (1u << 1)
#define UMP_TRAP_CHILD (1u << 2)
#define UMP_TRAP_ALL (UMP_TRAP_BRK | UMP_TRAP_SHMDT | UMP_TRAP_CHILD)

struct ump_trap {
	uint64_t start, end;   /* page aligned; end > start unless BRK/SHMDT */
	uint64_t start2, end2; /* page aligned, or both 0 */
	uint32_t reason;       /* UMP_REASON_PROTECTION, _UNMAPPING, _REMOVE */
	uint32_t tid;	       /* the trapped thread (UMP_TRAP_CHILD: of another process) */
	uint32_t flags;	       /* UM_TRAP_* */
	uint32_t pad;
};

struct ump_trap_reply {
	struct ump_reply_hdr r; /* 0; -ENOENT the sender has no attached address space */
	uint32_t hits;		/* intervals invalidated (0: answered at once) */
	uint32_t pad;
};

/*
 * TRAP_HANDOVER (UMP_PFEAT_TRAP_HANDOVER), on the trap connection: a copy
 * of the process's seccomp listener (UMP_HANDOVER_LISTENER) and a memfd
 * holding a struct ump_trap_state (UMP_HANDOVER_STATE, sealed against
 * shrinking). The daemon receives nothing from the listener while the
 * connection is open; once the sender's end is closed (the process exited
 * or exec'd: the socket is close-on-exec and the library never closes it)
 * it serves the listener itself, first answering (CONTINUE) the
 * notifications the state names as received and not answered.
 * No reply: the process may be gone before the daemon reads these, and a
 * reply that finds it gone would end the connection with the listener
 * still unread (a refused fd is closed and logged).
 */
#define UMP_HANDOVER_LISTENER 1u
#define UMP_HANDOVER_STATE 2u

struct ump_trap_handover {
	uint32_t what; /* UMP_HANDOVER_LISTENER or UMP_HANDOVER_STATE */
	uint32_t pad;
};

/*
 * What the library's trap thread writes while it serves: the id of the
 * last notification it received, and those it holds for the daemon's
 * answer. The ids of one filter only grow; an id that was answered is
 * refused by the kernel (ENOENT), so answering a stale one is harmless.
 */
#define UMP_TRAP_STATE_MAGIC 0x50415254u /* "TRAP" */
#define UMP_TRAP_STATE_HELD 64

struct ump_trap_state {
	uint32_t magic; /* UMP_TRAP_STATE_MAGIC */
	uint32_t pad;
	uint64_t last;			    /* 0: none received yet */
	uint64_t held[UMP_TRAP_STATE_HELD]; /* 0: a free slot */
};

/* --- acknowledgement / status / list / watch -------------------------- */

struct ump_ack {
	uint64_t interval_id;
	uint64_t seq; /* the odd seq of the invalidation acknowledged */
};

struct ump_status_reply {
	struct ump_reply_hdr r;
	uint64_t kfeatures;
	uint64_t uffd_features;
	uint32_t clients;
	uint32_t mms;
	uint32_t intervals;
	uint32_t pad;
	uint64_t events; /* invalidations sent since start */
	uint64_t uptime_ms;
	int32_t pid;
	uint32_t pad2;
	char daemon_version[32];
	uint64_t kfeatures_masked; /* UM_KFEAT_* present but switched off (--mask-features) */
};

struct ump_list_reply {
	struct ump_reply_hdr r;
	uint64_t count;	 /* ump_list_rec entries written */
	uint64_t offset; /* byte offset of record 0 in the result buffer */
};

struct ump_list_rec {
	uint64_t interval_id;
	uint64_t mm_id;
	uint64_t start;
	uint64_t length;
	uint64_t seq;
	uint64_t invalidations; /* events on this interval */
	int32_t pid;		/* owner */
	uint32_t uid;		/* owner */
	uint32_t subscribers;
	uint32_t flags;		/* UM_INSERT_*, | UMP_LIST_DEAD */
	uint32_t backend;	/* enum ump_proto_backend */
	uint32_t revalidate_ms; /* scan period in force, 0 off */
};
#define UMP_LIST_DEAD (1u << 31)

struct ump_watch {
	int32_t pid; /* 0: every address space this peer may see */
	uint32_t pad;
};

/* --- events ----------------------------------------------------------- */

enum ump_proto_reason {
	UMP_REASON_WRITE = 1,	    /* first write since armed (uffd-wp fault), COW break */
	UMP_REASON_REMOVE = 2,	    /* madvise DONTNEED/REMOVE (UFFD_EVENT_REMOVE) */
	UMP_REASON_UNMAP = 3,	    /* munmap (UFFD_EVENT_UNMAP) */
	UMP_REASON_REMAP = 4,	    /* mremap moved pages away (UFFD_EVENT_REMAP) */
	UMP_REASON_FORK = 5,	    /* fork made written pages copy-on-write */
	UMP_REASON_RELEASE = 6,	    /* owner exited or detached */
	UMP_REASON_MIGRATE = 7,	    /* a placement request moves the pages (UMP_MSG_PLACE) */
	UMP_REASON_REVALIDATE = 8,  /* the revalidation scan found a change after the fact */
	UMP_REASON_PROTECT = 9,	    /* the daemon write-protects pages a mirror may hold
				       writable: INSERT of an overlapping interval,
				       dirty REARM */
	UMP_REASON_PROTECTION = 10, /* before mprotect/pkey_mprotect (TRAP) */
	UMP_REASON_UNMAPPING = 11,  /* before munmap, mremap, mmap MAP_FIXED, shmdt, brk (TRAP) */
	UMP_REASON_MAX = 11,
};

/* ump_ev_invalidate.flags */
#define UMP_INV_SYNC (1u << 0)	/* acknowledge with UMP_MSG_ACK{interval_id, seq} */
#define UMP_INV_WATCH (1u << 1) /* a copy sent to a watcher; nothing to do */

struct ump_ev_invalidate {
	uint64_t interval_id;
	uint64_t start;	 /* page aligned, inside the interval */
	uint64_t end;	 /* exclusive */
	uint64_t seq;	 /* the (odd) sequence value during this invalidation */
	uint32_t reason; /* enum ump_proto_reason */
	uint32_t flags;	 /* UM_INV_* */
	int32_t pid;	 /* owner */
	uint32_t tid;	 /* faulting thread (UFFD_FEATURE_THREAD_ID) or 0 */
};

struct ump_ev_release {
	uint64_t interval_id;
	int32_t error; /* -EFAULT owner gone, -ETIMEDOUT evicted, ... */
	uint32_t pad;
};

/*
 * The owner forked and inserted @parent_interval_id with
 * UM_INSERT_FOLLOW_FORK: the child's copy is now interval
 * @child_interval_id of the child's address space, owned by the same
 * connection, slot @slot of the seq area whose fd rides with the event.
 */
struct ump_ev_fork {
	uint64_t parent_interval_id;
	uint64_t child_interval_id;
	uint64_t start;
	uint64_t length;
	int32_t child_pid;
	uint32_t slot;
	uint32_t seq_slots;
	uint32_t pad;
};

/* --- seq area --------------------------------------------------------- */

/*
 * The most slots a seq area has (16 MiB of memfd). The daemon makes each
 * area this size or smaller (umirrord --max-intervals-per-mm) at once; the
 * file is sparse, so memory follows the slots in use, and a client may map
 * all of it (seq_slots in the replies) or just the page of its slot.
 */
#define UMP_SEQ_SLOTS_MAX (1u << 20)

/*
 * One interval's sequence. seq is even while valid, odd while an
 * invalidation is in progress; every invalidation moves it forward by
 * two in total. Waiters futex-wait (shared, not private) on the 32-bit
 * word holding seq's low half (ump_seq_futex_word()).
 */
struct ump_seq_slot {
	uint64_t seq;
	uint32_t flags; /* UM_SLOT_* */
	uint32_t pad;
};
#define UMP_SLOT_LIVE (1u << 0)
#define UMP_SLOT_DEAD (1u << 1) /* owner gone: waiters return -EFAULT */

static inline uint32_t *ump_seq_futex_word(struct ump_seq_slot *s)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint32_t *)&s->seq;
#else
	return (uint32_t *)&s->seq + 1;
#endif
}

/* --- layout checks ---------------------------------------------------- */

_Static_assert(sizeof(struct ump_hdr) == 24, "ump_hdr");
_Static_assert(offsetof(struct ump_hdr, length) == 12, "ump_hdr.length");
_Static_assert(offsetof(struct ump_hdr, id) == 16, "ump_hdr.id");
_Static_assert(sizeof(struct ump_reply_hdr) == 8, "ump_reply_hdr");
_Static_assert(sizeof(struct ump_hello) == 16, "ump_hello");
_Static_assert(sizeof(struct ump_hello_reply) == 72, "ump_hello_reply");
_Static_assert(offsetof(struct ump_hello_reply, daemon_version) == 40, "hello_reply.version");
_Static_assert(sizeof(struct ump_attach) == 16, "ump_attach");
_Static_assert(offsetof(struct ump_attach, probe) == 8, "ump_attach.probe");
_Static_assert(sizeof(struct ump_attach_reply) == 32, "ump_attach_reply");
_Static_assert(sizeof(struct ump_insert) == 24, "ump_insert");
_Static_assert(sizeof(struct ump_insert_reply) == 24, "ump_insert_reply");
_Static_assert(sizeof(struct ump_remove) == 8, "ump_remove");
_Static_assert(sizeof(struct ump_subscribe) == 16, "ump_subscribe");
_Static_assert(sizeof(struct ump_subscribe_reply) == 32, "ump_subscribe_reply");
_Static_assert(sizeof(struct ump_snapshot) == 32, "ump_snapshot");
_Static_assert(sizeof(struct ump_snapshot_reply) == 40, "ump_snapshot_reply");
_Static_assert(sizeof(struct ump_fault) == 32, "ump_fault");
_Static_assert(sizeof(struct ump_ev_populate) == 32, "ump_ev_populate");
_Static_assert(sizeof(struct ump_populate_done) == 16, "ump_populate_done");
_Static_assert(sizeof(struct ump_grant) == 16, "ump_grant");
_Static_assert(sizeof(struct ump_dirty) == 32, "ump_dirty");
_Static_assert(sizeof(struct ump_dirty_reply) == 40, "ump_dirty_reply");
_Static_assert(sizeof(struct ump_dirty_rec) == 16, "ump_dirty_rec");
_Static_assert(sizeof(struct ump_place) == 32, "ump_place");
_Static_assert(sizeof(struct ump_place_reply) == 24, "ump_place_reply");
_Static_assert(sizeof(struct ump_revalidate) == 16, "ump_revalidate");
_Static_assert(sizeof(struct ump_revalidate_reply) == 24, "ump_revalidate_reply");
_Static_assert(sizeof(struct ump_ev_fork) == 48, "ump_ev_fork");
_Static_assert(sizeof(struct ump_ack) == 16, "ump_ack");
_Static_assert(sizeof(struct ump_trap) == 48, "ump_trap");
_Static_assert(offsetof(struct ump_trap, tid) == 36, "ump_trap.tid");
_Static_assert(offsetof(struct ump_trap, flags) == 40, "ump_trap.flags");
_Static_assert(!(UMP_TRAP_CHILD & (UMP_TRAP_BRK | UMP_TRAP_SHMDT)),
	       "UMP_TRAP_CHILD: a bit of its own");
_Static_assert(sizeof(struct ump_trap_reply) == 16, "ump_trap_reply");
_Static_assert(sizeof(struct ump_trap_handover) == 8, "ump_trap_handover");
_Static_assert(sizeof(struct ump_trap_state) == 16 + 8 * UMP_TRAP_STATE_HELD, "ump_trap_state");
_Static_assert(sizeof(struct ump_status_reply) == 104, "ump_status_reply");
_Static_assert(sizeof(struct ump_list_reply) == 24, "ump_list_reply");
_Static_assert(sizeof(struct ump_list_rec) == 72, "ump_list_rec");
_Static_assert(sizeof(struct ump_watch) == 8, "ump_watch");
_Static_assert(sizeof(struct ump_ev_invalidate) == 48, "ump_ev_invalidate");
_Static_assert(sizeof(struct ump_ev_release) == 16, "ump_ev_release");
_Static_assert(sizeof(struct ump_seq_slot) == 16, "ump_seq_slot");
_Static_assert(sizeof(struct ump_hdr) + sizeof(struct ump_status_reply) <= UMP_MSG_MAX, "max");

/* --- the message list ------------------------------------------------- */

/*
 * Every message type, once: X(type, name, body size, fds, receiving side,
 * field check). proto.c expands it into the decoder's type table (so two
 * entries with one type value do not compile), the names, and the call of
 * check_<field check>() on each received body; the daemon's dispatch
 * table and the tests read the same facts through ump_proto_body_size(),
 * ump_proto_fds() and ump_msg_type_name(). A new message is a line here, its
 * check in proto.c, and (for a request) its handler in daemon/dispatch.c.
 *
 * A reply's check also checks its ump_reply_hdr status; "none" checks
 * nothing (an empty body).
 */
#define UMP_PROTO_MESSAGES(X)                                                                      \
	/* requests */                                                                             \
	X(UMP_MSG_HELLO, "HELLO", sizeof(struct ump_hello), 0, UMP_SIDE_DAEMON, hello)             \
	X(UMP_MSG_ATTACH, "ATTACH", sizeof(struct ump_attach), 1, UMP_SIDE_DAEMON, attach)         \
	X(UMP_MSG_INSERT, "INSERT", sizeof(struct ump_insert), 0, UMP_SIDE_DAEMON, insert)         \
	X(UMP_MSG_REMOVE, "REMOVE", sizeof(struct ump_remove), 0, UMP_SIDE_DAEMON, remove)         \
	X(UMP_MSG_SUBSCRIBE, "SUBSCRIBE", sizeof(struct ump_subscribe), 0, UMP_SIDE_DAEMON,        \
	  subscribe)                                                                               \
	X(UMP_MSG_SNAPSHOT, "SNAPSHOT", sizeof(struct ump_snapshot), 0, UMP_SIDE_DAEMON, snapshot) \
	X(UMP_MSG_ACK, "ACK", sizeof(struct ump_ack), 0, UMP_SIDE_DAEMON, ack)                     \
	X(UMP_MSG_STATUS, "STATUS", 0, 0, UMP_SIDE_DAEMON, none)                                   \
	X(UMP_MSG_LIST, "LIST", 0, 0, UMP_SIDE_DAEMON, none)                                       \
	X(UMP_MSG_WATCH, "WATCH", sizeof(struct ump_watch), 0, UMP_SIDE_DAEMON, watch)             \
	X(UMP_MSG_PING, "PING", 0, 0, UMP_SIDE_DAEMON, none)                                       \
	X(UMP_MSG_FAULT, "FAULT", sizeof(struct ump_fault), 0, UMP_SIDE_DAEMON, fault)             \
	X(UMP_MSG_POPULATE_DONE, "POPULATE_DONE", sizeof(struct ump_populate_done), 0,             \
	  UMP_SIDE_DAEMON, populate_done)                                                          \
	X(UMP_MSG_GRANT, "GRANT", sizeof(struct ump_grant), 0, UMP_SIDE_DAEMON, grant)             \
	X(UMP_MSG_DIRTY, "DIRTY", sizeof(struct ump_dirty), 0, UMP_SIDE_DAEMON, dirty)             \
	X(UMP_MSG_PLACE, "PLACE", sizeof(struct ump_place), 0, UMP_SIDE_DAEMON, place)             \
	X(UMP_MSG_REVALIDATE, "REVALIDATE", sizeof(struct ump_revalidate), 0, UMP_SIDE_DAEMON,     \
	  revalidate)                                                                              \
	X(UMP_MSG_TRAP, "TRAP", sizeof(struct ump_trap), 0, UMP_SIDE_DAEMON, trap)                 \
	X(UMP_MSG_TRAP_HANDOVER, "TRAP_HANDOVER", sizeof(struct ump_trap_handover), 1,             \
	  UMP_SIDE_DAEMON, trap_handover)                                                          \
	/* replies (ACK, POPULATE_DONE and TRAP_HANDOVER have none) */                             \
	X(UMP_MSG_HELLO | UMP_REPLY, "HELLO|REPLY", sizeof(struct ump_hello_reply), 1,             \
	  UMP_SIDE_CLIENT, hello_reply)                                                            \
	X(UMP_MSG_ATTACH | UMP_REPLY, "ATTACH|REPLY", sizeof(struct ump_attach_reply), 1,          \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_INSERT | UMP_REPLY, "INSERT|REPLY", sizeof(struct ump_insert_reply), 0,          \
	  UMP_SIDE_CLIENT, insert_reply)                                                           \
	X(UMP_MSG_REMOVE | UMP_REPLY, "REMOVE|REPLY", sizeof(struct ump_reply_hdr), 0,             \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_SUBSCRIBE | UMP_REPLY, "SUBSCRIBE|REPLY", sizeof(struct ump_subscribe_reply), 1, \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_SNAPSHOT | UMP_REPLY, "SNAPSHOT|REPLY", sizeof(struct ump_snapshot_reply), 0,    \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_STATUS | UMP_REPLY, "STATUS|REPLY", sizeof(struct ump_status_reply), 0,          \
	  UMP_SIDE_CLIENT, status_reply)                                                           \
	X(UMP_MSG_LIST | UMP_REPLY, "LIST|REPLY", sizeof(struct ump_list_reply), 0,                \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_WATCH | UMP_REPLY, "WATCH|REPLY", sizeof(struct ump_reply_hdr), 0,               \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_PING | UMP_REPLY, "PING|REPLY", sizeof(struct ump_reply_hdr), 0,                 \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_FAULT | UMP_REPLY, "FAULT|REPLY", sizeof(struct ump_snapshot_reply), 0,          \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_GRANT | UMP_REPLY, "GRANT|REPLY", sizeof(struct ump_reply_hdr), 0,               \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_DIRTY | UMP_REPLY, "DIRTY|REPLY", sizeof(struct ump_dirty_reply), 0,             \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_PLACE | UMP_REPLY, "PLACE|REPLY", sizeof(struct ump_place_reply), 0,             \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	X(UMP_MSG_REVALIDATE | UMP_REPLY, "REVALIDATE|REPLY", sizeof(struct ump_revalidate_reply), \
	  0, UMP_SIDE_CLIENT, reply)                                                               \
	X(UMP_MSG_TRAP | UMP_REPLY, "TRAP|REPLY", sizeof(struct ump_trap_reply), 0,                \
	  UMP_SIDE_CLIENT, reply)                                                                  \
	/* events (id 0) */                                                                        \
	X(UMP_EV_INVALIDATE, "INVALIDATE", sizeof(struct ump_ev_invalidate), 0, UMP_SIDE_CLIENT,   \
	  ev_invalidate)                                                                           \
	X(UMP_EV_RELEASE, "RELEASE", sizeof(struct ump_ev_release), 0, UMP_SIDE_CLIENT,            \
	  ev_release)                                                                              \
	X(UMP_EV_EVICTED, "EVICTED", sizeof(struct ump_ev_release), 0, UMP_SIDE_CLIENT,            \
	  ev_release)                                                                              \
	X(UMP_EV_POPULATE, "POPULATE", sizeof(struct ump_ev_populate), 0, UMP_SIDE_CLIENT,         \
	  ev_populate)                                                                             \
	X(UMP_EV_FORK, "FORK", sizeof(struct ump_ev_fork), 1, UMP_SIDE_CLIENT, ev_fork)

/* --- decoder (proto.c) ------------------------------------------------ */

/* Who is decoding: a daemon accepts requests, a client replies and events. */
enum ump_proto_side {
	UMP_SIDE_DAEMON = 1,
	UMP_SIDE_CLIENT = 2,
};

/*
 * struct ump_msg - a decoded, validated message. body points into the
 * caller's buffer and is suitably aligned (callers receive into an
 * 8-byte aligned buffer); body_len is exactly the size the type requires.
 */
struct ump_msg {
	const struct ump_hdr *hdr;
	const void *body;
	size_t body_len;
	uint16_t type;
	uint64_t id;
};

/**
 * ump_proto_decode() - validate one received message.
 * @side: which side is decoding (decides which types are legal)
 * @buf: the datagram, 8-byte aligned
 * @len: bytes received (MSG_TRUNC must already have been ruled out)
 * @nfds: file descriptors that arrived with it
 * @out: filled on success
 *
 * Checks magic, version, header length field against @len, that the type
 * is legal for @side, the exact body size for the type, that @nfds equals
 * what the type carries, and the counts and ranges inside the body
 * (alignment, zero, overflow, enum values). Pure: no I/O, no allocation.
 *
 * Return: 0, or -EPROTO (bad header/type/length/fd count) or -EINVAL (a
 * field's value is out of range). The caller drops the peer on -EPROTO
 * and answers -EINVAL to a request with a bad field.
 */
int ump_proto_decode(enum ump_proto_side side, const void *buf, size_t len, unsigned int nfds,
		     struct ump_msg *out);

/**
 * ump_proto_encode() - build a message in @buf.
 * @buf: at least UMP_MSG_MAX bytes, 8-byte aligned
 * @type: message type
 * @id: request id (0 for events)
 * @body: body bytes, copied after the header (may be NULL if @body_len is 0)
 * @body_len: body size
 *
 * Return: total length to send (header + body); never fails for the
 * fixed-size bodies of this header (asserts @body_len fits).
 */
size_t ump_proto_encode(void *buf, uint16_t type, uint64_t id, const void *body, size_t body_len);

/**
 * ump_proto_body_size() - the exact body size of a message type.
 * Return: the size, or -1 for an unknown type.
 */
long ump_proto_body_size(uint16_t type);

/** ump_proto_fds() - how many fds a message type carries (0 or 1). */
unsigned int ump_proto_fds(uint16_t type);

/** ump_reason_name() - "write", "remove", ... or "?" for an unknown reason. */
const char *ump_reason_name(uint32_t reason);

/** ump_msg_type_name() - "HELLO", "SNAPSHOT|REPLY", "INVALIDATE", ... */
const char *ump_msg_type_name(uint16_t type);

#endif /* UMIRROR_PROTO_H */
