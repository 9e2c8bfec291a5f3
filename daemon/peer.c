/* SPDX-License-Identifier: MIT */
/*
 * peer.c - one client connection: receiving, the send queue, the peer's
 * identity, parked replies, teardown. Requests go to the dispatch hook
 * (dispatch.c).
 *
 * Each client is a raw nonblocking SOCK_SEQPACKET fd under a uv_poll_t:
 * libuv's stream types do not carry SCM_RIGHTS on seqpacket sockets the
 * way we need, and one datagram per message keeps parsing trivial. Sends
 * go straight out with MSG_DONTWAIT; only when the socket is full do they
 * queue and the poll adds UV_WRITABLE.
 */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "mm_types.h"
#include "pidfd.h"
#include "transport.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define CAP_SYS_ADMIN_BIT 21
#define RECV_BATCH 64

static void client_poll_cb(uv_poll_t *h, int status, int events);

/* c->receiver_ids keys a receiver by its interval's id (the id an ack names) */
static uint64_t receiver_id(const void *r)
{
	return ((const struct receiver *)r)->iv->id;
}

uint64_t server_now_ms(const struct server *s)
{
	return uv_now(s->loop);
}

bool client_may_see(const struct client *c, uid_t owner_uid)
{
	return c->uid == 0 || c->uid == owner_uid;
}

/* @gid is one of the numbers on a "Groups:" line of /proc/PID/status */
static bool groups_line_has(const char *list, gid_t gid)
{
	unsigned long g;
	char *end;

	for (;;) {
		while (*list == ' ' || *list == '\t')
			list++;
		if (*list < '0' || *list > '9')
			return false;
		errno = 0;
		g = strtoul(list, &end, 10);
		if (errno || end == list)
			return false;
		if (g == gid)
			return true;
		list = end;
	}
}

/*
 * May the peer behind @pid see PFNs: CAP_SYS_ADMIN in its CapEff, or (with
 * --pfn-group) the group among its supplementary groups. The status file is
 * read between two liveness checks of @pidfd, so it was our peer's and not
 * a recycled pid's. The Groups: line can hold 65536 numbers: getline().
 */
static bool peer_may_see_pfns(const struct server *s, pid_t pid, int pidfd)
{
	unsigned long long cap = 0;
	bool admin = false, member = false;
	char path[64], *line = NULL;
	size_t size = 0;
	FILE *f;

	if (!pidfd_alive(pidfd))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (getline(&line, &size, f) > 0) {
		if (sscanf(line, "CapEff: %llx", &cap) == 1)
			admin = cap & (1ull << CAP_SYS_ADMIN_BIT);
		else if (s->opt.pfn_group_set && !strncmp(line, "Groups:", 7))
			member = groups_line_has(line + 7, s->opt.pfn_group);
	}
	free(line);
	fclose(f);
	return (admin || member) && pidfd_alive(pidfd);
}

/* --- sending ------------------------------------------------------------ */

static int send_one(struct client *c, const void *buf, size_t len, int fd)
{
	return ump_transport_send(c->fd, buf, len, &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT);
}

static void update_poll(struct client *c)
{
	int ev = UV_READABLE | (list_empty(&c->outq) ? 0 : UV_WRITABLE);

	if (c->dropping || ev == c->poll_events)
		return;
	c->poll_events = ev;
	uv_poll_start(&c->poll, ev, client_poll_cb);
}

static bool send_backpressure(int err)
{
	return err == -EAGAIN || err == -EWOULDBLOCK || err == -ENOBUFS;
}

/*
 * How many intervals @c may hear of now: each can bring it a message or
 * two in one burst the daemon makes on its own (an invalidation of every
 * interval a fork, zap or unmap meets, a fork copy each, a release each).
 */
static unsigned int client_held(const struct client *c)
{
	size_t n = c->receiver_ids.count;

	if (c->watching)
		n += c->srv->nintervals;
	return n > UINT_MAX ? UINT_MAX : (unsigned int)n;
}

/* the queue length from which @c counts as too slow */
static uint64_t sendq_limit(struct client *c)
{
	unsigned int held = client_held(c);

	if (list_empty(&c->outq) || held > c->outq_held)
		c->outq_held = held;
	return UMD_SENDQ_MAX + (uint64_t)UMD_SENDQ_PER_INTERVAL * c->outq_held;
}

