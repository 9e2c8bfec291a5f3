/* SPDX-License-Identifier: MIT */
/*
 * types.h - the library's objects: the connection (struct um_client) and
 * an interval (struct um_interval). Types only, no functions: every
 * library module may include it (library-private).
 *
 * Locks, outermost first:
 *   req_lock   one request outstanding per client, held for its round trip
 *   lock       client state: the waiter slot, the reader role, the
 *              interval table, dead/closing; never held during I/O that
 *              can block for long, never during a callback
 *   send_lock  around sendmsg, so an ack never interleaves a request
 *
 * The "reader role" (c->reading) is held by whichever thread is reading
 * the socket: the event thread, um_dispatch(), or (without an event
 * thread) a thread waiting for its reply. The reader routes replies to
 * the waiter and runs callbacks; because it keeps the role while a
 * callback runs, callbacks never run concurrently.
 */
#ifndef UM_TYPES_H
#define UM_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "umirror.h"
#include "umirror_proto.h"

#define UM_REQUEST_TIMEOUT_MS 10000

struct um_client;
struct um_populate;
struct call_sink;

/*
 * call_hook - work the reader does on a successful reply before it wakes
 * the waiter, under c->lock: the interval an INSERT or SUBSCRIBE creates
 * must be in the table before the reader handles the next message, which
 * may already be an event for it.
 */
struct call_hook {
	void (*fn)(struct um_client *c, struct conn_msg *reply, void *arg);
	void *arg;
};

struct um_interval {
	struct um_client *c;
	uint64_t id;
	uint64_t start;
	uint64_t length;
	pid_t pid;			 /* owner */
	const struct ump_seq_slot *slot; /* in c->seq_area or in map */
	void *map;			 /* a subscriber's mapping of the owner's seq area */
	size_t map_len;
	const struct um_interval_ops *ops;
	void *priv;
	bool sync;
	enum um_backend backend; /* from the insert reply (a subscriber: from LIST) */
	atomic_bool dead;	 /* released, evicted, or the connection is dead */
	bool released;		 /* release callback called (or not to be called) */
	bool removing;		 /* um_interval_remove() started: no more callbacks */
	unsigned int busy;	 /* callbacks running; remove waits for 0 (c->lock) */
};

struct um_client {
	int fd;
	bool has_thread;
	pthread_t thread;

	pthread_mutex_t req_lock;
	pthread_mutex_t lock;
	pthread_mutex_t send_lock;
	pthread_cond_t cond;	      /* reply arrived, role freed, callback done */
	const struct call_sink *sink; /* where the reader reports events (call.h) */

	atomic_uint_fast64_t next_id;

	/* under lock */
	bool reading;
	atomic_bool dead; /* written under lock, read locklessly by read_begin */
	bool closing;	  /* um_disconnect(): no release callbacks */
	uint64_t wait_id;
	uint16_t wait_type; /* the reply type expected */
	bool wait_done;
	int wait_err; /* -ENOTCONN when the connection died meanwhile */
	struct conn_msg *wait_msg;
	const struct call_hook *wait_hook;
	struct um_interval **ivs; /* sorted by id */
	size_t niv, cap_iv;
	void (*watch_cb)(uint64_t interval_id, pid_t pid, const struct um_invalidation *inv,
			 void *priv);
	void *watch_priv;

	/* from HELLO (read-only afterwards) */
	uint32_t version;
	uint64_t kfeatures;
	uint64_t uffd_features;
	char daemon_version[32];
	const void *result;
	size_t result_size;

	/* the populate worker (fault.c), created under lock at the first UMP_EV_POPULATE */
	struct um_populate *populate;

	/* set once under req_lock at the first insert */
	enum um_uffd_mode uffd_mode;
	const struct ump_seq_slot *seq_area;
	uint32_t seq_slots;
	bool async_attached; /* the WP_ASYNC uffd was handed over (dirty.c) */
};

#endif /* UM_TYPES_H */
