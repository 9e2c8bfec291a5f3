/* SPDX-License-Identifier: MIT */
/*
 * server.h - the daemon's listening socket, its clients and their queues.
 *
 * Everything runs on one libuv loop thread, so nothing here is locked.
 * A client that must go away is only marked (client_drop()); the actual
 * teardown happens from an idle handle after the current callback, so no
 * caller ever sees an object freed under its feet.
 */
#ifndef UMD_SERVER_H
#define UMD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "kfeat.h"
#include "uidlimits.h"
#include "list.h"
#include "umirror_proto.h"
#include "umirror_version.h"

#define UMD_VERSION UMIRROR_VERSION_STRING
#define UMD_SENDQ_MAX 1024 /* queued messages before a client is "too slow" */

struct um_opts {
	const char *socket_path;
	mode_t mode;
	bool group_set; /* --group given: the socket file's group */
	gid_t group;
	unsigned int ack_timeout_ms;
	uint32_t result_size;
	struct limits_cfg limits;
	bool pfn_group_set; /* --pfn-group given: pfn_group's members see PFNs too */
	gid_t pfn_group;
	unsigned int revalidate_ms; /* default scan period (UM_REVAL_DEFAULT_PERIOD), 0 off */
	uint64_t mask_features;	    /* UM_KFEAT_* never to use (--mask-features,
				       $UMIRRORD_MASK_FEATURES) */
	bool trap_forbid; /* --trap=forbid: TRAP requests refused, UM_PFEAT_TRAP not granted */
	bool verbose;
};

struct client;

/*
 * The connection hands each decoded request to this hook (@fd, the fd
 * that came with it or -1, is consumed): dispatch_request() in
 * dispatch.c, which knows the request types, installed by the caller of
 * server_init() so that the connection code never calls up into them.
 */
typedef void server_dispatch_fn(struct client *c, const struct um_msg *m, int fd);

struct server {
	uv_loop_t *loop;
	server_dispatch_fn *dispatch;
	struct um_opts opt;
	struct kfeat kf;
	struct limits limits; /* per-uid usage under opt.limits */
	int listen_fd;
	int null_fd;	   /* /dev/null: the fd slot of an error reply */
	int kpageflags_fd; /* -1 unless THP detection is possible */
	uv_poll_t listen_poll;
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

struct outmsg {
	struct list link;
	int fd; /* owned; sent with the message, then closed */
	size_t len;
	uint64_t buf[UM_MSG_MAX / 8];
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
	struct list outq;      /* struct outmsg */
	unsigned int outq_len;
	struct list deferred; /* struct deferred: requests answered later */
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

/**
 * server_init() - probe the kernel, create the listening socket, start
 * polling it and the timers on @loop.
 * @s: zeroed server, opt and dispatch filled by the caller
 * @loop: the loop everything runs on
 *
 * Return: 0, or -errno (the socket path is in use by a live daemon:
 * -EADDRINUSE; no dispatch hook: -EINVAL). Logs the reason.
 */
int server_init(struct server *s, uv_loop_t *loop);

/**
 * server_adopt_client() - serve @fd as a client connection, as if accepted.
 * @s: initialised server
 * @fd: connected nonblocking SOCK_SEQPACKET socket (CLOEXEC); ownership
 *      moves to this function in every case
 *
 * The peer is identified by SO_PEERCRED/SO_PEERPIDFD like any accepted
 * connection. The listening socket uses it; so does a transport test (a
 * socketpair's other end is then the client).
 * Return: 0, or -errno (@fd is closed, the reason logged).
 */
int server_adopt_client(struct server *s, int fd);

/**
 * server_shutdown() - release every address space (their writers resume),
 * drop every client, close the listening socket and unlink its path.
 * After it the loop has only closing handles left; uv_run() finishes them.
 */
void server_shutdown(struct server *s);

/**
 * client_send() - send one message to @c, or queue it if the socket is full.
 * @c: client (a dropping client swallows the message)
 * @type: message type
 * @id: request id (0 for events)
 * @body: body, @len bytes (fits UM_MSG_MAX)
 * @fd: fd to pass, or -1; ownership moves to this function in every case
 *
 * Never blocks. A queue beyond UMD_SENDQ_MAX marks @c for dropping.
 * Return: 0 sent or queued; -ENOTCONN when @c is (now) being dropped.
 */
int client_send(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len, int fd);

/**
 * client_reply() - answer request @id of @type from @c.
 * @status: 0 or -errno, written into the um_reply_hdr that starts @body
 * @body: the reply body of @len bytes (the reply type's size), or NULL;
 *        on an error status it is zeroed (an error reply still has the
 *        type's full size and fd count)
 * @fd: fd to send with it, or -1; ownership moves here in every case. A
 *      reply type that carries an fd gets /dev/null when none is given.
 *
 * Never blocks (client_send()).
 */
void client_reply(struct client *c, uint16_t type, uint64_t id, int status, void *body, size_t len,
		  int fd);

/**
 * deferred_add() - park request @id of @type from @c until deferred_reply().
 * @cancel: called (instead of any reply) if @c is freed first
 */
void deferred_add(struct client *c, struct deferred *d, uint16_t type, uint64_t id,
		  void (*cancel)(struct deferred *d));

/**
 * deferred_reply() - answer a parked request and unlink @d (the caller
 * frees it). @body is the full reply body of @d->type (status is written
 * into its um_reply_hdr); on an error status the body is zeroed as
 * every error reply is. Never blocks.
 */
void deferred_reply(struct deferred *d, int status, void *body, size_t len);

/**
 * client_drop() - mark @c for removal with a logged @reason (idempotent).
 * The teardown (owner release, acks counted as given, subscriptions ended)
 * runs later from the loop; until then @c receives nothing.
 */
void client_drop(struct client *c, const char *reason);

/**
 * client_drop_bad() - client_drop() of a client that broke the protocol
 * (bad message, request before HELLO, unknown version): logged as a
 * warning, not as info, since the program behind it has a bug to find.
 */
void client_drop_bad(struct client *c, const char *reason);

/**
 * client_may_see() - may @c see an address space owned by @owner_uid?
 * True for root peers and peers of the same uid.
 */
bool client_may_see(const struct client *c, uid_t owner_uid);

/**
 * server_watch_copy() - send @ev (with UM_INV_WATCH) to every watcher of
 * the address space of @pid owned by @owner_uid.
 */
void server_watch_copy(struct server *s, pid_t pid, uid_t owner_uid,
		       const struct um_ev_invalidate *ev);

/** server_now_ms() - the loop's clock in milliseconds. */
uint64_t server_now_ms(const struct server *s);

#endif /* UMD_SERVER_H */
