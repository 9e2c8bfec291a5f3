/* SPDX-License-Identifier: MIT */
/*
 * server_types.h - the daemon's server and its connections: types only.
 *
 * Everything runs on one libuv loop thread, so nothing here is locked.
 * The functions are in peer.h (one connection) and server.h (listener).
 */
#ifndef UMD_SERVER_TYPES_H
#define UMD_SERVER_TYPES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "idmap.h"
#include "kfeat.h"
#include "uidlimits.h"
#include "list.h"
#include "umirror_proto.h"
#include "umirror_version.h"

#define UMD_VERSION UMIRROR_VERSION_STRING
/*
 * A client is "too slow" once its send queue holds UMD_SENDQ_MAX messages
 * plus UMD_SENDQ_PER_INTERVAL per interval it may hear of (peer.c,
 * client_send()): what the daemon sends on its own for one kernel event
 * (a fork, a zap, an exit) is up to a message or two per interval, and a
 * connection that reads all along must not be dropped for that.
 */
#define UMD_SENDQ_MAX 1024
#define UMD_SENDQ_PER_INTERVAL 2

struct um_opts {
	const char *socket_path;
	mode_t mode;
	bool group_set; /* --group given: the socket file's group */
	gid_t group;
	unsigned int ack_timeout_ms;
	uint32_t result_size;
	struct limits_cfg limits;
	uint32_t seq_slots_max; /* intervals per address space (--max-intervals-per-mm), 0: most */
	bool pfn_group_set;	/* --pfn-group given: pfn_group's members see PFNs too */
	gid_t pfn_group;
	unsigned int revalidate_ms; /* default scan period (UMP_REVAL_DEFAULT_PERIOD), 0 off */
	unsigned int write_granule; /* pages a write streak's granule grows to, 1..512 */
	uint64_t mask_features;	    /* UM_KFEAT_* never to use (--mask-features,
				       $UMIRRORD_MASK_FEATURES) */
	bool trap_forbid; /* --trap=forbid: TRAP requests refused, UMP_PFEAT_TRAP not granted */
	bool verbose;
};

struct client;
struct mm;
struct interval;
struct server;

/*
 * The connection hands each decoded request to this hook (@fd, the fd
 * that came with it or -1, is consumed): dispatch_request() in
 * dispatch.c, which knows the request types, installed by the caller of
 * server_init() so that the connection code never calls up into them.
 */
typedef void server_dispatch_fn(struct client *c, const struct ump_msg *m, int fd);

/*
 * What a lower floor needs done by an upper one (docs/ARCHITECTURE.md):
 * each hook is installed by the module that implements it, at init, and
 * may be NULL (nothing to do: a unit test links the lower floors alone).
 */
struct server_hooks {
	/* server.c: the connection is being freed: its mm and receivers go */
	void (*client_gone)(struct client *c);
	/* uffd_event.c: read and handle the events of the uffd polled by @p */
	uv_poll_cb uffd_cb;
	/*
	 * uffd_event.c: called between two pieces of a connection's work
	 * (each received message): serves uffd events that became ready
	 * meanwhile, at most once per few microseconds (uffd_event_tick());
	 * true if it handled any
	 */
	bool (*tick)(struct server *s);
	/* settle.c: a write-protect change of [start, end) is about to be made */
	void (*wp_note)(struct mm *mm, uint64_t start, uint64_t end, bool wp);
	/* scan.c: an invalidation of [start, end) of @iv completed */
	void (*explained)(struct interval *iv, uint64_t start, uint64_t end);
	/*
	 * scan.c: an invalidation whose only change was write-protecting
	 * [start, end) of @iv completed (inval_armed_only())
	 */
	void (*armed)(struct interval *iv, uint64_t start, uint64_t end);
	/* scan.c: the soft-dirty harvest found [start, end) of @iv written */
	void (*soft_written)(struct interval *iv, uint64_t start, uint64_t end);
	/*
	 * scan.c: a receiver of @iv is handed the entries @e (UM_E_*, PFNs
	 * shown) of [start, +npages) of it, read from the pagemap just now
	 */
	void (*handed)(struct interval *iv, uint64_t start, uint64_t npages, const uint64_t *e);
};

