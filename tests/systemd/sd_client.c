/* SPDX-License-Identifier: MIT */
/*
 * sd_client - a libumirror client for tests/kernels/systemd-workstation.sh,
 * which drives it against the umirrord that systemd runs (the default
 * socket, or $UMIRROR_SOCKET) and then stops, kills or hangs that daemon.
 *
 *   sd_client hold       mirror 16 pages of its own memory while a writer
 *                        thread keeps writing them and the main thread keeps
 *                        zapping (MADV_DONTNEED: re-armed, so writes keep
 *                        faulting) and snapshotting them. Prints "mirroring"
 *                        once the first snapshot is in, then waits for the
 *                        daemon to go away: the interval must be released
 *                        with -ENOTCONN and the writer must go on writing
 *                        (a writer held in a write fault when the daemon
 *                        left is resumed), every write landing.
 *   sd_client reconnect  as hold, then connects again (systemd restarts or
 *                        socket-activates a daemon meanwhile), inserts and
 *                        snapshots a new interval.
 *   sd_client garbage    a client that does not speak the protocol: sends
 *                        bytes that are no message and waits until the
 *                        daemon hangs up on it.
 *
 * Every wait has a generous bound (a hang is a failure, not a test of
 * speed). Exit 0 when everything held, 1 otherwise (reason on stdout).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <umirror.h>

#define PAGE 4096ul
#define NPAGES 16
#define RELEASE_WAIT_S 900 /* the test may stop the daemon much later */
#define WRITES_AFTER 2000  /* writes the writer must make after the release */
#define PROGRESS_WAIT_S 120
#define RECONNECT_WAIT_S 300

static char *buf;
static atomic_ulong writes;
static atomic_int write_errors;
static atomic_bool writer_stop;
static atomic_int release_error;
static atomic_ulong invalidations;
static sem_t released;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	atomic_fetch_add(&invalidations, 1);
}

static void on_release(struct um_interval *iv, int error, void *priv)
{
	atomic_store(&release_error, error);
	sem_post(&released);
}

static const struct um_interval_ops ops = {
	.invalidate = on_invalidate,
	.release = on_release,
};

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* One word per page, each write read back: a write that did not land is
 * an error, a write that never returns is the hang the test looks for. */
static void *writer(void *arg)
{
	for (unsigned long gen = 1; !atomic_load(&writer_stop); gen++) {
		for (unsigned int i = 0; i < NPAGES; i++) {
			volatile uint64_t *w = (volatile uint64_t *)(buf + i * PAGE);

			*w = gen << 8 | i;
			if (*w != (gen << 8 | i))
				atomic_fetch_add(&write_errors, 1);
			atomic_fetch_add(&writes, 1);
		}
		pause_ms(1);
	}
	return NULL;
}

static int connect_retry(struct um_client **c, int wait_s)
{
	time_t end = time(NULL) + wait_s;
	int ret;

	/* a daemon being (re)started answers late: -ETIMEDOUT, -ECONNREFUSED */
	while ((ret = um_connect(NULL, 0, c)) < 0 && time(NULL) < end)
		pause_ms(200);
	return ret;
}

/* Insert over buf and snapshot it until the first snapshot is in. */
static int mirror_once(struct um_client *c, struct um_interval **iv)
{
	uint64_t pfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + NPAGES * PAGE,
			      .pfns = pfns };
	long ret;

	ret = um_interval_insert(c, buf, NPAGES * PAGE, 0, &ops, NULL, iv);
	if (ret < 0) {
		printf("insert: %s\n", strerror(-ret));
		return ret;
	}
	ret = um_range_register(&r, *iv);
	while (ret == 0 || ret == -EAGAIN) {
		ret = um_interval_read_begin(*iv, &r.notifier_seq);
		if (ret == 0)
			ret = um_range_snapshot(&r);
		if (ret > 0) {
			um_range_unregister(&r);
			return 0;
		}
	}
	printf("snapshot: %s\n", strerror((int)-ret));
	um_range_unregister(&r);
	return ret;
}

