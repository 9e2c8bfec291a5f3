/* SPDX-License-Identifier: MIT */
/*
 * client.c - the connection to umirrord: connect, the request/reply
 * machinery, the event thread and the small requests (status, ping,
 * list, watch).
 */
#include "client.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "fault.h"
#include "interval.h"

/* The public values are the wire values: no translation table anywhere. */
#define SAME(a, b, what) _Static_assert((long long)(a) == (long long)(b), what)
SAME(UM_REASON_WRITE, UMP_REASON_WRITE, "reason");
SAME(UM_REASON_REMOVE, UMP_REASON_REMOVE, "reason");
SAME(UM_REASON_UNMAP, UMP_REASON_UNMAP, "reason");
SAME(UM_REASON_REMAP, UMP_REASON_REMAP, "reason");
SAME(UM_REASON_FORK, UMP_REASON_FORK, "reason");
SAME(UM_REASON_RELEASE, UMP_REASON_RELEASE, "reason");
SAME(UM_REASON_MIGRATE, UMP_REASON_MIGRATE, "reason");
SAME(UM_UFFD_DEV, UMP_UFFD_DEV, "uffd mode");
SAME(UM_UFFD_SYSCALL, UMP_UFFD_SYSCALL, "uffd mode");
SAME(UM_UFFD_USER_ONLY, UMP_UFFD_USER_ONLY, "uffd mode");
_Static_assert(UM_FEAT_PAGEMAP_SCAN == UM_KFEAT_PAGEMAP_SCAN, "feature");
_Static_assert(UM_FEAT_SOFT_DIRTY == UM_KFEAT_SOFT_DIRTY, "feature");
_Static_assert(UM_FEAT_PROCMAP_QUERY == UM_KFEAT_PROCMAP_QUERY, "feature");
_Static_assert(UM_FEAT_PFN_VISIBLE == UM_KFEAT_PFN_VISIBLE, "feature");
_Static_assert(UM_FEAT_WP_UNPOPULATED == UM_KFEAT_WP_UNPOPULATED, "feature");
_Static_assert(UM_FEAT_WP_ASYNC == UM_KFEAT_WP_ASYNC, "feature");
_Static_assert(UM_FEAT_IO_URING == UM_KFEAT_IO_URING, "feature");
_Static_assert(UM_RAW_PFN_MASK == UM_E_PFN_MASK, "raw");
_Static_assert(UM_RAW_PRESENT == UM_E_PRESENT, "raw");
_Static_assert(UM_RAW_WRITE == UM_E_WRITE, "raw");
_Static_assert(UM_RAW_ZERO == UM_E_ZERO, "raw");
_Static_assert(UM_RAW_SWAP == UM_E_SWAP, "raw");
_Static_assert(UM_RAW_FILE == UM_E_FILE, "raw");
_Static_assert(UM_RAW_EXCL == UM_E_EXCL, "raw");
_Static_assert(UM_RAW_HUGE == UM_E_HUGE, "raw");
_Static_assert(UM_RAW_UFFD_WP == UM_E_UFFD_WP, "raw");
_Static_assert(UM_RAW_NOPERM == UM_E_NOPERM, "raw");
_Static_assert(UM_RAW_HOLE == UM_E_HOLE, "raw");

/* the interval whose callback this thread runs; in_cb also for watch */
static __thread struct um_interval *tl_cb_iv;
static __thread bool tl_in_cb;

bool client_in_callback(void)
{
	return tl_in_cb;
}

void client_callback_enter(struct um_interval *iv)
{
	tl_in_cb = true;
	tl_cb_iv = iv;
}

void client_callback_exit(void)
{
	tl_in_cb = false;
	tl_cb_iv = NULL;
}

struct um_interval *client_current_callback(void)
{
	return tl_cb_iv;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_ts(int64_t deadline_ms)
{
	return (struct timespec){ .tv_sec = deadline_ms / 1000,
				  .tv_nsec = (deadline_ms % 1000) * 1000000 };
}

/*
 * The daemon is gone (EOF) or broke the protocol. Called by the reader
 * with no lock held. Everything waiting learns of it; release callbacks
 * run unless the caller is tearing the client down.
 */
static void connection_dead(struct um_client *c)
{
	pthread_mutex_lock(&c->lock);
	if (atomic_load(&c->dead)) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	atomic_store(&c->dead, true);
	if (c->wait_id && !c->wait_done) {
		c->wait_err = -ENOTCONN;
		c->wait_done = true;
	}
	interval_mark_all_dead_locked(c);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);

