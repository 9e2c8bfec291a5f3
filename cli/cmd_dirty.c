/* SPDX-License-Identifier: MIT */
/*
 * cmd_dirty.c - umirrorctl dirty: the pages of a process's intervals
 * written since they were armed, once or sampled every --interval ms
 * with the write rate. It subscribes (asynchronously) to each interval it
 * harvests, so the owner's writers never wait for it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "pageview.h"
#include "um_page.h"

enum dkind { D_CLEAN, D_WRITTEN, D_UNMIRRORED, D_MAX };

/* 'w' and '.' mean what they mean in show; ' ' is outside every interval */
static const struct grid_kind dkinds[D_MAX] = {
	[D_CLEAN] = { '.', "clean", NULL },
	[D_WRITTEN] = { 'w', "written", "1;31" },
	[D_UNMIRRORED] = { ' ', "not_mirrored", NULL },
};

#define DIRTY_RANGES 4096 /* ranges per um_interval_dirty() call */

struct dirty_sub {
	struct um_interval *iv;
	uint64_t from, to; /* the part of the asked range inside it */
};

struct dirty_state {
	pid_t pid;
	uint64_t start, npages;
	struct dirty_sub *sub;
	struct um_interval_info *info; /* of sub[i], for the output */
	size_t nsub;
	uint8_t *kind;
	struct um_dirty_range *ranges;
};

int dirty_args(int argc, char **argv, struct cmd_args *a)
{
	if (argc < 1)
		return usage_error("dirty needs PID [ADDR[+LEN]]");
	if (argc == 1) {
		a->start = a->npages = 0; /* every interval of PID */
		if (parse_pid(argv[0], &a->pid) < 0)
			return usage_error("dirty: bad pid '%s'", argv[0]);
		return 0;
	}
	return range_args("dirty", argc, argv, &a->pid, &a->start, &a->npages);
}

/*
 * Why @pid has no interval this caller may see: the daemon's answer to a
 * one-page raw snapshot says whether it is attached and whose it is.
 */
static int dirty_no_interval(struct um_client *c, pid_t pid)
{
	uint64_t e;
	long ret = um_snapshot_raw(c, pid, 0, 1, &e);

	if (ret == -ESRCH || ret == -EACCES)
		return fail_pid(pid, (int)ret);
	fprintf(stderr, "%s: pid %d has no interval in that range\n", prog, (int)pid);
	return 1;
}