struct sendfd *sendfd_new(int fd)
{
	struct sendfd *f = malloc(sizeof(*f));

	if (!f) {
		close(fd);
		return NULL;
	}
	f->fd = fd;
	f->refs = 1;
	return f;
}

void sendfd_put(struct sendfd *f)
{
	if (f && !--f->refs) {
		close(f->fd);
		free(f);
	}
}

static void outmsg_free(struct outmsg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	sendfd_put(m->sfd);
	free(m);
}

/* send or queue: @fd is consumed; @sf, when given instead, gets a reference while queued */
static int send_or_queue(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len,
			 int fd, struct sendfd *sf)
{
	uint64_t buf[UMP_MSG_MAX / 8];
	struct outmsg *m;
	size_t n;
	int ret;

	if (c->dropping)
		goto gone;
	n = ump_proto_encode(buf, type, id, body, len);
	if (list_empty(&c->outq)) {
		ret = send_one(c, buf, n, sf ? sf->fd : fd);
		if (ret == 0) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
		if (!send_backpressure(ret)) {
			client_drop(c, strerror(-ret));
			goto gone;
		}
	}
	if (c->outq_len >= sendq_limit(c)) {
		client_drop(c, "too slow: send queue full");
		goto gone;
	}
	m = malloc(sizeof(*m) + ((n + 7) & ~(size_t)7));
	if (!m) {
		client_drop(c, "out of memory for its send queue");
		goto gone;
	}
	memcpy(m->buf, buf, n);
	m->len = n;
	m->fd = fd;
	m->sfd = sf;
	if (sf)
		sf->refs++;
	list_add_tail(&c->outq, &m->link);
	if (!c->outq_len++)
		c->sendq_moved_ms = server_now_ms(c->srv); /* its wait starts now */
	c->sendq_in++;
	update_poll(c);
	return 0;
gone:
	if (fd >= 0)
		close(fd);
	return -ENOTCONN;
}

int client_send(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len, int fd)
{
	return send_or_queue(c, type, id, body, len, fd, NULL);
}

int client_send_shared(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len,
		       struct sendfd *f)
{
	return send_or_queue(c, type, id, body, len, -1, f);
}

void client_flush(struct client *c)
{
	while (!list_empty(&c->outq) && !c->dropping) {
		struct outmsg *m = list_first_entry(&c->outq, struct outmsg, link);
		int ret = send_one(c, m->buf, m->len, m->sfd ? m->sfd->fd : m->fd);

		if (send_backpressure(ret))
			break;
		if (ret) {
			client_drop(c, strerror(-ret));
			return;
		}
		list_del(&m->link);
		c->outq_len--;
		c->sendq_out++;
		c->sendq_moved_ms = server_now_ms(c->srv);
		outmsg_free(m);
	}
	update_poll(c);
}

void client_reply(struct client *c, uint16_t type, uint64_t id, int status, void *body, size_t len,
		  int fd)
{
	struct ump_reply_hdr hdr = { 0 };
	long want = ump_proto_body_size(type | UMP_REPLY);

	if (!body || status) {
		/* an error reply still has the type's full size and fd count */
		static uint64_t zero[UMP_MSG_MAX / 8];

		if (fd >= 0 && status)
			close(fd);
		fd = -1;
		body = body ? body : zero;
		memset(body, 0, want);
		len = want;
	}
	hdr.status = status;
	memcpy(body, &hdr, sizeof(hdr));
	if (ump_proto_fds(type | UMP_REPLY) && fd < 0) {
		/* the decoder wants the fd slot filled: /dev/null stands in */
		fd = fcntl(c->srv->null_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			client_drop(c, "cannot dup /dev/null for an error reply");
			return;
		}
	}
	client_send(c, type | UMP_REPLY, id, body, len, fd);
}

void deferred_add(struct client *c, struct deferred *d, uint16_t type, uint64_t id,
		  void (*cancel)(struct deferred *d))
{
	d->c = c;
	d->type = type;
	d->id = id;
	d->cancel = cancel;
	list_add_tail(&c->deferred, &d->link);
}

void deferred_reply(struct deferred *d, int status, void *body, size_t len)
{
	list_del(&d->link);
	client_reply(d->c, d->type, d->id, status, body, len, -1);
}

/* --- watchers ----------------------------------------------------------- */

