/* SPDX-License-Identifier: MIT */
/*
 * sd_notify.c - READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 to systemd.
 *
 * The socket is opened once at start-up: the seccomp filter installed
 * after start-up forbids socket(2), and sendto(2) on an unconnected
 * datagram socket lets the manager's socket be re-created under us.
 */
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "server_types.h"

#define STATUS_PERIOD_MS 1000 /* at most one STATUS= change a second */

static struct {
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
	uint64_t watchdog_usec;
	struct server *srv;
	uv_timer_t watchdog, status;
	bool timers;
	unsigned int last_clients, last_intervals;
} nt = { .fd = -1 };

int sd_env_u64(const char *name, uint64_t *out)
{
	const char *s = getenv(name);
	char *end;

	*out = 0;
	if (!s || !*s)
		return -ENOENT;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || *s == '-')
		return -EINVAL;
	return 0;
}

uint64_t notify_watchdog_usec(void)
{
	return nt.watchdog_usec;
}

int notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	uint64_t usec, pid;
	size_t len;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	/* '/' for a path, '@' for the abstract namespace; nothing else (vsock) */
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(nt.addr.sun_path)) {
		log_error("NOTIFY_SOCKET=%s: not an AF_UNIX address", path);
		return -EINVAL;
	}
	nt.addr.sun_family = AF_UNIX;
	memcpy(nt.addr.sun_path, path, len);
	if (path[0] == '@')
		nt.addr.sun_path[0] = 0;
	/* an abstract name is exactly len bytes long, no terminator */
	nt.addr_len = offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/');
	nt.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (nt.fd < 0) {
		log_error("NOTIFY_SOCKET: socket: %m");
		return -errno;
	}

	if (sd_env_u64("WATCHDOG_USEC", &usec) == 0 && usec > 0) {
		int r = sd_env_u64("WATCHDOG_PID", &pid);

		if (r == -ENOENT || (r == 0 && pid == (uint64_t)getpid()))
			nt.watchdog_usec = usec;
	}
	return 0;
}

int notify_send(const char *msg)
{
	ssize_t n;

	if (nt.fd < 0)
		return -ENOTCONN;
	do
		n = sendto(nt.fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
			   (const struct sockaddr *)&nt.addr, nt.addr_len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		log_warn("sd_notify: %m");
		return -errno;
	}
	return 0;
}

static void watchdog_cb(uv_timer_t *t)
{
	notify_send("WATCHDOG=1");
}

static void send_status(void)
{
	char msg[128];

	if (nt.srv->nclients == nt.last_clients && nt.srv->nintervals == nt.last_intervals)
		return;
	nt.last_clients = nt.srv->nclients;
	nt.last_intervals = nt.srv->nintervals;
	snprintf(msg, sizeof(msg), "STATUS=%u client%s, %u interval%s", nt.last_clients,
		 nt.last_clients == 1 ? "" : "s", nt.last_intervals,
		 nt.last_intervals == 1 ? "" : "s");
	notify_send(msg);
}

static void status_cb(uv_timer_t *t)
{
	send_status();
}

void notify_ready(struct server *s, const char *listen_desc)
{
	char msg[256];

	if (nt.fd < 0)
		return;
	nt.srv = s;
	nt.last_clients = s->nclients;
	nt.last_intervals = s->nintervals;
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening on %s", listen_desc);
	notify_send(msg);

	uv_timer_init(s->loop, &nt.watchdog);
	uv_timer_init(s->loop, &nt.status);
	uv_unref((uv_handle_t *)&nt.watchdog);
	uv_unref((uv_handle_t *)&nt.status);
	nt.timers = true;
	if (nt.watchdog_usec) {
		/* half the interval, as systemd asks; at least 1 ms for libuv */
		uint64_t ms = nt.watchdog_usec / 2000;

		uv_timer_start(&nt.watchdog, watchdog_cb, ms ? ms : 1, ms ? ms : 1);
		log_debug("watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)ms);
	}
	uv_timer_start(&nt.status, status_cb, STATUS_PERIOD_MS, STATUS_PERIOD_MS);
}

void notify_stopping(void)
{
	if (nt.fd < 0)
		return;
	notify_send("STOPPING=1\nSTATUS=shutting down");
	if (nt.timers) {
		uv_close((uv_handle_t *)&nt.watchdog, NULL);
		uv_close((uv_handle_t *)&nt.status, NULL);
		nt.timers = false;
	}
	close(nt.fd);
	nt.fd = -1;
}
