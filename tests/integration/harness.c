/* SPDX-License-Identifier: MIT */
/*
 * harness.c - run a real umirrord for one test binary and clean up after it
 * whatever happens: normal exit, CHECK failure, crash or watchdog.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UMIRRORD_PATH
#error "UMIRRORD_PATH must name the daemon binary"
#endif

#define WATCHDOG_S 60
#define START_TIMEOUT_MS 5000
#define MAX_EXTRA_ARGS 8
#define MAX_WRAPPER_ARGS 16

static const char *test_name = "test";
static char tmp_dir[64];
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static const char *extra[MAX_EXTRA_ARGS + 1];
static pid_t harness_pid; /* the test process; children never clean up */
static volatile pid_t daemon_pid;
static atomic_ulong checks;
/* files tests create in tmp_dir, so a signal handler can remove them too */
#define MAX_PATHS 8
static char paths[MAX_PATHS][160];
static volatile int npaths;

uint64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned int harness_scaled_s(unsigned int s)
{
	const char *v = getenv("UMIRROR_TEST_TIMEOUT_SCALE");
	char *end;
	double f;

	if (!v || !*v)
		return s;
	f = strtod(v, &end);
	/* a bad value must not shorten anything */
	if (*end || !(f >= 1) || f > 1000)
		return s;
	return (unsigned int)(s * f + 0.5);
}

bool harness_sem_wait_ms(sem_t *sem, unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (sem_timedwait(sem, &ts) < 0)
		if (errno != EINTR)
			return false;
	return true;
}

static void gate_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	struct harness_gate *g = priv;

	atomic_store(&g->done, false);
	atomic_fetch_add(&g->ninv, 1);
	sem_post(&g->entered);
	/* bounded: never outlive the test */
	harness_sem_wait_ms(&g->go, atomic_load(&g->hold_ms));
	atomic_store(&g->done, true);
}

static void gate_release(struct um_interval *iv, int error, void *priv)
{
	struct harness_gate *g = priv;

	atomic_store(&g->release_error, error);
	atomic_fetch_add(&g->nrel, 1);
	sem_post(&g->released);
}

const struct um_interval_ops harness_gate_ops = { .invalidate = gate_invalidate,
						  .release = gate_release };

void harness_gate_init(struct harness_gate *g, unsigned int hold_ms)
{
	sem_init(&g->entered, 0, 0);
	sem_init(&g->go, 0, 0);
	sem_init(&g->released, 0, 0);
	atomic_init(&g->hold_ms, hold_ms);
	atomic_init(&g->ninv, 0);
	atomic_init(&g->nrel, 0);
	atomic_init(&g->release_error, 0);
	atomic_init(&g->done, false);
}

static void *writer_main(void *arg)
{
	struct harness_writer *w = arg;

	memset(w->addr, w->byte, w->len);
	sem_post(&w->done);
	return NULL;
}

void harness_writer_start(struct harness_writer *w, void *addr, size_t len, char byte)
{
	w->addr = addr;
	w->len = len;
	w->byte = byte;
	sem_init(&w->done, 0, 0);
	CHECK(pthread_create(&w->thread, NULL, writer_main, w) == 0, "pthread_create");
}

void harness_writer_join(struct harness_writer *w)
{
	pthread_join(w->thread, NULL);
	sem_destroy(&w->done);
}

pid_t harness_fork(void (*child_main)(int in_fd, int out_fd), int *to_child, int *from_child)
{
	int down[2], up[2];
	pid_t pid;

	CHECK(pipe2(down, O_CLOEXEC) == 0 && pipe2(up, O_CLOEXEC) == 0, "pipe: %m");
	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		child_main(down[0], up[1]);
		_exit(1); /* child_main must not return */
	}
	close(down[0]);
	close(up[1]);
	*to_child = down[1];
	*from_child = up[0];
	return pid;
}

const char *harness_dir(void)
{
	return tmp_dir;
}

const char *harness_socket(void)
{
	return sock_path;
}

pid_t harness_daemon_pid(void)
{
	return daemon_pid;
}

void harness_pass(void)
{
	atomic_fetch_add(&checks, 1);
}

/* Async-signal-safe: only kill() and waitpid(). */
static void stop_daemon_now(void)
{
	pid_t pid = daemon_pid;

	if (pid > 0 && getpid() == harness_pid) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		daemon_pid = 0;
	}
}