struct server {
	uv_loop_t *loop;
	server_dispatch_fn *dispatch;
	struct server_hooks hooks;
	struct um_opts opt;
	struct kfeat kf;
	struct limits limits; /* per-uid usage under opt.limits */
	int listen_fd;
	int null_fd;	   /* /dev/null: the fd slot of an error reply */
	int kpageflags_fd; /* -1 unless THP detection is possible */
	uv_poll_t listen_poll;
	/*
	 * uffd_event.c: every mm's uffds in one epoll set of their own, polled
	 * by the loop and looked at between other work (uffd_event_tick())
	 */
	bool uffd_ep_on;
	bool uffd_draining; /* inside uffd_event.c's drain: no nested one */
	int uffd_ep;
	uv_poll_t uffd_ep_poll;
	uv_check_t uffd_check;	 /* the end of a loop turn: write faults ticks read */
	uint64_t uffd_looked_ns; /* uv_hrtime() of the last look at uffd_ep */
	uv_timer_t ack_timer;
	uv_timer_t scan_timer; /* scan.c: the earliest due revalidation scan */
	struct list scans;     /* struct scan_state.link, intervals with a period */
	uv_idle_t reaper;
	uv_idle_t settle_idle; /* busy polls of REMOVEs waiting for their zap */
	uv_timer_t settle_timer;
	struct list settling; /* struct settle, acked and waiting */
	struct list clients;
	struct list mms;
	struct list timed; /* struct inval.timed_link, oldest deadline first */
	unsigned int nclients, nmms, nintervals;
	uint64_t next_client_id, next_mm_id, next_interval_id;
	uint64_t events;
	uint64_t start_ms;
};

/*
 * An fd many queued messages carry (a forked child's seq area, one for
 * each of its copies): one open file for all, however many are queued,
 * so a fork followed over thousands of intervals does not hold thousands
 * of fds (peer.h, client_send_shared()).
 */
struct sendfd {
	int fd;
	unsigned int refs;
};

struct outmsg {
	struct list link;
	int fd;		    /* owned; sent with the message, then closed */
	struct sendfd *sfd; /* or this, a reference dropped once sent */
	size_t len;
	uint64_t buf[]; /* len bytes, rounded up to 8 */
};

struct client {
	struct list link; /* server.clients */
	struct server *srv;
	uint64_t id;
	int fd;
	uv_poll_t poll;
	int poll_events;
	int pidfd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool hello;
	bool charged; /* counted in the uid's client limit */
	bool pfn_visible;
	bool dropping;
	bool watching;
	pid_t watch_pid; /* 0: every address space this peer may see */
	uint64_t features;
	void *result; /* our RW mapping of the result buffer */
	uint32_t result_size;
	struct mm *mm;	       /* the address space this connection attached */
	struct list receivers; /* struct receiver.client_link */
	/*
	 * The same receivers by interval id (a connection has at most one per
	 * interval): every acknowledgement names its interval, so the ack path
	 * looks it up in O(1) whatever the number of intervals (lookup.c).
	 */
	struct idmap receiver_ids;
	struct list outq; /* struct outmsg */
	unsigned int outq_len;
	/*
	 * The most intervals this client could hear of (receivers, for a
	 * watcher every interval) at any time since its queue was last
	 * empty: what sizes its queue limit. The peak, not the present
	 * count: a burst of releases frees the receivers it reports.
	 */
	unsigned int outq_held;
	/*
	 * Messages ever queued (not sent at once) and ever flushed from the
	 * queue into the socket, and when the queue last moved: the ack
	 * timeout of an invalidation runs from when its event reached the
	 * socket (inval.c), not while it waited behind a burst.
	 */
	uint64_t sendq_in, sendq_out;
	uint64_t sendq_moved_ms;
	struct list deferred; /* struct deferred: requests answered later */
	/* TRAP_HANDOVER: served by trap_serve once the peer hung up, else closed */
	int trap_listener, trap_state;
};

/*
 * A request whose reply waits for something (FAULT waits for the
 * invalidation's acks and the owner's populate; PLACE for acks and the
 * migration). The handler embeds this in its own record, calls
 * deferred_add() and returns -EINPROGRESS; later deferred_reply() answers
 * and unlinks it. If the client goes first, client teardown calls
 * @cancel (which must unlink the record from whatever else holds it and
 * free it) instead.
 */
struct deferred {
	struct list link; /* client.deferred */
	struct client *c;
	uint64_t id;
	uint16_t type; /* the request type */
	void (*cancel)(struct deferred *d);
};

#endif /* UMD_SERVER_TYPES_H */
