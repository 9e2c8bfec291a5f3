/* SPDX-License-Identifier: MIT */
/*
 * call.c - the round trip and the reader role: one request at a time
 * (req_lock), replies routed to their waiter, everything else handed to
 * the sink um_connect() installed. See types.h for the locks.
 */
#include "call.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trap.h"

/* the interval whose callback this thread runs; in_cb also for watch */
static __thread struct um_interval *tl_cb_iv;
static __thread bool tl_in_cb;

bool call_in_callback(void)
{
	return tl_in_cb;
}

void call_callback_enter(struct um_interval *iv)
{
	tl_in_cb = true;
	tl_cb_iv = iv;
	/* a callback's trapped calls must not wait for acks it may owe */
	trap_self_enter();
}

void call_callback_exit(void)
{
	tl_in_cb = false;
	tl_cb_iv = NULL;
	trap_self_leave();
}

struct um_interval *call_current_callback(void)
{
	return tl_cb_iv;
}

int64_t call_now_ms(void)
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
	c->sink->dead_locked(c);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);

	c->sink->dead(c);
}

/* Hand a reply to the thread waiting for it; a stale one is dropped. */
static void route_reply(struct um_client *c, struct conn_msg *m)
{
	pthread_mutex_lock(&c->lock);
	if (c->wait_id && !c->wait_done && c->wait_id == m->msg.id) {
		struct conn_msg *r = c->wait_msg;

		memcpy(r->buf.bytes, m->buf.bytes, m->msg.hdr->length);
		r->msg = m->msg;
		r->msg.hdr = (const struct ump_hdr *)r->buf.bytes;
		r->msg.body = r->buf.bytes + sizeof(struct ump_hdr);
		r->fd = m->fd;
		m->fd = -1;
		if (c->wait_hook && r->msg.type == c->wait_type &&
		    ((const struct ump_reply_hdr *)r->msg.body)->status == 0)
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

	if (timeout_ms < 0) {
		r = conn_recv_wait(c->fd, &m);
	} else {
		r = conn_poll(c->fd, timeout_ms);
		if (r <= 0)
			return 0;
		r = conn_recv(c->fd, &m);
	}
	if (r == -EAGAIN)
		return 0;
	if (r < 0) {
		connection_dead(c);
		return -ENOTCONN;
	}
	if (m.msg.type & UMP_REPLY) {
		route_reply(c, &m);
		return 2;
	}
	c->sink->event(c, &m);
	return 1;
}

static void *event_thread(void *arg)
{
	struct um_client *c = arg;
	int r = 0;

	trap_self_enter();
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
	trap_self_leave();
	return NULL;
}

int call_lock(struct um_client *c)
{
	if (tl_in_cb)
		return -EDEADLK;
	pthread_mutex_lock(&c->req_lock);
	return 0;
}

void call_unlock(struct um_client *c)
{
	pthread_mutex_unlock(&c->req_lock);
}

int call_oneway(struct um_client *c, uint16_t type, const void *body, size_t len)
{
	union {
		uint64_t align;
		unsigned char b[UMP_MSG_MAX];
	} buf;
	size_t n;
	int r;

	n = ump_proto_encode(buf.b, type, atomic_fetch_add(&c->next_id, 1), body, len);
	pthread_mutex_lock(&c->send_lock);
	r = conn_send(c->fd, buf.b, n, -1);
	pthread_mutex_unlock(&c->send_lock);
	return r;
}

int call_roundtrip(struct um_client *c, uint16_t type, const void *body, size_t len, int send_fd,
		   struct conn_msg *reply, int timeout_ms, const struct call_hook *hook)
{
	union {
		uint64_t align;
		unsigned char b[UMP_MSG_MAX];
	} buf;
	int64_t deadline = call_now_ms() + timeout_ms;
	uint64_t id;
	size_t n;
	int r = 0;

	reply->fd = -1;
	if (atomic_load(&c->dead))
		return -ENOTCONN;
	id = atomic_fetch_add(&c->next_id, 1);
	n = ump_proto_encode(buf.b, type, id, body, len);

	pthread_mutex_lock(&c->lock);
	c->wait_id = id;
	c->wait_type = type | UMP_REPLY;
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
		int64_t left = deadline - call_now_ms();

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
	if (reply->msg.type != (uint16_t)(type | UMP_REPLY)) {
		if (reply->fd >= 0)
			close(reply->fd);
		reply->fd = -1;
		return -EPROTO;
	}
	return ((const struct ump_reply_hdr *)reply->msg.body)->status;
}

int call_start_reader(struct um_client *c)
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

UM_EXPORT int um_fd(struct um_client *c)
{
	return c ? c->fd : -EINVAL;
}

UM_EXPORT int um_dispatch(struct um_client *c, int timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? call_now_ms() + timeout_ms : 0;
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
		int64_t left = deadline - call_now_ms();

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