/* Zap and snapshot until the interval is released (or the bound runs out). */
static void churn(struct um_interval *iv)
{
	uint64_t pfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)buf,
			      .end = (uintptr_t)buf + NPAGES * PAGE,
			      .pfns = pfns };
	time_t end = time(NULL) + RELEASE_WAIT_S;
	unsigned int round = 0;

	if (um_range_register(&r, iv) < 0)
		return;
	while (time(NULL) < end && sem_trywait(&released) < 0) {
		/* the first half of the pages, every other round */
		if (round++ % 2 == 0)
			madvise(buf, NPAGES / 2 * PAGE, MADV_DONTNEED);
		if (um_interval_read_begin(iv, &r.notifier_seq) == 0)
			um_range_snapshot(&r);
		pause_ms(20);
	}
	sem_post(&released); /* taken by the loop: give it back */
	um_range_unregister(&r);
}

static int wait_writer_progress(void)
{
	unsigned long from = atomic_load(&writes);
	time_t end = time(NULL) + PROGRESS_WAIT_S;

	while (atomic_load(&writes) < from + WRITES_AFTER) {
		if (time(NULL) >= end) {
			printf("FAIL: the writer is stuck: %lu writes in %d s after the release\n",
			       atomic_load(&writes) - from, PROGRESS_WAIT_S);
			return -1;
		}
		pause_ms(10);
	}
	printf("writer went on: %d writes after the release\n", WRITES_AFTER);
	return 0;
}

static int garbage(void)
{
	const char *path = getenv("UMIRROR_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 120 };
	char junk[7] = "garbage", rbuf[256];
	ssize_t n;
	int fd;

	if (!path || !*path)
		path = "/run/umirror/umirrord.sock";
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("FAIL: connect %s: %m\n", path);
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, junk, sizeof(junk), MSG_NOSIGNAL) != sizeof(junk)) {
		printf("FAIL: send: %m\n");
		return 1;
	}
	/* whatever the daemon answers, it must end with a hang-up */
	while ((n = recv(fd, rbuf, sizeof(rbuf), 0)) > 0)
		;
	if (n < 0 && errno != ECONNRESET) {
		printf("FAIL: the daemon did not hang up: %m\n");
		return 1;
	}
	printf("the daemon hung up on the garbage\n");
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct um_client *c = NULL;
	struct um_interval *iv = NULL;
	pthread_t wt;
	int ret, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "garbage"))
		return garbage();
	if (strcmp(mode, "hold") && strcmp(mode, "reconnect")) {
		fprintf(stderr, "usage: sd_client hold|reconnect|garbage\n");
		return 2;
	}
	sem_init(&released, 0, 0);
	buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 1, NPAGES * PAGE);
	ret = connect_retry(&c, 60);
	if (ret < 0) {
		printf("FAIL: connect: %s\n", strerror(-ret));
		return 1;
	}
	if (mirror_once(c, &iv) < 0)
		return 1;
	pthread_create(&wt, NULL, writer, NULL);
	printf("mirroring pid %d\n", (int)getpid());

	churn(iv);
	if (sem_trywait(&released) < 0) {
		printf("FAIL: no release within %d s\n", RELEASE_WAIT_S);
		failed = 1;
	} else if (atomic_load(&release_error) != -ENOTCONN) {
		printf("FAIL: released with %s, want ENOTCONN\n",
		       strerror(-atomic_load(&release_error)));
		failed = 1;
	} else {
		printf("released: %s (%lu invalidations before)\n", strerror(ENOTCONN),
		       atomic_load(&invalidations));
	}
	if (wait_writer_progress() < 0)
		failed = 1;
	atomic_store(&writer_stop, true);
	pthread_join(wt, NULL);
	if (atomic_load(&write_errors)) {
		printf("FAIL: %d writes did not land\n", atomic_load(&write_errors));
		failed = 1;
	}
	um_interval_remove(iv);
	um_disconnect(c);

	if (!failed && !strcmp(mode, "reconnect")) {
		ret = connect_retry(&c, RECONNECT_WAIT_S);
		if (ret < 0) {
			printf("FAIL: reconnect: %s\n", strerror(-ret));
			return 1;
		}
		if (mirror_once(c, &iv) < 0) {
			printf("FAIL: mirroring after the reconnect\n");
			return 1;
		}
		printf("reconnected and mirroring again\n");
		um_interval_remove(iv);
		um_disconnect(c);
	}
	printf("%s\n", failed ? "FAILED" : "done");
	return failed;
}