	interval_release_all(c, -ENOTCONN);
}

/* Hand a reply to the thread waiting for it; a stale one is dropped. */
static void route_reply(struct um_client *c, struct conn_msg *m)
{
	pthread_mutex_lock(&c->lock);
	if (c->wait_id && !c->wait_done && c->wait_id == m->msg.id) {
		struct conn_msg *r = c->wait_msg;

		memcpy(r->buf.bytes, m->buf.bytes, m->msg.hdr->length);
		r->msg = m->msg;
		r->msg.hdr = (const struct um_hdr *)r->buf.bytes;
		r->msg.body = r->buf.bytes + sizeof(struct um_hdr);
		r->fd = m->fd;
		m->fd = -1;
		if (c->wait_hook && r->msg.type == c->wait_type &&
		    ((const struct um_reply_hdr *)r->msg.body)->status == 0)
			c->wait_hook->fn(c, r, c->wait_hook->arg);
		c->wait_done = true;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	if (m->fd >= 0)
		close(m->fd);
}

/*
 * Read and handle at most one message. The caller holds the reader role
 * and no lock. Return: 1 an event, 2 another message, 0 nothing arrived
 * within @timeout_ms, -ENOTCONN the connection is dead.
 */
static int read_one(struct um_client *c, int timeout_ms)
{
	struct conn_msg m;
	int r;

	r = conn_poll(c->fd, timeout_ms);
	if (r <= 0)
		return 0;
	r = conn_recv(c->fd, &m);
	if (r == -EAGAIN)
		return 0;
	if (r < 0) {
		connection_dead(c);
		return -ENOTCONN;
	}
	if (m.msg.type & UM_REPLY) {
		route_reply(c, &m);
		return 2;
	}
	if (m.msg.type == UM_EV_POPULATE) {
		/* never here: the populate may wait for an ack this thread sends */
		populate_post(c, m.msg.body);
		return 1;
	}
	interval_handle_event(c, &m);
	return 1;
}

static void *event_thread(void *arg)
{
	struct um_client *c = arg;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	while (r >= 0 && !atomic_load(&c->dead) && !c->closing) {
		c->reading = true;
		pthread_mutex_unlock(&c->lock);
		r = read_one(c, -1);
		pthread_mutex_lock(&c->lock);
		c->reading = false;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int client_lock_request(struct um_client *c)
{
	if (tl_in_cb)
		return -EDEADLK;
	pthread_mutex_lock(&c->req_lock);
	return 0;
}

void client_unlock_request(struct um_client *c)
{
	pthread_mutex_unlock(&c->req_lock);
}

int client_send_ack(struct um_client *c, uint64_t interval_id, uint64_t seq)
{
	struct um_ack ack = { .interval_id = interval_id, .seq = seq };
	union {
		uint64_t align;
		unsigned char b[UM_MSG_MAX];
	} buf;
	size_t len;
	int r;

	len = um_proto_encode(buf.b, UM_MSG_ACK, atomic_fetch_add(&c->next_id, 1), &ack,
			      sizeof(ack));
	pthread_mutex_lock(&c->send_lock);
	r = conn_send(c->fd, buf.b, len, -1);
	pthread_mutex_unlock(&c->send_lock);
	return r;
}

int client_call(struct um_client *c, uint16_t type, const void *body, size_t len, int send_fd,
		struct conn_msg *reply, int timeout_ms, const struct client_hook *hook)
{
	union {
		uint64_t align;
		unsigned char b[UM_MSG_MAX];
	} buf;
	int64_t deadline = now_ms() + timeout_ms;
	uint64_t id;
	size_t n;
	int r = 0;

	reply->fd = -1;
	if (atomic_load(&c->dead))
		return -ENOTCONN;
	id = atomic_fetch_add(&c->next_id, 1);
	n = um_proto_encode(buf.b, type, id, body, len);

	pthread_mutex_lock(&c->lock);
	c->wait_id = id;
	c->wait_type = type | UM_REPLY;
	c->wait_done = false;
	c->wait_err = 0;
	c->wait_msg = reply;
	c->wait_hook = hook;
	pthread_mutex_unlock(&c->lock);

	pthread_mutex_lock(&c->send_lock);
	r = conn_send(c->fd, buf.b, n, send_fd);
	pthread_mutex_unlock(&c->send_lock);

	pthread_mutex_lock(&c->lock);
	while (r == 0 && !c->wait_done) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			r = -ETIMEDOUT;
		} else if (!c->has_thread && !c->reading) {
			/* nobody else reads the socket: this thread does */
			c->reading = true;
			pthread_mutex_unlock(&c->lock);
			read_one(c, (int)left);
			pthread_mutex_lock(&c->lock);
			c->reading = false;
			pthread_cond_broadcast(&c->cond);
		} else {
			struct timespec ts = deadline_ts(deadline);

			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		}
	}
	if (c->wait_done)
		r = c->wait_err;
	c->wait_id = 0;
	c->wait_msg = NULL;
	c->wait_hook = NULL;
	pthread_mutex_unlock(&c->lock);

	if (r < 0) {
		if (reply->fd >= 0)
			close(reply->fd);
		reply->fd = -1;
		return r;
	}
	if (reply->msg.type != (uint16_t)(type | UM_REPLY)) {
		if (reply->fd >= 0)
			close(reply->fd);
		reply->fd = -1;
		return -EPROTO;
	}
	return ((const struct um_reply_hdr *)reply->msg.body)->status;
}

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
	struct um_hello h = { .version = UM_PROTO_VERSION, .features = UM_PFEAT_ALL };
	const struct um_hello_reply *hr;
	struct conn_msg reply;
	int r;

	r = client_lock_request(c);
	if (r < 0)
		return r;
	/*
	 * A socket-activated daemon answers only once it started (probes,
	 * io_uring, sandbox): allow it what any request gets, not the
	 * 1 s a wait for validity gets.
	 */
	r = client_call(c, UM_MSG_HELLO, &h, sizeof(h), -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	client_unlock_request(c);
	if (r < 0)
		goto out;
	hr = reply.msg.body;
	if (hr->version != UM_PROTO_VERSION) {
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
		munmap((void *)c->seq_area, (size_t)c->seq_slots * sizeof(struct um_seq_slot));
	if (c->fd >= 0)
		close(c->fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->req_lock);
	free(c);
}

static int start_thread(struct um_client *c)
{
	sigset_t all, old;
	int r;

	/* the event thread runs callbacks only; signals go to the app's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&c->thread, NULL, event_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		c->has_thread = true;
	return r;
}

UM_EXPORT int um_connect(const char *path, unsigned int flags, struct um_client **out)
{
	pthread_condattr_t ca;
	struct um_client *c;
	int r;

	if (!out || (flags & ~UM_CONNECT_MANUAL))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
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
	if (!(flags & UM_CONNECT_MANUAL)) {
		r = start_thread(c);
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

UM_EXPORT int um_fd(struct um_client *c)
{
	return c ? c->fd : -EINVAL;
}

UM_EXPORT int um_dispatch(struct um_client *c, int timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	int count = 0, r;

	if (!c || c->has_thread)
		return -EINVAL;
	if (tl_in_cb)
		return -EDEADLK;

	pthread_mutex_lock(&c->lock);
	while (c->reading && !atomic_load(&c->dead)) {
		/* a requester is reading: it handles the events meanwhile */
		if (timeout_ms == 0) {
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&c->cond, &c->lock);
		} else {
			struct timespec ts = deadline_ts(deadline);

			if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT) {
				pthread_mutex_unlock(&c->lock);
				return 0;
			}
		}
	}
	if (atomic_load(&c->dead)) {
		pthread_mutex_unlock(&c->lock);
		return -ENOTCONN;
	}
	c->reading = true;
	pthread_mutex_unlock(&c->lock);

	if (timeout_ms > 0) {
		int64_t left = deadline - now_ms();

		timeout_ms = left > 0 ? (int)left : 0;
	}
	r = read_one(c, timeout_ms);
	while (r > 0) {
		count += r == 1;
		r = read_one(c, 0);
	}

	pthread_mutex_lock(&c->lock);
	c->reading = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return r < 0 && count == 0 ? r : count;
}