void server_watch_copy(struct server *s, pid_t pid, uid_t owner_uid,
		       const struct ump_ev_invalidate *ev)
{
	struct ump_ev_invalidate copy = *ev;
	struct client *c;

	copy.flags = UMP_INV_WATCH;
	list_for_each_entry (c, &s->clients, link) {
		if (!c->watching || c->dropping)
			continue;
		if (c->watch_pid ? c->watch_pid != pid : !client_may_see(c, owner_uid))
			continue;
		client_send(c, UMP_EV_INVALIDATE, 0, &copy, sizeof(copy), -1);
	}
}

/* --- receiving ---------------------------------------------------------- */

bool client_input_pending(const struct client *c)
{
	char b;
	struct iovec io = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1 };

	/* no control buffer: a peeked message's fds are not installed */
	return !c->dropping && recvmsg(c->fd, &mh, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void drop(struct client *c, enum um_log_level level, const char *reason);

static void close_fds(const int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
}

/* receive and handle up to RECV_BATCH messages */
static void client_read(struct client *c)
{
	for (int i = 0; i < RECV_BATCH && !c->dropping; i++) {
		uint64_t buf[UMP_MSG_MAX / 8];
		int fds[UMP_MSG_MAX_FDS + 1];
		unsigned int nfds;
		struct ump_msg m;
		ssize_t n;
		int ret;

		/*
		 * A busy loop still reads an owner's munmap within microseconds.
		 * Once events were handled meanwhile, the rest of this backlog
		 * waits for the next turn (the poll is level-triggered): the
		 * replies to what they sent would otherwise come back into
		 * this same turn and one client would be served round after
		 * round while the others wait.
		 */
		if (i && c->srv->hooks.tick && c->srv->hooks.tick(c->srv))
			return;
		n = ump_transport_recv(c->fd, buf, sizeof(buf), fds, UMP_MSG_MAX_FDS + 1, &nfds,
				       MSG_DONTWAIT);
		if (n == 0) {
			/* every umirrorctl call ends so: not worth an info line */
			drop(c, UM_LOG_DEBUG, "hung up");
			return;
		}
		if (n == -EMSGSIZE || n == -EBADMSG) {
			client_drop_bad(c, "protocol error: truncated message or control data");
			return;
		}
		/*
		 * The peer closed with our replies unread: reported once, before
		 * what it sent and we did not read yet (a trap-mode process's
		 * listener handover among it). Read on: end of file follows.
		 */
		if (n == -ECONNRESET)
			continue;
		if (n < 0) {
			if (n != -EAGAIN)
				client_drop(c, strerror((int)-n));
			return;
		}
		/* more fds than fds[] holds were closed: one too many is enough to refuse */
		nfds = nfds < UMP_MSG_MAX_FDS + 1 ? nfds : UMP_MSG_MAX_FDS + 1;
		ret = ump_proto_decode(UMP_SIDE_DAEMON, buf, n, nfds, &m);
		if (ret == -EPROTO) {
			close_fds(fds, nfds);
			client_drop_bad(c, "protocol error: bad header, type, length or fd count");
			return;
		}
		if (ret) {
			close_fds(fds, nfds);
			if (!c->hello) {
				client_drop_bad(c, "request before HELLO");
				return;
			}
			log_debug("client %llu: %s with a bad field", (unsigned long long)c->id,
				  ump_msg_type_name(m.type));
			/* messages without a reply (ACK, POPULATE_DONE) are just ignored */
			if (ump_proto_body_size(m.type | UMP_REPLY) >= 0) {
				uint64_t body[UMP_MSG_MAX / 8];

				client_reply(c, m.type, m.id, -EINVAL, body, 0, -1);
			}
			continue;
		}
		log_debug("client %llu: %s id %llu", (unsigned long long)c->id,
			  ump_msg_type_name(m.type), (unsigned long long)m.id);
		c->srv->dispatch(c, &m, nfds ? fds[0] : -1);
	}
}

static void client_poll_cb(uv_poll_t *h, int status, int events)
{
	struct client *c = h->data;

	/* events the loop saw ready before this one may be more urgent */
	if (c->srv->hooks.tick)
		c->srv->hooks.tick(c->srv);
	if (c->dropping)
		return;
	if (status < 0) {
		/* libuv reports POLLERR as EBADF: say what the socket says */
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		client_drop(c, err ? strerror(err) : uv_strerror(status));
		return;
	}
	if (events & UV_WRITABLE)
		client_flush(c);
	if (events & UV_READABLE)
		client_read(c);
}

/* --- client lifetime ---------------------------------------------------- */

static void client_closed_cb(uv_handle_t *h)
{
	free(h->data);
}

void peer_free(struct client *c)
{
	struct outmsg *m, *mt;

	while (!list_empty(&c->deferred)) {
		struct deferred *d = list_first_entry(&c->deferred, struct deferred, link);

		list_del(&d->link);
		d->cancel(d);
	}
	/* the mm and the receivers: the floors above free them */
	if (c->srv->hooks.client_gone)
		c->srv->hooks.client_gone(c);
	idmap_fini(&c->receiver_ids); /* empty by now; frees nothing else */
	list_for_each_entry_safe (m, mt, &c->outq, link)
		outmsg_free(m);
	if (c->result)
		munmap(c->result, c->result_size);
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->charged) {
		static const uint64_t one[LIMIT_NR] = { [LIMIT_CLIENTS] = 1 };

		limits_uncharge(&c->srv->limits, c->uid, one);
	}
	list_del(&c->link);
	c->srv->nclients--;
	uv_close((uv_handle_t *)&c->poll, client_closed_cb);
	close(c->fd);
}

