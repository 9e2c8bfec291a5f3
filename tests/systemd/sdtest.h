/* SPDX-License-Identifier: MIT */
/*
 * sdtest.h - what the systemd tests share: a scratch directory, starting
 * umirrord with a prepared environment and fds, waiting for it with a
 * deadline. Header-only: each test is one small program.
 */
#ifndef UM_SDTEST_H
#define UM_SDTEST_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UMIRRORD_PATH
#error "UMIRRORD_PATH must name the daemon binary"
#endif

#define SD_MAX_PATHS 16

static char sd_dir[64];
static pid_t sd_daemon;
static char *sd_paths[SD_MAX_PATHS];
static int sd_npaths;

static void sd_cleanup(void)
{
	char cmd[128];

	if (sd_daemon > 0) {
		kill(sd_daemon, SIGKILL);
		waitpid(sd_daemon, NULL, 0);
		sd_daemon = 0;
	}
	if (sd_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sd_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", sd_dir);
		sd_dir[0] = 0;
	}
	while (sd_npaths > 0)
		free(sd_paths[--sd_npaths]);
}

__attribute__((format(printf, 1, 2), noreturn)) static void sd_fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	sd_cleanup();
	exit(1);
}

#define SD_CHECK(cond, ...)                   \
	do {                                  \
		if (!(cond))                  \
			sd_fail(__VA_ARGS__); \
	} while (0)

static void sd_init(const char *name)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(sd_dir, sizeof(sd_dir), "/tmp/umirror-%s-XXXXXX", name);
	SD_CHECK(mkdtemp(sd_dir), "mkdtemp: %m");
	atexit(sd_cleanup);
}

static long long sd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

/* path under the scratch directory; lives until sd_cleanup() */
static const char *sd_path(const char *name)
{
	char *p;

	SD_CHECK(sd_npaths < SD_MAX_PATHS, "more than %d paths", SD_MAX_PATHS);
	SD_CHECK(asprintf(&p, "%s/%s", sd_dir, name) > 0, "out of memory");
	sd_paths[sd_npaths++] = p;
	return p;
}

/*
 * Start umirrord with @argv (argv[0] is ignored) after @prepare(@arg) ran
 * in the child (set the environment, place fds). Sets sd_daemon.
 */
static pid_t sd_spawn(const char *const *argv, void (*prepare)(void *), void *arg)
{
	pid_t pid = fork();

	SD_CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		if (prepare)
			prepare(arg);
		execv(UMIRRORD_PATH, (char *const *)argv);
		fprintf(stderr, "exec %s: %m\n", UMIRRORD_PATH);
		_exit(127);
	}
	sd_daemon = pid;
	return pid;
}

/* wait up to @ms for sd_daemon to end; returns its wait status */
static int sd_wait(int ms)
{
	long long deadline = sd_now_ms() + ms;
	int status;

	for (;;) {
		pid_t r = waitpid(sd_daemon, &status, WNOHANG);

		SD_CHECK(r >= 0, "waitpid: %m");
		if (r == sd_daemon) {
			sd_daemon = 0;
			return status;
		}
		SD_CHECK(sd_now_ms() < deadline, "umirrord (pid %d) still running after %d ms",
			 (int)sd_daemon, ms);
		usleep(5000);
	}
}

/* connect a SOCK_SEQPACKET client to @path, retrying for up to @ms */
static int sd_connect(const char *path, int ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = sd_now_ms() + ms;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		SD_CHECK(fd >= 0, "socket: %m");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		SD_CHECK(sd_now_ms() < deadline, "cannot connect to %s within %d ms: %m", path, ms);
		usleep(5000);
	}
}

/* a datagram socket bound where NOTIFY_SOCKET will point */
static int sd_notify_listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	SD_CHECK(fd >= 0, "socket: %m");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
	len = offsetof(struct sockaddr_un, sun_path) + strlen(name);
	if (name[0] == '@')
		sa.sun_path[0] = 0;
	SD_CHECK(bind(fd, (struct sockaddr *)&sa, len) == 0, "bind %s: %m", name);
	return fd;
}

/* next datagram within @ms, NUL-terminated; false on timeout */
static bool sd_recv(int fd, char *buf, size_t size, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return false;
	n = recv(fd, buf, size - 1, 0);
	SD_CHECK(n >= 0, "recv: %m");
	buf[n] = 0;
	return true;
}

/* a line of @msg equal to @line, or starting with it when it ends in '*' */
static bool sd_has_line(const char *msg, const char *line)
{
	size_t len = strlen(line);
	bool prefix = len && line[len - 1] == '*';

	if (prefix)
		len--;
	for (const char *p = msg; *p;) {
		const char *nl = strchrnul(p, '\n');

		if ((size_t)(nl - p) >= len && !strncmp(p, line, len) &&
		    (prefix || (size_t)(nl - p) == len))
			return true;
		p = *nl ? nl + 1 : nl;
	}
	return false;
}

/* wait up to @ms for READY=1 on @lfd (from sd_notify_listener()) */
__attribute__((unused)) static void sd_wait_ready(int lfd, int ms)
{
	long long deadline = sd_now_ms() + ms;
	char msg[512];

	do {
		long long left = deadline - sd_now_ms();

		SD_CHECK(left > 0 && sd_recv(lfd, msg, sizeof(msg), (int)left),
			 "no READY=1 from umirrord within %d ms", ms);
	} while (!sd_has_line(msg, "READY=1"));
}

#endif /* UM_SDTEST_H */
