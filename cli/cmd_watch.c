/* SPDX-License-Identifier: MIT */
/*
 * cmd_watch.c - umirrorctl watch: print invalidations as they come, on
 * the main thread (the connection is UM_CONNECT_MANUAL), until a signal,
 * --count of them, or the watched process is gone.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "json.h"
#include "um_page.h"

struct watch_state {
	const struct opts *o;
	uint64_t seen;
	bool released; /* a release came in: is anything of the pid left? */
};

static void on_invalidate(uint64_t interval_id, pid_t pid, const struct um_invalidation *inv,
			  void *priv)
{
	struct watch_state *w = priv;
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (w->o->count && w->seen >= w->o->count)
		return; /* more arrived in the same dispatch: not asked for */
	w->seen++;
	if (inv->reason == UM_REASON_RELEASE)
		w->released = true;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (w->o->json) {
		struct json j;

		json_init(&j, stdout);
		json_begin_object(&j);
		json_key(&j, "time");
		json_double(&j, ts.tv_sec + ts.tv_nsec / 1e9, 6);
		json_key(&j, "pid");
		json_i64(&j, pid);
		json_key(&j, "interval");
		json_u64(&j, interval_id);
		json_key(&j, "reason");
		json_string(&j, um_reason_str(inv->reason));
		json_key(&j, "start");
		json_hex(&j, inv->start);
		json_key(&j, "end");
		json_hex(&j, inv->end);
		json_key(&j, "pages");
		json_u64(&j, (inv->end - inv->start) / UMP_PAGE_SIZE);
		json_key(&j, "seq");
		json_u64(&j, inv->seq);
		json_key(&j, "tid");
		json_i64(&j, inv->tid);
		json_end_object(&j);
		json_end(&j);
		return;
	}
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("%s.%06ld pid %d interval %" PRIu64 " %-7s %016" PRIx64 "-%016" PRIx64 " (%" PRIu64
	       " pages) seq %" PRIu64 "\n",
	       when, ts.tv_nsec / 1000, (int)pid, interval_id, um_reason_str(inv->reason),
	       inv->start, inv->end, (uint64_t)((inv->end - inv->start) / UMP_PAGE_SIZE), inv->seq);
	fflush(stdout);
}

int watch_args(int argc, char **argv, struct cmd_args *a)
{
	a->pid = 0;
	if (argc > 1)
		return usage_error("watch: unexpected argument '%s'", argv[1]);
	if (argc == 1 && parse_pid(argv[0], &a->pid) < 0)
		return usage_error("watch: bad pid '%s'", argv[0]);
	return 0;
}

/*
 * Whether @pid still has a live interval. After a release: the owner
 * exited (its intervals are listed dead until its connection is gone) or
 * removed its last interval; either way nothing of it is left to watch.
 */
static bool pid_has_live_interval(struct um_client *c, pid_t pid)
{
	struct um_interval_info *iv = NULL;
	bool live = false;
	size_t n = 0;

	if (um_list(c, &iv, &n) < 0)
		return true; /* the next dispatch reports the broken connection */
	for (size_t i = 0; i < n && !live; i++)
		live = iv[i].pid == pid && !iv[i].dead;
	free(iv);
	return live;
}

int cmd_watch(struct um_client *c, const struct opts *o, const struct cmd_args *a)
{
	struct watch_state w = { .o = o };
	struct pollfd pfd[2];
	pid_t pid = a->pid;
	int sfd, ret;

	/* SIGINT/SIGTERM end the loop cleanly through a signalfd */
	sfd = stop_signalfd();
	if (sfd < 0)
		return 1;

	ret = um_watch(c, pid, on_invalidate, &w);
	if (ret < 0) {
		close(sfd);
		return pid && (ret == -ESRCH || ret == -EACCES) ? fail_pid(pid, ret)
								: fail("watch", ret);
	}
	pfd[0] = (struct pollfd){ .fd = um_fd(c), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	while (!o->count || w.seen < o->count) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents) {
			ret = um_dispatch(c, 0);
			if (ret < 0)
				break;
			ret = 0;
		}
		if (pid && w.released) {
			w.released = false;
			if (!pid_has_live_interval(c, pid))
				break;
		}
	}
	close(sfd);
	if (ret < 0)
		return fail(ret == -ENOTCONN ? "watch: daemon went away" : "watch", ret);
	return 0;
}
