/* SPDX-License-Identifier: MIT */
/*
 * test_grant - GRANT: a process of another uid (nobody) may not subscribe
 * to root's interval until root grants its uid; then it receives every
 * invalidation, in the order the inserter receives them; a revoked uid
 * cannot subscribe anew (the subscription it has stays); a subscriber
 * cannot grant; an interval takes 16 grants, not 17.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
#define NPAGES 4
#define MAX_EV 32

struct ev {
	uint64_t start, end;
	int reason;
};

struct log {
	pthread_mutex_t lock;
	sem_t sem;
	unsigned int n;
	struct ev v[MAX_EV];
};

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct log *l = priv;

	pthread_mutex_lock(&l->lock);
	if (l->n < MAX_EV)
		l->v[l->n++] = (struct ev){ inv->start, inv->end, inv->reason };
	pthread_mutex_unlock(&l->lock);
	sem_post(&l->sem);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

static void log_init(struct log *l)
{
	pthread_mutex_init(&l->lock, NULL);
	sem_init(&l->sem, 0, 0);
	l->n = 0;
}

/* what root tells nobody, and nobody's answers */
struct msg {
	pid_t pid;
	uint64_t interval_id;
	int err;
	unsigned int n;
	struct ev v[MAX_EV];
};

static void send_msg(int fd, const struct msg *m)
{
	CHECK(write(fd, m, sizeof(*m)) == sizeof(*m), "pipe write: %m");
}

static void recv_msg(int fd, struct msg *m)
{
	CHECK(read(fd, m, sizeof(*m)) == sizeof(*m), "pipe read: %m");
}

static void drop_privileges(void)
{
	CHECK(setgroups(0, NULL) == 0, "setgroups: %m");
	CHECK(setgid(NOBODY) == 0, "setgid: %m");
	CHECK(setuid(NOBODY) == 0, "setuid: %m");
	CHECK(getuid() == NOBODY && geteuid() == NOBODY, "still privileged");
}

static void child_main(int in_fd, int out_fd)
{
	struct um_interval *sub = NULL, *again = NULL;
	struct um_client *c, *c2;
	struct log l;
	struct msg m, a = { 0 };
	unsigned int want;

	alarm(harness_scaled_s(30));
	log_init(&l);
	drop_privileges();
	CHECK(um_connect(NULL, 0, &c) == 0, "nobody: connect");
	recv_msg(in_fd, &m);
	a.err = um_interval_subscribe(c, m.pid, m.interval_id, 0, &ops, &l, &sub);
	CHECK(sub == NULL || a.err == 0, "no interval on failure");
	send_msg(out_fd, &a); /* root checks -EPERM, then grants */

	recv_msg(in_fd, &m);
	a.err = um_interval_subscribe(c, m.pid, m.interval_id, 0, &ops, &l, &sub);
	send_msg(out_fd, &a);
	CHECK(a.err == 0, "subscribe after the grant: %s", strerror(-a.err));
	/* a subscriber may not grant */
	a.err = um_interval_grant(sub, 4321, true);
	send_msg(out_fd, &a);

	/* root writes and zaps; it tells how many invalidations it saw */
	recv_msg(in_fd, &m);
	want = m.n;
	for (unsigned int i = 0; i < want; i++)
		CHECK(harness_sem_wait_ms(&l.sem, 5000), "invalidation %u of %u", i, want);
	pthread_mutex_lock(&l.lock);
	a.n = l.n;
	memcpy(a.v, l.v, sizeof(a.v));
	pthread_mutex_unlock(&l.lock);
	send_msg(out_fd, &a);

	/* revoked: a new subscription is refused, the old one still hears */
	recv_msg(in_fd, &m);
	CHECK(um_connect(NULL, 0, &c2) == 0, "nobody: second connect");
	a.err = um_interval_subscribe(c2, m.pid, m.interval_id, 0, &ops, &l, &again);
	send_msg(out_fd, &a);
	um_disconnect(c2);
	recv_msg(in_fd, &m);
	CHECK(harness_sem_wait_ms(&l.sem, 5000), "the old subscription hears after revoke");
	pthread_mutex_lock(&l.lock);
	a.n = l.n;
	memcpy(a.v, l.v, sizeof(a.v));
	pthread_mutex_unlock(&l.lock);
	send_msg(out_fd, &a);

	um_interval_remove(sub);
	um_disconnect(c);
	_exit(0);
}

