// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "timing.h"

/* 0 when @path accepts a SOCK_SEQPACKET connection, else -errno. */
static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void __attribute__((noreturn))
exec_child(const struct bench_daemon *d, const char *exe, pid_t parent)
{
	int fd;

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
		_exit(127);
	fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
		_exit(127);
	execl(exe, exe, "--socket", d->socket, (char *)NULL);
	dprintf(STDERR_FILENO, "umirror-bench: exec %s: %s\n", exe, strerror(errno));
	_exit(127);
}

int bench_daemon_start(struct bench_daemon *d, const char *exe, int timeout_ms)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	pid_t parent = getpid();
	int status, ret;

	strcpy(d->dir, "/tmp/umirror-bench.XXXXXX");
	if (!mkdtemp(d->dir)) {
		d->dir[0] = '\0';
		return -errno;
	}
	snprintf(d->socket, sizeof(d->socket), "%s/umirrord.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/umirrord.log", d->dir);

	d->pid = fork();
	if (d->pid < 0) {
		d->pid = 0;
		return -errno;
	}
	if (d->pid == 0)
		exec_child(d, exe, parent);

	for (;;) {
		ret = try_connect(d->socket);
		if (ret == 0)
			return 0;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return -ECHILD;
		}
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		sleep_ms(5);
	}
}

void bench_daemon_print_log(const struct bench_daemon *d)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if (!d->log[0])
		return;
	fd = open(d->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	fprintf(stderr, "umirror-bench: --- %s ---\n", d->log);
	fflush(stderr);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(STDERR_FILENO, buf, (size_t)n) != n)
			break;
	close(fd);
}

int bench_daemon_stop(struct bench_daemon *d)
{
	int status = 0, ret = -1, i;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		for (i = 0; i < 200; i++) {
			pid_t w = waitpid(d->pid, &status, WNOHANG);

			if (w == d->pid || (w < 0 && errno != EINTR))
				break;
			sleep_ms(10);
		}
		if (i == 200) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
		} else if (WIFEXITED(status)) {
			ret = WEXITSTATUS(status);
		}
		d->pid = 0;
	}
	if (d->dir[0]) {
		unlink(d->socket);
		unlink(d->log);
		rmdir(d->dir);
		d->dir[0] = '\0';
	}
	return ret;
}
