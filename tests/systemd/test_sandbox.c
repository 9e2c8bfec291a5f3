/* SPDX-License-Identifier: MIT */
/*
 * test_sandbox - after start-up umirrord runs under a seccomp allow-list
 * whose default is to kill the process. With UMIRRORD_SANDBOX_SELFTEST=1
 * the daemon makes one forbidden call (socket(AF_INET)) right after
 * installing it: it must die of SIGSYS. With --no-sandbox the same call
 * returns and the daemon says so (exit 1): the kill came from the filter.
 * That the filter lets everything the daemon needs through is proven by
 * the integration suite, whose daemons all run with it.
 */
#include "sdtest.h"

static void notify_env(void *arg)
{
	if (setenv("NOTIFY_SOCKET", arg, 1))
		_exit(126);
}

static void selftest_env(void *arg)
{
	if (setenv("UMIRRORD_SANDBOX_SELFTEST", "1", 1))
		_exit(126);
}

int main(void)
{
	const char *sock;
	int status;

	sd_init("sandbox");
	sock = sd_path("umirrord.sock");

	{
		const char *argv[] = { "umirrord", "--socket", sock, NULL };

		sd_spawn(argv, selftest_env, NULL);
		status = sd_wait(10000);
		SD_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
			 "sandboxed daemon survived a forbidden call (status 0x%x)", status);
		printf("ok: forbidden socket(AF_INET) killed umirrord with SIGSYS\n");
	}
	{
		const char *argv[] = { "umirrord", "--socket", sock, "--no-sandbox", NULL };

		sd_spawn(argv, selftest_env, NULL);
		status = sd_wait(10000);
		SD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1,
			 "--no-sandbox self-test: want exit 1, status 0x%x", status);
		printf("ok: with --no-sandbox the call returns (exit 1)\n");
	}
	{
		/* without the trigger the sandboxed daemon serves and stops cleanly */
		const char *argv[] = { "umirrord", "--socket", sock, NULL };
		const char *notify = sd_path("notify");
		int fd, lfd = sd_notify_listener(notify);

		sd_spawn(argv, notify_env, (void *)notify);
		/* after READY=1: the filter is in and SIGTERM is handled */
		sd_wait_ready(lfd, 10000);
		fd = sd_connect(sock, 100);
		close(fd);
		SD_CHECK(kill(sd_daemon, SIGTERM) == 0, "kill: %m");
		status = sd_wait(5000);
		SD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "sandboxed daemon: want exit 0 on SIGTERM, status 0x%x", status);
		close(lfd);
		printf("ok: sandboxed daemon accepts and exits 0 on SIGTERM\n");
	}
	printf("PASS\n");
	return 0;
}
