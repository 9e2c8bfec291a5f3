/* SPDX-License-Identifier: MIT */
/*
 * test_listen_fds - socket activation by hand, the way systemd does it
 * (fd 3, LISTEN_PID, LISTEN_FDS): a listening SOCK_SEQPACKET socket is
 * adopted (--socket is then not bound, and the path survives SIGTERM);
 * a stream socket, a socket that does not listen, and a pipe are refused
 * with exit 1 and nothing bound; LISTEN_PID naming another process is
 * ignored (the daemon binds --socket as usual).
 */
#include "sdtest.h"

#include <fcntl.h>

enum kind { SEQPACKET_LISTENING, STREAM_LISTENING, SEQPACKET_IDLE, PIPE };

struct act {
	int fd;		    /* becomes fd 3 */
	bool other_pid;	    /* LISTEN_PID=1 */
	const char *notify; /* NOTIFY_SOCKET, or NULL */
};

static void prepare(void *arg)
{
	const struct act *a = arg;
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", a->other_pid ? 1 : (int)getpid());
	if (dup2(a->fd, 3) < 0 || setenv("LISTEN_PID", pid, 1) || setenv("LISTEN_FDS", "1", 1) ||
	    (a->notify && setenv("NOTIFY_SOCKET", a->notify, 1)))
		_exit(126);
}

static int make_fd(enum kind k, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int type = k == STREAM_LISTENING ? SOCK_STREAM : SOCK_SEQPACKET;
	int fd, p[2];

	if (k == PIPE) {
		SD_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %m");
		close(p[1]);
		return p[0];
	}
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	SD_CHECK(fd >= 0, "socket: %m");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	SD_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %m");
	if (k != SEQPACKET_IDLE)
		SD_CHECK(listen(fd, 16) == 0, "listen: %m");
	return fd;
}

static void refused(enum kind k, const char *what)
{
	const char *own = sd_path("own.sock"), *passed = sd_path("passed.sock");
	const char *argv[] = { "umirrord", "--socket", own, NULL };
	struct act a = { .fd = make_fd(k, passed) };
	int status;

	sd_spawn(argv, prepare, &a);
	close(a.fd);
	status = sd_wait(10000);
	SD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		 "%s passed as fd 3: want exit 1, status 0x%x", what, status);
	SD_CHECK(access(own, F_OK) < 0, "%s refused, yet --socket %s was bound", what, own);
	unlink(passed);
	printf("ok: %s refused\n", what);
}

int main(void)
{
	const char *own, *passed, *notify;
	int fd, status, lfd;

	sd_init("listenfds");
	own = sd_path("own.sock");
	passed = sd_path("passed.sock");
	notify = sd_path("notify");
	/* READY=1 says the daemon set up its SIGTERM handler */
	lfd = sd_notify_listener(notify);

	{
		const char *argv[] = { "umirrord", "--socket", own, NULL };
		struct act a = { .fd = make_fd(SEQPACKET_LISTENING, passed), .notify = notify };

		sd_spawn(argv, prepare, &a);
		close(a.fd);
		sd_wait_ready(lfd, 10000);
		fd = sd_connect(passed, 10000);
		close(fd);
		SD_CHECK(access(own, F_OK) < 0, "adopted fd 3 but also bound --socket");
		SD_CHECK(kill(sd_daemon, SIGTERM) == 0, "kill: %m");
		status = sd_wait(5000);
		SD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "socket-activated daemon: want exit 0, status 0x%x", status);
		SD_CHECK(access(passed, F_OK) == 0, "daemon unlinked the passed socket's path");
		unlink(passed);
		printf("ok: listening SOCK_SEQPACKET adopted, path kept\n");
	}
	refused(STREAM_LISTENING, "a SOCK_STREAM socket");
	refused(SEQPACKET_IDLE, "a SOCK_SEQPACKET socket that does not listen");
	refused(PIPE, "a pipe");
	{
		const char *argv[] = { "umirrord", "--socket", own, NULL };
		struct act a = { .fd = make_fd(SEQPACKET_LISTENING, passed),
				 .other_pid = true,
				 .notify = notify };

		sd_spawn(argv, prepare, &a);
		close(a.fd);
		sd_wait_ready(lfd, 10000);
		fd = sd_connect(own, 10000);
		close(fd);
		SD_CHECK(kill(sd_daemon, SIGTERM) == 0, "kill: %m");
		status = sd_wait(5000);
		SD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "daemon with a foreign LISTEN_PID: want exit 0, status 0x%x", status);
		printf("ok: LISTEN_PID of another process ignored, --socket bound\n");
	}
	printf("PASS\n");
	return 0;
}