int main(void)
{
	static const char *const args[] = { "--mode", "0666", NULL };
	struct msg m = { 0 }, a;
	struct um_interval *iv;
	struct um_client *c;
	struct log l;
	int to, from, status, err;
	uint64_t seq;
	pid_t child;
	char *p;

	if (geteuid() != 0)
		harness_skip("needs root (a uid to drop to)");
	harness_start("test_grant", args);
	CHECK(chmod(harness_dir(), 0711) == 0, "chmod %s: %m", harness_dir());
	log_init(&l);
	CHECK(um_connect(NULL, 0, &c) == 0, "root: connect");
	p = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	memset(p, 'a', NPAGES * PAGE);
	CHECK(um_interval_insert(c, p, NPAGES * PAGE, 0, &ops, &l, &iv) == 0, "insert");
	child = harness_fork(child_main, &to, &from);

	m.pid = getpid();
	m.interval_id = um_interval_id(iv);
	send_msg(to, &m);
	recv_msg(from, &a);
	CHECK(a.err == -EACCES, "nobody subscribes to root's interval: %s, want EACCES",
	      strerror(-a.err));

	CHECK(um_interval_grant(iv, NOBODY, true) == 0, "grant nobody");
	send_msg(to, &m);
	recv_msg(from, &a);
	CHECK(a.err == 0, "granted subscribe: %s", strerror(-a.err));
	recv_msg(from, &a);
	CHECK(a.err == -EACCES, "a subscriber grants: %s, want EACCES", strerror(-a.err));

	/* four first writes and one zap: five invalidations, the writers held by nobody's acks */
	for (int i = 0; i < NPAGES; i++)
		p[i * PAGE] = 'b';
	CHECK(madvise(p + PAGE, PAGE, MADV_DONTNEED) == 0, "madvise: %m");
	for (int i = 0; i < NPAGES + 1; i++)
		CHECK(harness_sem_wait_ms(&l.sem, 5000), "root's invalidation %d", i);
	m.n = NPAGES + 1;
	send_msg(to, &m);
	recv_msg(from, &a);
	pthread_mutex_lock(&l.lock);
	CHECK(l.n == NPAGES + 1 && a.n == l.n, "root saw %u, nobody %u", l.n, a.n);
	for (unsigned int i = 0; i < l.n; i++) {
		int want = i < NPAGES ? UM_REASON_WRITE : UM_REASON_REMOVE;
		uint64_t start = (uintptr_t)p + (i < NPAGES ? i : 1) * PAGE;

		CHECK(l.v[i].reason == want && l.v[i].start == start && l.v[i].end == start + PAGE,
		      "root's event %u: %s %#llx", i, um_reason_str(l.v[i].reason),
		      (unsigned long long)l.v[i].start);
		CHECK(a.v[i].reason == l.v[i].reason && a.v[i].start == l.v[i].start &&
			      a.v[i].end == l.v[i].end,
		      "nobody's event %u: %s %#llx, root's %s %#llx", i,
		      um_reason_str(a.v[i].reason), (unsigned long long)a.v[i].start,
		      um_reason_str(l.v[i].reason), (unsigned long long)l.v[i].start);
	}
	pthread_mutex_unlock(&l.lock);

	CHECK(um_interval_grant(iv, NOBODY, false) == 0, "revoke");
	send_msg(to, &m);
	recv_msg(from, &a);
	CHECK(a.err == -EACCES, "subscribe after revoke: %s, want EACCES", strerror(-a.err));
	/*
	 * The zapped page is armed again once the REMOVE completed (the seq
	 * even again): its next write is an invalidation for both. A write
	 * before that lands inside the REMOVE, which covers it, and need not
	 * fault (on Debian's kernels it often did: their soft-dirty bit 55
	 * kept the daemon settling for up to 100 ms).
	 */
	CHECK(um_interval_read_begin(iv, &seq) == 0, "the REMOVE completes");
	p[PAGE] = 'c';
	CHECK(harness_sem_wait_ms(&l.sem, 5000), "root's invalidation after revoke");
	send_msg(to, &m);
	recv_msg(from, &a);
	CHECK(a.n == NPAGES + 2 && a.v[NPAGES + 1].reason == UM_REASON_WRITE &&
		      a.v[NPAGES + 1].start == (uintptr_t)p + PAGE,
	      "nobody's old subscription after revoke: %u events", a.n);

	CHECK(waitpid(child, &status, 0) == child, "waitpid: %m");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);

	/* 16 grants per interval; granting a granted uid again is no new grant */
	for (uid_t u = 2000; u < 2016; u++)
		CHECK(um_interval_grant(iv, u, true) == 0, "grant %u", (unsigned int)u);
	CHECK(um_interval_grant(iv, 2005, true) == 0, "grant again");
	err = um_interval_grant(iv, 2016, true);
	CHECK(err == -ENOSPC, "17th grant: %s, want ENOSPC", strerror(-err));
	CHECK(um_interval_grant(iv, 2003, false) == 0, "revoke one");
	CHECK(um_interval_grant(iv, 2016, true) == 0, "its place is free again");

	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	close(to);
	close(from);
	return harness_summary();
}
