/* SPDX-License-Identifier: MIT */
/*
 * client.c - the top floor of the library: um_connect() (which installs
 * the sink that routes the reader's events down to interval.c and
 * fault.c), um_disconnect() and the small requests (status, ping, list,
 * watch).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call.h"
#include "conn.h"
#include "fault.h"
#include "interval.h"
#include "trap.h"
#include "types.h"

/* The public values are the wire values: no translation table anywhere. */
#define SAME(a, b, what) _Static_assert((long long)(a) == (long long)(b), what)
SAME(UM_REASON_WRITE, UMP_REASON_WRITE, "reason");
SAME(UM_REASON_REMOVE, UMP_REASON_REMOVE, "reason");
SAME(UM_REASON_UNMAP, UMP_REASON_UNMAP, "reason");
SAME(UM_REASON_REMAP, UMP_REASON_REMAP, "reason");
SAME(UM_REASON_FORK, UMP_REASON_FORK, "reason");
SAME(UM_REASON_RELEASE, UMP_REASON_RELEASE, "reason");
SAME(UM_REASON_MIGRATE, UMP_REASON_MIGRATE, "reason");
SAME(UM_REASON_PROTECTION, UMP_REASON_PROTECTION, "reason");
SAME(UM_REASON_UNMAPPING, UMP_REASON_UNMAPPING, "reason");
SAME(UM_UFFD_DEV, UMP_UFFD_DEV, "uffd mode");
SAME(UM_UFFD_SYSCALL, UMP_UFFD_SYSCALL, "uffd mode");
SAME(UM_UFFD_USER_ONLY, UMP_UFFD_USER_ONLY, "uffd mode");
_Static_assert(UM_FEAT_PAGEMAP_SCAN == UMP_KFEAT_PAGEMAP_SCAN, "feature");
_Static_assert(UM_FEAT_SOFT_DIRTY == UMP_KFEAT_SOFT_DIRTY, "feature");
_Static_assert(UM_FEAT_PROCMAP_QUERY == UMP_KFEAT_PROCMAP_QUERY, "feature");
_Static_assert(UM_FEAT_PFN_VISIBLE == UMP_KFEAT_PFN_VISIBLE, "feature");
_Static_assert(UM_FEAT_WP_UNPOPULATED == UMP_KFEAT_WP_UNPOPULATED, "feature");
_Static_assert(UM_FEAT_WP_ASYNC == UMP_KFEAT_WP_ASYNC, "feature");
_Static_assert(UM_FEAT_IO_URING == UMP_KFEAT_IO_URING, "feature");
_Static_assert(UM_RAW_PFN_MASK == UMP_E_PFN_MASK, "raw");
_Static_assert(UM_RAW_PRESENT == UMP_E_PRESENT, "raw");
_Static_assert(UM_RAW_WRITE == UMP_E_WRITE, "raw");
_Static_assert(UM_RAW_ZERO == UMP_E_ZERO, "raw");
_Static_assert(UM_RAW_SWAP == UMP_E_SWAP, "raw");
_Static_assert(UM_RAW_FILE == UMP_E_FILE, "raw");
_Static_assert(UM_RAW_EXCL == UMP_E_EXCL, "raw");
_Static_assert(UM_RAW_HUGE == UMP_E_HUGE, "raw");
_Static_assert(UM_RAW_UFFD_WP == UMP_E_UFFD_WP, "raw");
_Static_assert(UM_RAW_NOPERM == UMP_E_NOPERM, "raw");
_Static_assert(UM_RAW_HOLE == UMP_E_HOLE, "raw");

static void sink_event(struct um_client *c, const struct conn_msg *m)
{
	if (m->msg.type == UMP_EV_POPULATE) {
		/* never on the reader: the populate may wait for an ack it sends */
		populate_post(c, m->msg.body);
		return;
	}
	interval_handle_event(c, m);
}

static void sink_dead(struct um_client *c)
{
	interval_release_all(c, -ENOTCONN);
}

static const struct call_sink client_sink = {
	.event = sink_event,
	.dead_locked = interval_mark_all_dead_locked,
	.dead = sink_dead,
};

