/* SPDX-License-Identifier: MIT */
/*
 * trap_serve.c - the thread that serves handed-over seccomp listeners
 * (see trap_serve.h).
 *
 * Why a thread and not the loop: a notification whose task is killed
 * between our poll and our SECCOMP_IOCTL_NOTIF_RECV is withdrawn, and the
 * receive then waits for the next one, O_NONBLOCK or not. Here such a
 * receive is cut short by a per-thread timer signal (the handler does
 * nothing; no SA_RESTART, so the ioctl returns EINTR) and the thread
 * goes back to poll, where a filter without users shows POLLHUP.
 */
#include "trap_serve.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "umirror_proto.h"

#define SERVE_MAX 256	/* listeners served at once; more are closed */
#define RECV_CUT_MS 100 /* a receive that waits this long waits for nothing */
#define TAKE_PROBE (UMP_TRAP_STATE_HELD + 1)

struct take {
	int listener, state;
};

static struct {
	bool running;
	sem_t started;
	int pipe_r, pipe_w;
	timer_t timer;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	size_t req_size, resp_size;
	int fds[SERVE_MAX];
	unsigned int n;
} S = { .pipe_r = -1, .pipe_w = -1 };

static int cut_signal(void)
{
	return SIGRTMIN + 3;
}

static void on_cut(int sig)
{
	(void)sig;
}

bool trap_serve_running(void)
{
	return S.running;
}

bool trap_serve_is_listener(int fd)
{
	static const char want[] = "anon_inode:seccomp notify";
	char path[64], link[sizeof(want) + 1];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	return n == (ssize_t)sizeof(want) - 1 && !memcmp(link, want, sizeof(want) - 1);
}

/* CONTINUE for @id; ENOENT (gone or answered) and EINPROGRESS (not yet received) are fine */
static void answer(int fd, uint64_t id)
{
	memset(S.resp, 0, S.resp_size);
	S.resp->id = id;
	S.resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, S.resp);
}

/*
 * The library's thread died with these received and maybe unanswered:
 * nobody else can answer them (no second receive of one notification).
 * Its last id may have been followed by one it received and did not get
 * to record: ids grow by one per notification, so the next few cover it
 * (those not received yet answer EINPROGRESS and are received below).
 */
static void answer_orphans(int fd, int state)
{
	struct ump_trap_state st;

	if (state < 0)
		return;
	if (pread(state, &st, sizeof(st), 0) != (ssize_t)sizeof(st) ||
	    st.magic != UMP_TRAP_STATE_MAGIC)
		return;
	for (unsigned int i = 0; i < UMP_TRAP_STATE_HELD; i++)
		if (st.held[i])
			answer(fd, st.held[i]);
	if (st.last)
		for (uint64_t k = 0; k <= TAKE_PROBE; k++)
			answer(fd, st.last + k);
}

static void take_new(void)
{
	struct take t;

	while (read(S.pipe_r, &t, sizeof(t)) == (ssize_t)sizeof(t)) {
		answer_orphans(t.listener, t.state);
		if (t.state >= 0)
			close(t.state);
		if (S.n == SERVE_MAX) {
			close(t.listener); /* its users' calls fail with ENOSYS */
			continue;
		}
		S.fds[S.n++] = t.listener;
	}
}

static void cut_after(unsigned int ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000 } };

	timer_settime(S.timer, 0, &its, NULL);
}

static void receive_one(int fd)
{
	int r;

	memset(S.req, 0, S.req_size);
	cut_after(RECV_CUT_MS);
	r = ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, S.req);
	cut_after(0);
	/* EINTR: cut short (the notification vanished); ENOENT: its task died */
	if (r == 0)
		answer(fd, S.req->id);
}

/* the thread's own timer, aimed at it alone, and the cut signal let in */
static int serve_thread_setup(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = cut_signal() };
	sigset_t cut;

	/* glibc 2.36 lacks the name sigev_notify_thread_id */
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &S.timer) < 0)
		return -errno;
	sigemptyset(&cut);
	sigaddset(&cut, cut_signal());
	return -pthread_sigmask(SIG_UNBLOCK, &cut, NULL);
}

static void *serve_thread(void *arg)
{
	static struct pollfd pf[SERVE_MAX + 1];
	int *setup = arg, r = serve_thread_setup();

	/* @setup is on the starter's stack: not to be touched after the post */
	*setup = r;
	sem_post(&S.started);
	if (r)
		return NULL;
	for (;;) {
		unsigned int n = S.n;

		pf[0] = (struct pollfd){ .fd = S.pipe_r, .events = POLLIN };
		for (unsigned int i = 0; i < n; i++)
			pf[i + 1] = (struct pollfd){ .fd = S.fds[i], .events = POLLIN };
		if (poll(pf, n + 1, -1) < 0)
			continue;
		/* from the top down, so that removing one moves none not yet seen */
		for (unsigned int i = n; i-- > 0;) {
			short ev = pf[i + 1].revents;

			if (ev & POLLIN) {
				receive_one(S.fds[i]);
			} else if (ev & (POLLHUP | POLLERR | POLLNVAL)) {
				/* no task uses the filter any more */
				close(S.fds[i]);
				S.fds[i] = S.fds[--S.n];
			}
		}
		if (pf[0].revents & POLLIN)
			take_new();
	}
	return NULL;
}

int trap_serve_init(void)
{
	struct sigaction sa = { .sa_handler = on_cut }; /* no SA_RESTART: the receive ends */
	struct seccomp_notif_sizes sz;
	sigset_t all, old;
	pthread_t th;
	int p[2], r, setup = 0;

	/*
	 * The kernel copies its own sizes of the two structs; without the
	 * query (valgrind does not know seccomp(2)) a page each is more than
	 * any kernel's.
	 */
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		sz.seccomp_notif = sz.seccomp_notif_resp = 4096;
	S.req_size = sz.seccomp_notif > sizeof(*S.req) ? sz.seccomp_notif : sizeof(*S.req);
	S.resp_size =
		sz.seccomp_notif_resp > sizeof(*S.resp) ? sz.seccomp_notif_resp : sizeof(*S.resp);
	S.req = calloc(1, S.req_size);
	S.resp = calloc(1, S.resp_size);
	if (!S.req || !S.resp)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	S.pipe_r = p[0];
	S.pipe_w = p[1];
	if (sigaction(cut_signal(), &sa, NULL) < 0)
		return -errno;
	/*
	 * Every signal blocked in the thread (the loop's are the loop's) but
	 * the cut; it makes its own timer (SIGEV_THREAD_ID needs its tid)
	 * before the sandbox, so wait for it.
	 */
	sem_init(&S.started, 0, 0);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&th, NULL, serve_thread, &setup);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return r;
	while (sem_wait(&S.started) < 0)
		;
	pthread_detach(th);
	if (setup)
		return setup;
	S.running = true;
	return 0;
}

int trap_serve_take(int listener, int state)
{
	struct take t = { listener, state };

	if (S.running && write(S.pipe_w, &t, sizeof(t)) == (ssize_t)sizeof(t))
		return 0;
	close(listener);
	if (state >= 0)
		close(state);
	return -EAGAIN;
}