/* A request whose reply is a bare status. */
static int simple_call(struct um_client *c, uint16_t type, const void *body, size_t len)
{
	struct conn_msg reply;
	int r;

	r = client_lock_request(c);
	if (r < 0)
		return r;
	r = client_call(c, type, body, len, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	client_unlock_request(c);
	return r;
}

UM_EXPORT int um_ping(struct um_client *c)
{
	if (!c)
		return -EINVAL;
	return simple_call(c, UM_MSG_PING, NULL, 0);
}

UM_EXPORT int um_status(struct um_client *c, struct um_status *out)
{
	const struct um_status_reply *sr;
	struct conn_msg reply;
	int r;

	if (!c || !out)
		return -EINVAL;
	r = client_lock_request(c);
	if (r < 0)
		return r;
	r = client_call(c, UM_MSG_STATUS, NULL, 0, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	client_unlock_request(c);
	if (r < 0)
		return r;

	sr = reply.msg.body;
	memset(out, 0, sizeof(*out));
	memcpy(out->daemon_version, sr->daemon_version, sizeof(out->daemon_version));
	out->daemon_version[sizeof(out->daemon_version) - 1] = '\0';
	out->protocol_version = c->version;
	pthread_mutex_lock(&c->lock);
	out->uffd_mode = c->uffd_mode;
	pthread_mutex_unlock(&c->lock);
	out->kfeatures = sr->kfeatures;
	out->uffd_features = sr->uffd_features;
	out->clients = sr->clients;
	out->mms = sr->mms;
	out->intervals = sr->intervals;
	out->events = sr->events;
	out->uptime_ms = sr->uptime_ms;
	out->daemon_pid = sr->pid;
	out->kfeatures_masked = sr->kfeatures_masked;
	return 0;
}

UM_EXPORT int um_list(struct um_client *c, struct um_interval_info **out, size_t *count)
{
	const struct um_list_reply *lr;
	struct um_interval_info *info = NULL;
	struct conn_msg reply;
	uint64_t n;
	int r;

	if (!c || !out || !count)
		return -EINVAL;
	r = client_lock_request(c);
	if (r < 0)
		return r;
	r = client_call(c, UM_MSG_LIST, NULL, 0, -1, &reply, UM_REQUEST_TIMEOUT_MS, NULL);
	if (r < 0)
		goto out;

	/* the records are read under req_lock: the next request reuses the buffer */
	lr = reply.msg.body;
	n = lr->count;
	if (lr->offset > c->result_size ||
	    n > (c->result_size - lr->offset) / sizeof(struct um_list_rec)) {
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
		struct um_list_rec rec;

		memcpy(&rec, (const char *)c->result + lr->offset + i * sizeof(rec), sizeof(rec));
		info[i] = (struct um_interval_info){
			.interval_id = rec.interval_id,
			.start = rec.start,
			.length = rec.length,
			.seq = rec.seq,
			.invalidations = rec.invalidations,
			.pid = rec.pid,
			.uid = rec.uid,
			.subscribers = rec.subscribers,
			.sync = rec.flags & UM_INSERT_SYNC,
			.dead = rec.flags & UM_LIST_DEAD,
			.backend = (enum um_backend)rec.backend,
			.revalidate_ms = rec.revalidate_ms,
		};
	}
	*out = info;
	*count = n;
out:
	client_unlock_request(c);
	return r;
}

UM_EXPORT int um_watch(struct um_client *c, pid_t pid,
		       void (*cb)(uint64_t interval_id, pid_t pid,
				  const struct um_invalidation *inv, void *priv),
		       void *priv)
{
	struct um_watch w = { .pid = pid };
	int r;

	if (!c || !cb || pid < 0)
		return -EINVAL;
	/* set first: the copies may arrive before this thread sees the reply */
	pthread_mutex_lock(&c->lock);
	c->watch_cb = cb;
	c->watch_priv = priv;
	pthread_mutex_unlock(&c->lock);

	r = simple_call(c, UM_MSG_WATCH, &w, sizeof(w));
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
	return um_reason_name((uint32_t)reason);
}
