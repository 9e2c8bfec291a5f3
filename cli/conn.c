/* SPDX-License-Identifier: MIT */
/*
 * conn.c - the plumbing every command shares: saying what went wrong,
 * reaching the daemon, the signals that stop a loop (see ctl.h).
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "ctl.h"

const char *const prog = "umirrorctl";

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return 2;
}

int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(-err));
	return 1;
}

int fail_pid(pid_t pid, int err)
{
	/* a daemon's -ESRCH: the process may be alive, just not attached */
	if (err == -ESRCH && (kill(pid, 0) == 0 || errno == EPERM))
		fprintf(stderr,
			"%s: pid %d is not attached to umirrord (only processes "
			"that inserted an interval are)\n",
			prog, (int)pid);
	else if (err == -ESRCH)
		fprintf(stderr, "%s: pid %d: no such process\n", prog, (int)pid);
	else if (err == -EACCES)
		fprintf(stderr,
			"%s: pid %d: not allowed: only root and the process's owner "
			"may look at it\n",
			prog, (int)pid);
	else
		return fail("request", err);
	return 1;
}

/* the path um_connect() uses: --socket, else a non-empty $UMIRROR_SOCKET */
static const char *socket_path(const struct opts *o)
{
	const char *env = getenv("UMIRROR_SOCKET");

	if (o->socket)
		return o->socket;
	return env && *env ? env : DEFAULT_SOCKET;
}

/* what a person can do about a failed connect to @path */
static void connect_hint(const char *path, int err)
{
	struct stat st;

	if (err == -EACCES) {
		struct group *gr = stat(path, &st) == 0 ? getgrgid(st.st_gid) : NULL;

		/* the socket's group, which a hand-started daemon may not give umirror */
		fprintf(stderr, "%s: join group %s (or run as root)\n", prog,
			gr && gr->gr_gid ? gr->gr_name : "umirror");
	} else if ((err == -ECONNREFUSED || err == -ENOENT) && stat(path, &st) == 0 &&
		   !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "%s: %s is not a socket\n", prog, path);
	} else if (err == -ECONNREFUSED || err == -ENOENT) {
		fprintf(stderr, "%s: is umirrord running? (systemctl start umirrord.socket)\n",
			prog);
	} else if (err == -EPROTOTYPE) {
		fprintf(stderr, "%s: %s is not a SOCK_SEQPACKET socket: not umirrord's\n", prog,
			path);
	}
}

int connect_daemon(const struct opts *o, struct um_client **c)
{
	const char *path = socket_path(o);
	int ret = um_connect(path, UM_CONNECT_MANUAL, c);

	if (ret < 0) {
		fprintf(stderr, "%s: cannot connect to umirrord at %s: %s\n", prog, path,
			strerror(-ret));
		connect_hint(path, ret);
		return ret;
	}
	return 0;
}

int stop_signalfd(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		fail("sigprocmask", -errno);
		return -1;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fail("signalfd", -errno);
	return sfd < 0 ? -1 : sfd;
}