/* Map a sealed memfd of at least @size bytes read-only. */
static int map_readonly(int fd, size_t size, const void **out)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (size == 0 || st.st_size < 0 || (uint64_t)st.st_size < size)
		return -EPROTO;
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int hello(struct um_client *c)
{
	struct ump_hello h = { .version = UMP_PROTO_VERSION, .features = UMP_PFEAT_ALL };
	const struct ump_hello_reply *hr;
	struct conn_msg reply;
	int r;

	r = call_lock(c);
	if (r < 0)
		return r;
	/*
	 * A socket-activated daemon answers only once it started (probes,
	 * io_uring, sandbox): allow it what any request gets, not the
	 * 1 s a wait for validity gets.
	 */
	r = call_roundtrip(c, UMP_MSG_HELLO, &h, sizeof(h), -1, &reply, UM_REQUEST_TIMEOUT_MS,
			   NULL);
	call_unlock(c);
	if (r < 0)
		goto out;
	hr = reply.msg.body;
	if (hr->version != UMP_PROTO_VERSION) {
		r = -EPROTONOSUPPORT;
		goto out;
	}
	if (reply.fd < 0 || hr->result_size < sizeof(uint64_t)) {
		r = -EPROTO;
		goto out;
	}
	r = map_readonly(reply.fd, hr->result_size, &c->result);
	if (r < 0)
		goto out;
	c->result_size = hr->result_size;
	c->version = hr->version;
	c->kfeatures = hr->kfeatures;
	c->uffd_features = hr->uffd_features;
	memcpy(c->daemon_version, hr->daemon_version, sizeof(c->daemon_version));
	c->daemon_version[sizeof(c->daemon_version) - 1] = '\0';
out:
	if (reply.fd >= 0)
		close(reply.fd);
	return r;
}

static void client_free(struct um_client *c)
{
	populate_stop(c);
	interval_free_all(c);
	if (c->result)
		munmap((void *)c->result, c->result_size);
	if (c->seq_area)
		munmap((void *)c->seq_area, (size_t)c->seq_slots * sizeof(struct ump_seq_slot));
	if (c->fd >= 0)
		close(c->fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->req_lock);
	free(c);
}