static void reaper_cb(uv_idle_t *h)
{
	struct server *s = h->data;
	struct client *c, *t;

	list_for_each_entry_safe (c, t, &s->clients, link)
		if (c->dropping)
			peer_free(c);
	uv_idle_stop(h);
}

static void drop(struct client *c, enum um_log_level level, const char *reason)
{
	if (c->dropping)
		return;
	c->dropping = true;
	log_msg(level, "dropping client %llu (pid %d): %s", (unsigned long long)c->id, (int)c->pid,
		reason);
	uv_poll_stop(&c->poll);
	uv_idle_start(&c->srv->reaper, reaper_cb);
}

int peer_init(struct server *s)
{
	uv_idle_init(s->loop, &s->reaper);
	s->reaper.data = s;
	return 0;
}

void client_drop(struct client *c, const char *reason)
{
	drop(c, UM_LOG_INFO, reason);
}

void client_drop_bad(struct client *c, const char *reason)
{
	drop(c, UM_LOG_WARN, reason);
}

static int peer_identity(struct client *c)
{
	struct ucred cred, again;
	socklen_t len = sizeof(cred);
	int pidfd = -1;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	len = sizeof(pidfd);
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
		pidfd = pidfd_open(cred.pid, 0);
		if (pidfd < 0)
			return -errno;
		fcntl(pidfd, F_SETFD, FD_CLOEXEC);
		len = sizeof(again);
		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &again, &len) < 0 ||
		    again.pid != cred.pid || !pidfd_alive(pidfd)) {
			close(pidfd);
			return -ESRCH;
		}
	}
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pidfd = pidfd;
	c->pfn_visible = c->srv->kf.pfn_visible &&
			 ((c->srv->opt.pfn_group_set && c->gid == c->srv->opt.pfn_group) ||
			  peer_may_see_pfns(c->srv, c->pid, pidfd));
	return 0;
}

int server_adopt_client(struct server *s, int fd)
{
	struct client *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->fd = fd;
	c->pidfd = -1;
	c->trap_listener = c->trap_state = -1;
	c->id = ++s->next_client_id;
	list_init(&c->receivers);
	idmap_init(&c->receiver_ids, receiver_id);
	list_init(&c->outq);
	list_init(&c->deferred);
	ret = peer_identity(c);
	if (ret) {
		log_warn("rejecting a connection: peer identity: %s", strerror(-ret));
		close(fd);
		free(c);
		return ret;
	}
	uv_poll_init(s->loop, &c->poll, fd);
	c->poll.data = c;
	c->poll_events = UV_READABLE;
	uv_poll_start(&c->poll, UV_READABLE, client_poll_cb);
	list_add_tail(&s->clients, &c->link);
	s->nclients++;
	log_debug("client %llu: pid %d uid %d%s", (unsigned long long)c->id, (int)c->pid,
		  (int)c->uid, c->pfn_visible ? " (sees PFNs)" : "");
	return 0;
}
