/* SPDX-License-Identifier: MIT */
/*
 * server.c - the listening socket, and the top of the daemon: init
 * installs the hooks through which the lower floors reach up (a
 * connection's teardown, the uffd event source), shutdown releases
 * everything.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "inval.h"
#include "interval.h"
#include "listen_fds.h"
#include "log.h"
#include "mm.h"
#include "peer.h"
#include "scan.h"
#include "settle.h"
#include "trap.h"
#include "uffd_event.h"

/* the connection is going: its address space and its subscriptions with it */
static void client_gone(struct client *c)
{
	struct receiver *r, *rt;

	trap_client_gone(c);
	if (c->mm)
		mm_destroy(c->mm);
	c->mm = NULL;
	list_for_each_entry_safe (r, rt, &c->receivers, client_link)
		receiver_free(r);
}

static void listen_cb(uv_poll_t *h, int status, int events)
{
	struct server *s = h->data;

	if (status < 0) {
		log_error("listening socket: %s", uv_strerror(status));
		return;
	}
	for (int i = 0; i < 64; i++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept: %m");
			return;
		}
		server_adopt_client(s, fd); /* it logged and closed @fd on failure */
	}
}

/* --- listening socket --------------------------------------------------- */

static int mkdir_parents(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* remove @addr's path if it is a socket nobody listens on */
static int remove_stale(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (ret == 0)
		return -EADDRINUSE;
	if (unlink(addr->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int listen_socket(struct server *s)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = s->opt.socket_path;
	int fd, ret;

	/* a socket unit's socket wins over --socket: it is what clients know */
	ret = listen_fds_take(&fd);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		s->listen_fd = fd;
		return 0;
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	ret = mkdir_parents(path);
	if (ret) {
		log_error("cannot create the directory of %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = remove_stale(&addr);
	if (ret) {
		log_error("%s: %s", path,
			  ret == -EADDRINUSE ? "another daemon is listening" : strerror(-ret));
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    (s->opt.group_set && chown(path, (uid_t)-1, s->opt.group) < 0) ||
	    chmod(path, s->opt.mode) < 0 || listen(fd, SOMAXCONN) < 0) {
		ret = -errno;
		log_error("%s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	s->listen_fd = fd;
	return 0;
}

int server_init(struct server *s, uv_loop_t *loop)
{
	int ret;

	if (!s->dispatch)
		return -EINVAL; /* no one to hand the requests to */
	s->loop = loop;
	s->hooks.client_gone = client_gone;
	s->listen_fd = -1;
	s->kpageflags_fd = -1;
	list_init(&s->clients);
	list_init(&s->mms);
	list_init(&s->timed);
	limits_init(&s->limits, &s->opt.limits);
	s->start_ms = uv_now(loop);
	ret = kfeat_probe(&s->kf);
	if (ret) {
		log_error("cannot create a userfaultfd: %s%s", strerror(-ret),
			  ret == -EPERM || ret == -EACCES ? " (umirrord runs as root, or with "
							    "CAP_SYS_PTRACE: see umirrord(8))"
			  : ret == -ENOSYS ? " (a kernel without CONFIG_USERFAULTFD?)"
					   : "");
		return ret;
	}
	kfeat_apply_mask(&s->kf, s->opt.mask_features);
	if (s->kf.kpageflags)
		s->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	s->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s->null_fd < 0)
		return -errno;
	ret = listen_socket(s);
	if (ret)
		return ret;
	uv_poll_init(loop, &s->listen_poll, s->listen_fd);
	s->listen_poll.data = s;
	uv_poll_start(&s->listen_poll, UV_READABLE, listen_cb);
	peer_init(s);
	ret = scan_init(s);
	if (ret)
		return ret;
	ret = uffd_event_init(s);
	if (ret)
		return ret;
	ret = settle_init(s);
	if (ret)
		return ret;
	return inval_timer_init(s);
}

void server_shutdown(struct server *s)
{
	struct client *c, *t;
	struct mm *mm, *mt;

	/* writers blocked on a uffd resume once it is closed */
	list_for_each_entry_safe (mm, mt, &s->mms, link)
		mm_release(mm, "daemon shutting down");
	list_for_each_entry_safe (c, t, &s->clients, link)
		peer_free(c);
	uv_idle_stop(&s->reaper);
	uv_close((uv_handle_t *)&s->reaper, NULL);
	uv_close((uv_handle_t *)&s->ack_timer, NULL);
	scan_fini(s);
	uffd_event_fini(s);
	settle_shutdown(s);
	if (s->listen_fd >= 0) {
		uv_close((uv_handle_t *)&s->listen_poll, NULL);
		close(s->listen_fd);
		s->listen_fd = -1;
		/* the socket unit's path must outlive us: systemd listens on it */
		if (!listen_fds_adopted())
			unlink(s->opt.socket_path);
	}
	if (s->kpageflags_fd >= 0)
		close(s->kpageflags_fd);
	close(s->null_fd);
	limits_fini(&s->limits);
}