UM_EXPORT int um_connect(const char *path, unsigned int flags, struct um_client **out)
{
	pthread_condattr_t ca;
	struct um_client *c;
	int r;

	if (!out || (flags & ~(UM_CONNECT_MANUAL | UM_CONNECT_TRAP_VMA)))
		return -EINVAL;
	/* a trapped call of the dispatching thread would wait for its own ack */
	if ((flags & UM_CONNECT_MANUAL) && (flags & UM_CONNECT_TRAP_VMA))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->sink = &client_sink;
	atomic_init(&c->next_id, 1);
	atomic_init(&c->dead, false);
	pthread_mutex_init(&c->req_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);

	r = conn_open(path, &c->fd);
	if (r < 0)
		goto fail;
	r = hello(c);
	if (r < 0)
		goto fail;
	if (flags & UM_CONNECT_TRAP_VMA) {
		r = trap_install(path);
		if (r < 0)
			goto fail;
	}
	if (!(flags & UM_CONNECT_MANUAL)) {
		r = call_start_reader(c);
		if (r < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	client_free(c);
	return r;
}

UM_EXPORT void um_disconnect(struct um_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	pthread_mutex_unlock(&c->lock);
	/* the daemon sees EOF and drops everything; the event thread sees EOF */
	shutdown(c->fd, SHUT_RDWR);
	if (c->has_thread)
		pthread_join(c->thread, NULL);
	client_free(c);
}

/* A request whose reply is a bare status. */
static int simple_call(struct um_client *c, uint16_t type, const void *body, size_t len)
{
	struct conn_msg reply;
	int r;

	r = call_lock(c);
	if (r < 0)
		return r;
	r = call_roundtrip(c, type, body, len, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	call_unlock(c);
	return r;
}

UM_EXPORT int um_ping(struct um_client *c)
{
	if (!c)
		return -EINVAL;
	return simple_call(c, UMP_MSG_PING, NULL, 0);
}

UM_EXPORT const char *um_version(void)
{
	return UMIRROR_VERSION_STRING;
}

/* the bytes of the fields this library knows; the rest is reserved */
#define STATUS_KNOWN offsetof(struct um_status, reserved)
#define INFO_KNOWN offsetof(struct um_interval_info, reserved)
_Static_assert(STATUS_KNOWN >= UM_STATUS_SIZE_VER0, "fields only ever added");
_Static_assert(INFO_KNOWN >= UM_INTERVAL_INFO_SIZE_VER0, "fields only ever added");

UM_EXPORT int um_status(struct um_client *c, struct um_status *out)
{
	const struct ump_status_reply *sr;
	struct um_status st = { 0 };
	struct conn_msg reply;
	size_t size;
	int r;

	if (!c || !out || out->size < UM_STATUS_SIZE_VER0)
		return -EINVAL;
	size = out->size;
	r = call_lock(c);
	if (r < 0)
		return r;
	r = call_roundtrip(c, UMP_MSG_STATUS, NULL, 0, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	call_unlock(c);
	if (r < 0)
		return r;

	sr = reply.msg.body;
	memcpy(st.daemon_version, sr->daemon_version, sizeof(st.daemon_version));
	st.daemon_version[sizeof(st.daemon_version) - 1] = '\0';
	st.protocol_version = c->version;
	pthread_mutex_lock(&c->lock);
	st.uffd_mode = c->uffd_mode;
	pthread_mutex_unlock(&c->lock);
	st.kfeatures = sr->kfeatures;
	st.uffd_features = sr->uffd_features;
	st.clients = sr->clients;
	st.mms = sr->mms;
	st.intervals = sr->intervals;
	st.events = sr->events;
	st.uptime_ms = sr->uptime_ms;
	st.daemon_pid = sr->pid;
	st.kfeatures_masked = sr->kfeatures_masked;
	/* a caller built against newer headers has fields we do not know: zero */
	st.size = (uint32_t)size;
	st.filled = (uint32_t)(size < STATUS_KNOWN ? size : STATUS_KNOWN);
	memset(out, 0, size);
	memcpy(out, &st, st.filled);
	out->size = (uint32_t)size;
	return 0;
}

UM_EXPORT int um_list(struct um_client *c, struct um_interval_info **out, size_t *count)
{
	const struct ump_list_reply *lr;
	struct um_interval_info *info = NULL;
	struct conn_msg reply;
	uint64_t n;
	int r;

	if (!c || !out || !count)
		return -EINVAL;
	r = call_lock(c);
	if (r < 0)
		return r;
	r = call_roundtrip(c, UMP_MSG_LIST, NULL, 0, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	if (r < 0)
		goto out;

	/* the records are read under req_lock: the next request reuses the buffer */
	lr = reply.msg.body;
	n = lr->count;
	if (lr->offset > c->result_size ||
	    n > (c->result_size - lr->offset) / sizeof(struct ump_list_rec)) {
		r = -EPROTO;
		goto out;
	}
	if (n) {
		info = calloc(n, sizeof(*info));
		if (!info) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		struct ump_list_rec rec;

		memcpy(&rec, (const char *)c->result + lr->offset + i * sizeof(rec), sizeof(rec));
		info[i] = (struct um_interval_info){
			.size = INFO_KNOWN,
			.interval_id = rec.interval_id,
			.start = rec.start,
			.length = rec.length,
			.seq = rec.seq,
			.invalidations = rec.invalidations,
			.pid = rec.pid,
			.uid = rec.uid,
			.subscribers = rec.subscribers,
			.sync = rec.flags & UMP_INSERT_SYNC,
			.dead = rec.flags & UMP_LIST_DEAD,
			.backend = (enum um_backend)rec.backend,
			.revalidate_ms = rec.revalidate_ms,
		};
	}
	*out = info;
	*count = n;
out:
	call_unlock(c);
	return r;
}

UM_EXPORT int um_watch(struct um_client *c, pid_t pid,
		       void (*cb)(uint64_t interval_id, pid_t pid,
				  const struct um_invalidation *inv, void *priv),
		       void *priv)
{
	struct ump_watch w = { .pid = pid };
	int r;

	if (!c || !cb || pid < 0)
		return -EINVAL;
	/* set first: the copies may arrive before this thread sees the reply */
	pthread_mutex_lock(&c->lock);
	c->watch_cb = cb;
	c->watch_priv = priv;
	pthread_mutex_unlock(&c->lock);

	r = simple_call(c, UMP_MSG_WATCH, &w, sizeof(w));
	if (r < 0) {
		pthread_mutex_lock(&c->lock);
		c->watch_cb = NULL;
		c->watch_priv = NULL;
		pthread_mutex_unlock(&c->lock);
	}
	return r;
}

UM_EXPORT const char *um_reason_str(enum um_reason reason)
{
	return ump_reason_name((uint32_t)reason);
}