/* subscribe to every live interval of @pid over the range: 0 or exit status */
static int dirty_subscribe(struct um_client *c, struct dirty_state *d)
{
	struct um_interval_info *all = NULL;
	uint64_t end;
	size_t n = 0;
	int ret;

	ret = um_list(c, &all, &n);
	if (ret < 0)
		return fail("list", ret);
	/* no range given: from the first interval's start to the last one's end */
	if (!d->npages) {
		uint64_t lo = UINT64_MAX, hi = 0;

		for (size_t i = 0; i < n; i++)
			if (all[i].pid == d->pid && !all[i].dead) {
				lo = all[i].start < lo ? all[i].start : lo;
				hi = all[i].start + all[i].length > hi
					     ? all[i].start + all[i].length
					     : hi;
			}
		if (hi > lo && (hi - lo) / UMP_PAGE_SIZE > SHOW_MAX_PAGES) {
			free(all);
			fprintf(stderr,
				"%s: the intervals of pid %d span more than 16 GiB: "
				"give ADDR+LEN\n",
				prog, (int)d->pid);
			return 1;
		}
		if (hi > lo) {
			d->start = lo;
			d->npages = (hi - lo) / UMP_PAGE_SIZE;
		}
	}
	end = d->start + d->npages * UMP_PAGE_SIZE;
	d->sub = calloc(n ? n : 1, sizeof(*d->sub));
	d->info = calloc(n ? n : 1, sizeof(*d->info));
	if (!d->sub || !d->info) {
		free(all);
		return fail("dirty", -ENOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		struct dirty_sub *s = &d->sub[d->nsub];

		if (all[i].pid != d->pid || all[i].dead || !d->npages || all[i].start >= end ||
		    all[i].start + all[i].length <= d->start)
			continue;
		d->info[d->nsub] = all[i];
		s->from = all[i].start > d->start ? all[i].start : d->start;
		s->to = all[i].start + all[i].length < end ? all[i].start + all[i].length : end;
		/* asynchronous: the owner's writers never wait for this tool */
		ret = um_interval_subscribe(c, d->pid, all[i].interval_id, UM_INTERVAL_ASYNC, NULL,
					    NULL, &s->iv);
		if (ret == -ESRCH)
			continue; /* removed since the list */
		if (ret < 0) {
			free(all);
			return ret == -EACCES ? fail_pid(d->pid, ret) : fail("subscribe", ret);
		}
		d->nsub++;
	}
	free(all);
	if (!d->nsub)
		return dirty_no_interval(c, d->pid);
	return 0;
}

/* one harvest of every subscribed interval into d->kind; counts in @count */
static int dirty_sample(struct dirty_state *d, const struct opts *o, uint64_t *count)
{
	memset(d->kind, D_UNMIRRORED, d->npages);
	for (size_t i = 0; i < d->nsub; i++) {
		struct dirty_sub *s = &d->sub[i];
		uint64_t at = s->from;

		memset(d->kind + (s->from - d->start) / UMP_PAGE_SIZE, D_CLEAN,
		       (s->to - s->from) / UMP_PAGE_SIZE);
		while (at < s->to) {
			uint64_t from = at;
			long n = um_interval_dirty(s->iv, at, s->to, o->rearm ? UM_DIRTY_REARM : 0,
						   d->ranges, DIRTY_RANGES, &at);

			if (n == -EOPNOTSUPP) {
				fprintf(stderr,
					"%s: interval %" PRIu64 " (backend %s) cannot see "
					"writes: only the revalidation scan watches it\n",
					prog, d->info[i].interval_id,
					um_backend_str(d->info[i].backend));
				return -EOPNOTSUPP;
			}
			if (n < 0)
				return (int)n;
			for (long r = 0; r < n; r++) {
				/* inside what was asked, whatever the daemon said */
				uint64_t rs =
					d->ranges[r].start > s->from ? d->ranges[r].start : s->from;
				uint64_t re = d->ranges[r].end < s->to ? d->ranges[r].end : s->to;

				if (rs < re)
					memset(d->kind + (rs - d->start) / UMP_PAGE_SIZE, D_WRITTEN,
					       (re - rs) / UMP_PAGE_SIZE);
			}
			if (at <= from)
				return -EIO; /* no progress: do not loop forever */
		}
	}
	memset(count, 0, D_MAX * sizeof(*count));
	for (uint64_t i = 0; i < d->npages; i++)
		count[d->kind[i]]++;
	return 0;
}

/*
 * The rate of one sample, from the one before: with --rearm every sample
 * holds the pages written since the last, without it the set only grows
 * and the new pages are what counts. Either way a page written twice in
 * one interval counts once: a lower bound on the write traffic, the
 * figure a pre-copy migration or incremental checkpoint has to move.
 */
static double dirty_rate(const struct opts *o, uint64_t written, uint64_t before, double secs)
{
	uint64_t pages = o->rearm ? written : written > before ? written - before : 0;

	return secs > 0 ? pages / secs : 0;
}

static void dirty_json(const struct dirty_state *d, const struct opts *o, const uint64_t *count,
		       uint64_t sample, double elapsed, const double *rate)
{
	struct json j;

	json_init(&j, stdout);
	json_begin_object(&j);
	json_key(&j, "pid");
	json_i64(&j, d->pid);
	json_key(&j, "start");
	json_hex(&j, d->start);
	json_key(&j, "npages");
	json_u64(&j, d->npages);
	json_key(&j, "rearm");
	json_bool(&j, o->rearm);
	if (o->interval_ms) {
		json_key(&j, "sample");
		json_u64(&j, sample);
		json_key(&j, "elapsed_s");
		json_double(&j, elapsed, 3);
	}
	json_intervals(&j, d->info, d->nsub);
	/* the written runs, as the daemon merged them (clipped to the range) */
	json_key(&j, "written");
	json_begin_array(&j);
	for (uint64_t i = 0, run; i < d->npages; i += run) {
		for (run = 1; i + run < d->npages && d->kind[i + run] == d->kind[i]; run++)
			;
		if (d->kind[i] != D_WRITTEN)
			continue;
		json_begin_object(&j);
		json_key(&j, "start");
		json_hex(&j, d->start + i * UMP_PAGE_SIZE);
		json_key(&j, "end");
		json_hex(&j, d->start + (i + run) * UMP_PAGE_SIZE);
		json_key(&j, "pages");
		json_u64(&j, run);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_summary(&j, dkinds, D_MAX, count);
	if (rate) {
		json_key(&j, "rate_pages_per_s");
		json_double(&j, *rate, 1);
		json_key(&j, "rate_mib_per_s");
		json_double(&j, *rate * UMP_PAGE_SIZE / (1 << 20), 3);
	}
	json_end_object(&j);
	json_end(&j);
}

static int dirty_text(const struct dirty_state *d, const struct opts *o, const uint64_t *count,
		      uint64_t sample, double elapsed, const double *rate)
{
	struct grid_opts g = grid_opts_for(o);
	int ret;

	g.legend = g.legend && sample <= 1; /* once is enough when repeated */
	if (o->interval_ms)
		printf("sample %" PRIu64 " at %.3f s\n", sample, elapsed);
	if (sample <= 1)
		print_intervals(d->info, d->nsub);
	ret = grid_print(stdout, &g, dkinds, D_MAX, d->start, d->kind, d->npages);
	if (ret < 0)
		return ret;
	print_summary(d->npages, dkinds, D_MAX, count);
	if (rate)
		printf("rate: %.1f pages/s, %.3f MiB/s\n", *rate,
		       *rate * UMP_PAGE_SIZE / (1 << 20));
	fflush(stdout);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Wait @ms, reading (and dropping) the invalidations the subscriptions
 * bring meanwhile. Return: 0 waited, 1 a signal came, or -errno.
 */
static int dirty_wait(struct um_client *c, int sfd, uint64_t ms)
{
	double until = now_s() + ms / 1000.0;
	struct pollfd pfd[2] = {
		{ .fd = um_fd(c), .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};

	for (;;) {
		double left = until - now_s();
		int ret;

		if (left <= 0)
			return 0;
		ret = poll(pfd, 2, (int)(left * 1000) + 1);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret > 0 && pfd[1].revents)
			return 1;
		if (ret > 0 && pfd[0].revents) {
			ret = um_dispatch(c, 0);
			if (ret < 0)
				return ret;
		}
	}
}

int cmd_dirty(struct um_client *c, const struct opts *o, const struct cmd_args *a)
{
	struct dirty_state d = { .pid = a->pid, .start = a->start, .npages = a->npages };
	uint64_t count[D_MAX], before = 0;
	double t0, last, now;
	int sfd = -1, ret, status = 1;

	/* SIGINT/SIGTERM end a repeated harvest cleanly, as they end watch */
	if (o->interval_ms && (sfd = stop_signalfd()) < 0)
		return 1;
	ret = dirty_subscribe(c, &d);
	if (ret)
		goto out;
	d.kind = malloc(d.npages);
	d.ranges = calloc(DIRTY_RANGES, sizeof(*d.ranges));
	if (!d.kind || !d.ranges) {
		fail("dirty", -ENOMEM);
		goto out;
	}
	t0 = last = now_s();
	for (uint64_t sample = 1;; sample++) {
		double rate;

		ret = dirty_sample(&d, o, count);
		now = now_s();
		/* the owner went away between samples: what it wrote is all said */
		if (ret == -EFAULT && sample > 1) {
			fprintf(stderr, "%s: pid %d is gone\n", prog, (int)d.pid);
			status = 0;
			break;
		}
		if (ret < 0) {
			if (ret != -EOPNOTSUPP)
				fail("dirty", ret);
			goto out;
		}
		rate = dirty_rate(o, count[D_WRITTEN], before, now - last);
		if (o->json)
			dirty_json(&d, o, count, sample, now - t0, sample > 1 ? &rate : NULL);
		else if ((ret = dirty_text(&d, o, count, sample, now - t0,
					   sample > 1 ? &rate : NULL)))
			goto out_fail;
		before = count[D_WRITTEN];
		last = now;
		if (!o->interval_ms || (o->count && sample >= o->count)) {
			status = 0;
			break;
		}
		ret = dirty_wait(c, sfd, o->interval_ms);
		if (ret < 0)
			goto out_fail;
		if (ret == 1) {
			ret = 0;
			status = 0;
			break;
		}
	}
	goto out;
out_fail:
	fail(ret == -ENOTCONN ? "dirty: daemon went away" : "dirty", ret);
out:
	for (size_t i = 0; i < d.nsub; i++)
		um_interval_remove(d.sub[i].iv);
	free(d.sub);
	free(d.info);
	free(d.kind);
	free(d.ranges);
	if (sfd >= 0)
		close(sfd);
	return ret > 0 ? ret : status;
}