const char *harness_path(const char *name)
{
	int n = npaths;

	CHECK(n < MAX_PATHS, "too many harness paths");
	snprintf(paths[n], sizeof(paths[n]), "%s/%s", tmp_dir, name);
	npaths = n + 1;
	return paths[n];
}

/* Async-signal-safe: unlink() and rmdir() of names known in advance. */
static void remove_known_paths(void)
{
	if (!tmp_dir[0] || getpid() != harness_pid)
		return;
	for (int i = 0; i < npaths; i++)
		unlink(paths[i]);
	unlink(sock_path);
	rmdir(tmp_dir);
}

static void remove_tmp_dir(void)
{
	DIR *d;
	struct dirent *e;

	if (!tmp_dir[0] || getpid() != harness_pid)
		return;
	d = opendir(tmp_dir);
	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(tmp_dir);
}

static void at_exit(void)
{
	stop_daemon_now();
	remove_tmp_dir();
}

static void on_fatal(int sig)
{
	static const char msg[] = "harness: fatal signal or watchdog, stopping daemon\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more we can do from a signal handler */
	}
	stop_daemon_now();
	remove_known_paths();
	signal(sig, SIG_DFL);
	if (sig == SIGALRM)
		_exit(1);
	raise(sig);
}

void harness_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: FAIL %s:%d: CHECK(%s): ", test_name, file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	if (getpid() != harness_pid)
		_exit(1); /* a forked helper: leave the daemon to the parent */
	exit(1);
}

void harness_skip(const char *why)
{
	printf("%s: SKIP: %s\n", test_name, why);
	fflush(stdout);
	exit(SKIP);
}

static bool daemon_accepts(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return ret == 0;
}

/*
 * $UMIRRORD_WRAPPER: a command prefix for the daemon, split at spaces (e.g.
 * a valgrind wrapper script). It must exec the daemon in the same process:
 * the tests signal the pid they started.
 */
static int wrapper_argv(const char **argv, int max)
{
	static char buf[512];
	const char *w = getenv("UMIRRORD_WRAPPER");
	int n = 0;

	if (!w || !*w)
		return 0;
	CHECK(strlen(w) < sizeof(buf), "UMIRRORD_WRAPPER is too long");
	snprintf(buf, sizeof(buf), "%s", w);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		CHECK(n < max, "UMIRRORD_WRAPPER has more than %d words", max);
		argv[n++] = t;
	}
	return n;
}

static void spawn_daemon(void)
{
	const char *argv[MAX_WRAPPER_ARGS + 4 + MAX_EXTRA_ARGS + 1];
	uint64_t deadline;
	int n, status;
	pid_t pid;

	n = wrapper_argv(argv, MAX_WRAPPER_ARGS);
	argv[n++] = UMIRRORD_PATH;
	argv[n++] = "--socket";
	argv[n++] = sock_path;
	if (getenv("UMIRROR_IT_VERBOSE"))
		argv[n++] = "--verbose";
	for (int i = 0; extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "harness: exec %s: %m\n", argv[0]);
		_exit(127);
	}
	daemon_pid = pid;

	deadline = harness_now_ms() + (uint64_t)harness_scaled_s(START_TIMEOUT_MS / 1000) * 1000;
	while (!daemon_accepts()) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			daemon_pid = 0;
			harness_fail(__FILE__, __LINE__, "daemon running",
				     "umirrord exited during start-up (status 0x%x)", status);
		}
		if (harness_now_ms() > deadline)
			harness_fail(__FILE__, __LINE__, "daemon accepts",
				     "umirrord did not accept on %s within %u s", sock_path,
				     harness_scaled_s(START_TIMEOUT_MS / 1000));
		usleep(10000);
	}
}

