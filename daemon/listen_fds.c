/* SPDX-License-Identifier: MIT */
/*
 * listen_fds.c - the sd_listen_fds() protocol without libsystemd.
 */
#include "listen_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sd_notify.h"

static bool adopted;

bool listen_fds_adopted(void)
{
	return adopted;
}

/* fd is an AF_UNIX SOCK_SEQPACKET socket that listen(2) was called on */
static int check_listener(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int type, acc;
	socklen_t ilen = sizeof(int);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno; /* ENOTSOCK, EBADF */
	if (sa.sun_family != AF_UNIX) {
		log_error("socket activation: fd %d is not an AF_UNIX socket", fd);
		return -EAFNOSUPPORT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0)
		return -errno;
	if (type != SOCK_SEQPACKET) {
		log_error("socket activation: fd %d is not SOCK_SEQPACKET (type %d); "
			  "the socket unit needs ListenSequentialPacket=",
			  fd, type);
		return -EPROTOTYPE;
	}
	ilen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ilen) < 0)
		return -errno;
	if (!acc) {
		log_error("socket activation: fd %d is not listening (Accept=yes units "
			  "are not supported)",
			  fd);
		return -EINVAL;
	}
	return 0;
}

int listen_fds_take(int *fd)
{
	uint64_t pid, n;
	int ret, fl;

	*fd = -1;
	if (sd_env_u64("LISTEN_PID", &pid) || pid != (uint64_t)getpid())
		return 0; /* not for us: an ancestor's, or none */
	ret = sd_env_u64("LISTEN_FDS", &n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (ret || n == 0) {
		if (ret == -EINVAL)
			log_error("socket activation: LISTEN_FDS is not a number");
		return ret == -EINVAL ? ret : 0;
	}
	if (n != 1) {
		log_error("socket activation: %llu sockets passed, umirrord serves exactly one",
			  (unsigned long long)n);
		return -E2BIG;
	}
	ret = check_listener(LISTEN_FDS_START);
	if (ret) {
		if (ret != -EAFNOSUPPORT && ret != -EPROTOTYPE && ret != -EINVAL)
			log_error("socket activation: fd %d: %s", LISTEN_FDS_START, strerror(-ret));
		return ret;
	}
	/* libuv polls it and listen_cb() drains accept4() until EAGAIN */
	fl = fcntl(LISTEN_FDS_START, F_GETFL);
	if (fl < 0 || fcntl(LISTEN_FDS_START, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) < 0) {
		ret = -errno;
		log_error("socket activation: fd %d: fcntl: %s", LISTEN_FDS_START, strerror(-ret));
		return ret;
	}
	*fd = LISTEN_FDS_START;
	adopted = true;
	return 1;
}
