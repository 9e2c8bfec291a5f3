/* SPDX-License-Identifier: MIT */
/*
 * test_notify - umirrord speaks the sd_notify protocol to $NOTIFY_SOCKET:
 * READY=1 (with STATUS=) once it listens, STATUS= when its client count
 * changes, WATCHDOG=1 at half of $WATCHDOG_USEC (only when $WATCHDOG_PID
 * is unset or names it), STOPPING=1 on SIGTERM, then exit 0. Once with a
 * path socket, once with an abstract one ('@').
 */
#include "sdtest.h"

struct env {
	const char *notify, *wd_usec, *wd_pid;
};

static void prepare(void *arg)
{
	const struct env *e = arg;

	if (setenv("NOTIFY_SOCKET", e->notify, 1) ||
	    (e->wd_usec && setenv("WATCHDOG_USEC", e->wd_usec, 1)) ||
	    (e->wd_pid && setenv("WATCHDOG_PID", e->wd_pid, 1)))
		_exit(126);
}

/*
 * Receive until a message has @line (then return its watchdog count) or
 * @ms pass (fail). WATCHDOG=1 messages on the way are counted.
 */
static int expect(int fd, const char *line, int ms, int *watchdogs)
{
	long long deadline = sd_now_ms() + ms;
	char msg[512];

	for (;;) {
		long long left = deadline - sd_now_ms();

		SD_CHECK(left > 0 && sd_recv(fd, msg, sizeof(msg), (int)left),
			 "no '%s' from umirrord within %d ms", line, ms);
		if (sd_has_line(msg, "WATCHDOG=1"))
			(*watchdogs)++;
		if (sd_has_line(msg, line)) {
			printf("  got: %s\n", msg);
			return *watchdogs;
		}
	}
}

static void run(const char *notify, const char *wd_usec, const char *wd_pid, bool want_wd)
{
	const char *sock = sd_path("umirrord.sock");
	const char *argv[] = { "umirrord", "--socket", sock, NULL };
	struct env e = { notify, wd_usec, wd_pid };
	int lfd = sd_notify_listener(notify), cfd, wd = 0, status;
	char msg[512];

	printf("NOTIFY_SOCKET=%s WATCHDOG_USEC=%s WATCHDOG_PID=%s\n", notify,
	       wd_usec ? wd_usec : "-", wd_pid ? wd_pid : "-");
	sd_spawn(argv, prepare, &e);
	expect(lfd, "READY=1", 10000, &wd);
	/* READY=1 carries where it listens; it is sent after the socket works */
	cfd = sd_connect(sock, 100);
	/* the status timer reports the new client within about a second */
	expect(lfd, "STATUS=1 client, 0 intervals", 3000, &wd);
	close(cfd);
	expect(lfd, "STATUS=0 clients, 0 intervals", 3000, &wd);
	if (want_wd) {
		/* WATCHDOG_USEC = 200 ms: a ping every 100 ms */
		long long end = sd_now_ms() + 500;

		while (sd_now_ms() < end)
			if (sd_recv(lfd, msg, sizeof(msg), 50) && sd_has_line(msg, "WATCHDOG=1"))
				wd++;
		SD_CHECK(wd >= 10, "only %d WATCHDOG=1 in 2+ s at a 100 ms period", wd);
		printf("  %d x WATCHDOG=1\n", wd);
	} else {
		SD_CHECK(wd == 0, "%d WATCHDOG=1 although WATCHDOG_PID names another process", wd);
		printf("  no WATCHDOG=1 (not our WATCHDOG_PID)\n");
	}
	SD_CHECK(kill(sd_daemon, SIGTERM) == 0, "kill: %m");
	expect(lfd, "STOPPING=1", 5000, &wd);
	status = sd_wait(5000);
	SD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "umirrord did not exit 0 after SIGTERM (status 0x%x)", status);
	close(lfd);
}

int main(void)
{
	char abstract[64];

	sd_init("notify");
	run(sd_path("notify"), "200000", NULL, true);
	snprintf(abstract, sizeof(abstract), "@umirror-test-notify-%d", (int)getpid());
	/* pid 1 is never the daemon: the watchdog request is not for it */
	run(abstract, "200000", "1", false);
	printf("PASS\n");
	return 0;
}