void harness_start(const char *name, const char *const *extra_args)
{
	struct sigaction sa = { .sa_handler = on_fatal };
	static const int fatal[] = { SIGALRM, SIGSEGV, SIGBUS, SIGABRT, SIGFPE,
				     SIGILL,  SIGTERM, SIGINT, SIGHUP };
	int n = 0;

	test_name = name;
	harness_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (extra_args)
		for (; extra_args[n] && n < MAX_EXTRA_ARGS; n++)
			extra[n] = extra_args[n];
	extra[n] = NULL;

	if (access("/proc/self/pagemap", R_OK) < 0)
		harness_skip("/proc/self/pagemap is not readable");

	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/umirror-it-XXXXXX");
	CHECK(mkdtemp(tmp_dir), "mkdtemp: %m");
	snprintf(sock_path, sizeof(sock_path), "%s/umirrord.sock", tmp_dir);
	CHECK(setenv("UMIRROR_SOCKET", sock_path, 1) == 0, "setenv: %m");

	atexit(at_exit);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	/* a peer closing its socket must not kill the test */
	signal(SIGPIPE, SIG_IGN);
	alarm(harness_scaled_s(WATCHDOG_S));

	spawn_daemon();
}

int harness_kill_daemon(int sig)
{
	pid_t pid = daemon_pid;
	uint64_t deadline = harness_now_ms() + 5000;
	int status = -1;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (harness_now_ms() > deadline) {
			fprintf(stderr, "%s: daemon ignored signal %d, SIGKILL\n", test_name, sig);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(5000);
	}
	daemon_pid = 0;
	return status;
}

void harness_restart_daemon(void)
{
	if (daemon_pid > 0)
		harness_kill_daemon(SIGKILL);
	spawn_daemon();
}

uint64_t harness_pagemap(const void *addr)
{
	static int fd = -1;
	uint64_t e;

	if (fd < 0)
		fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open pagemap: %m");
	CHECK(pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PAGE * sizeof(e))) ==
		      (ssize_t)sizeof(e),
	      "pread pagemap: %m");
	return e;
}

uint64_t harness_pagemap_of(pid_t pid, uint64_t addr)
{
	char path[64];
	uint64_t e = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %m", path);
	CHECK(pread(fd, &e, sizeof(e), (off_t)(addr / PAGE * sizeof(e))) == sizeof(e), "pread: %m");
	close(fd);
	return e;
}

bool harness_thp_possible(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return !strstr(buf, "[never]");
}

int harness_wait_even(struct um_interval *iv, uint64_t *seq)
{
	int ret;

	for (int i = 0; i < 10; i++) {
		ret = um_interval_read_begin(iv, seq);
		if (ret != -ETIMEDOUT)
			break;
	}
	return ret;
}

int harness_summary(void)
{
	int status;

	if (daemon_pid > 0) {
		status = harness_kill_daemon(SIGTERM);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "umirrord did not exit 0 on SIGTERM (status 0x%x)", status);
		CHECK(access(sock_path, F_OK) < 0, "umirrord left its socket %s behind", sock_path);
	}
	printf("%s: PASS (%lu checks)\n", test_name, (unsigned long)atomic_load(&checks));
	return 0;
}

void *harness_map_anon(size_t npages, int prot)
{
	void *p = mmap(NULL, npages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap: %m");
	CHECK(madvise(p, npages * PAGE, MADV_NOHUGEPAGE) == 0, "madvise: %m");
	return p;
}

uint64_t harness_zero_pfn(void)
{
	volatile char *z = harness_map_anon(2, PROT_READ | PROT_WRITE);
	uint64_t a, b;

	(void)z[0];
	(void)z[PAGE];
	a = harness_pagemap((char *)z);
	b = harness_pagemap((char *)z + PAGE);
	CHECK((a & PM_PRESENT) && (b & PM_PRESENT), "read-touched pages present");
	CHECK((a & PM_PFN_MASK) && (a & PM_PFN_MASK) == (b & PM_PFN_MASK),
	      "two read-only touched pages share the zero page (%#llx %#llx)",
	      (unsigned long long)a, (unsigned long long)b);
	CHECK(!(a & PM_MMAP_EXCLUSIVE), "zero page is not exclusive");
	munmap((void *)z, 2 * PAGE);
	return a & PM_PFN_MASK;
}

uint64_t harness_kfeatures(struct um_client *c)
{
	struct um_status st = UM_STATUS_INIT;

	CHECK(um_status(c, &st) == 0, "status");
	return st.kfeatures;
}

long harness_snapshot(struct um_range *range)
{
	long ret = -EAGAIN;

	for (int i = 0; i < 5 && ret == -EAGAIN; i++) {
		ret = um_range_snapshot(range);
		if (ret == -EAGAIN)
			CHECK(um_range_wait_until_valid(range, 1000) == 0, "wait_until_valid");
	}
	return ret;
}
