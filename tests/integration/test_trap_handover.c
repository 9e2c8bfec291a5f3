/* SPDX-License-Identifier: MIT */
/*
 * test_trap_handover - a trap-mode process hands the daemon a copy of its
 * seccomp listener, which the daemon serves once the process is gone
 * (docs/SEMANTICS.md, "Trap mode"):
 * - a trap-mode process execs a program that maps (its dynamic loader's
 *   mmap MAP_FIXED), mprotects and unmaps memory: it starts and exits 0;
 * - a child that outlives its trap-mode parent: its mprotect, munmap,
 *   mmap MAP_FIXED and MADV_DONTNEED succeed;
 * - the daemon drops its copy of the listener once no task uses the
 *   filter (its /proc/PID/fd shows no "seccomp notify" left), also when
 *   the last users were killed in the middle of trapped calls (a receive
 *   that would wait for a vanished notification must not keep it);
 * - with the daemon SIGKILLed, a trap-mode process, its children and
 *   their calls keep working (the library's thread answers).
 */
#include "harness.h"
#include "umirror.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* LeakSanitizer stops the trap thread too (see test_trap.c) */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

/* mmap, mmap MAP_FIXED over it, mprotect, MADV_DONTNEED, munmap: 0 or errno */
static int map_calls(void)
{
	char *m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return errno;
	m[0] = 1;
	if (mmap(m + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) != m + PAGE)
		return errno;
	if (mprotect(m, PAGE, PROT_READ))
		return errno;
	if (madvise(m + 2 * PAGE, PAGE, MADV_DONTNEED))
		return errno;
	if (munmap(m, 4 * PAGE))
		return errno;
	return 0;
}

/* how many seccomp listeners the daemon holds */
static int daemon_listeners(void)
{
	char dir[64], path[320], link[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)harness_daemon_pid());
	d = opendir(dir);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		ssize_t l;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l < 0)
			continue;
		link[l] = 0;
		n += !strcmp(link, "anon_inode:seccomp notify");
	}
	closedir(d);
	return n;
}

/* the daemon holds @want listeners, within a give-up bound */
static bool listeners_become(int want)
{
	uint64_t end = harness_now_ms() + harness_scaled_s(20) * 1000ull;

	while (daemon_listeners() != want) {
		if (harness_now_ms() > end)
			return false;
		usleep(10000);
	}
	return true;
}

/* wait for @pid; a hung one is killed after a give-up bound */
static int wait_exit(pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), status = -1;
	struct pollfd pf = { .fd = pfd, .events = POLLIN };

	if (pfd >= 0 && poll(&pf, 1, (int)harness_scaled_s(20) * 1000) != 1)
		kill(pid, SIGKILL);
	if (pfd >= 0)
		close(pfd);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

static void connect_trap_or_exit(void)
{
	struct um_client *c;
	int r = um_connect(NULL, UM_CONNECT_TRAP_VMA, &c);

	if (r)
		_exit(r == -EOPNOTSUPP ? 77 : 11);
}

/* a trap-mode process that execs this program with "exec-child" */
static void stage_exec(void)
{
	char self[4096];
	pid_t o;
	int status;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	CHECK(n > 0, "readlink /proc/self/exe: %m");
	self[n] = 0;
	o = fork();
	CHECK(o >= 0, "fork: %m");
	if (o == 0) {
		connect_trap_or_exit();
		execl(self, self, "exec-child", (char *)NULL);
		_exit(12);
	}
	status = wait_exit(o);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		harness_skip("trap mode: no seccomp user notification with TSYNC_ESRCH here");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a trap-mode process exec'd a program that maps, mprotects and unmaps memory: "
	      "status 0x%x (exit %d), want exit 0",
	      status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	CHECK(listeners_become(0),
	      "the daemon dropped the listener once the exec'd program "
	      "exited (holds %d)",
	      daemon_listeners());
}

/*
 * O (trap mode) forks G and exits; G, once O is gone, makes trapped
 * calls and writes what they returned to @out.
 */
static void stage_orphan(void)
{
	int fds[2], gate[2], v = -1, status;
	pid_t o, g = 0;

	CHECK(pipe(fds) == 0 && pipe(gate) == 0, "pipe: %m");
	o = fork();
	CHECK(o >= 0, "fork: %m");
	if (o == 0) {
		close(fds[0]);
		close(gate[1]);
		connect_trap_or_exit();
		g = fork();
		if (g < 0)
			_exit(13);
		if (g == 0) {
			char b;

			/* EOF: O and the test's copy are gone */
			(void)!read(gate[0], &b, 1);
			v = map_calls();
			(void)!write(fds[1], &v, sizeof(v));
			_exit(0);
		}
		(void)!write(fds[1], &g, sizeof(g));
		_exit(0);
	}
	close(fds[1]);
	close(gate[0]);
	status = wait_exit(o);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the trap-mode parent exited (0x%x)",
	      status);
	CHECK(read(fds[0], &g, sizeof(g)) == sizeof(g), "read the child's pid: %m");
	/* the handover is sent before um_connect() returns, read by the daemon a bit later */
	CHECK(listeners_become(1), "the daemon holds the listener while the child lives (%d)",
	      daemon_listeners());
	close(gate[1]); /* go */
	status = wait_exit(g);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child exited (0x%x)", status);
	CHECK(read(fds[0], &v, sizeof(v)) == sizeof(v), "read the child's result: %m");
	CHECK(v == 0,
	      "a child that outlived its trap-mode parent: mmap MAP_FIXED, mprotect, "
	      "MADV_DONTNEED, munmap returned %d (%s), want 0",
	      v, strerror(v));
	close(fds[0]);
	CHECK(listeners_become(0),
	      "the daemon dropped the listener once the child was reaped "
	      "(holds %d)",
	      daemon_listeners());
}

#define KILL_ROUNDS 8
#define KILL_AFTER 500 /* calls the daemon answered before the kill */

/* the orphan's threads: trapped calls without end, counted */
static atomic_ulong *calls;

static void *churn(void *arg)
{
	char *m = arg;

	for (;;) {
		mprotect(m, PAGE, PROT_READ);
		mprotect(m, PAGE, PROT_READ | PROT_WRITE);
		atomic_fetch_add(calls, 1);
	}
	return NULL;
}

/* "churn FD": the exec'd orphan; the counter is the memfd FD, shared with the test */
static int churn_main(int fd)
{
	pthread_t t;

	calls = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (calls == MAP_FAILED)
		return 14;
	for (int i = 0; i < 4; i++) {
		char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (m == MAP_FAILED || pthread_create(&t, NULL, churn, m))
			return 15;
	}
	pause();
	return 0;
}

/*
 * O (trap mode) forks G, which execs this program ("churn"), and exits;
 * G's threads churn trapped calls after O's exit (the daemon answers); G
 * is SIGKILLed in the middle: notifications vanish between the daemon's
 * poll and its receive. The daemon must still let the listener go. (G
 * execs rather than starting threads in a fork of O: a lock another
 * thread of O held at the fork, a sanitizer allocator's, would stay held
 * in G.)
 */
static void stage_killed(const char *self)
{
	int fds[2], status, cfd;
	unsigned long start;
	pid_t o, g = 0;
	bool moved;

	cfd = memfd_create("calls", 0); /* not close-on-exec: G maps it */
	CHECK(cfd >= 0 && ftruncate(cfd, PAGE) == 0, "memfd: %m");
	calls = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
	CHECK(calls != MAP_FAILED, "mmap: %m");
	CHECK(pipe(fds) == 0, "pipe: %m");
	o = fork();
	CHECK(o >= 0, "fork: %m");
	if (o == 0) {
		close(fds[0]);
		connect_trap_or_exit();
		g = fork();
		if (g < 0)
			_exit(13);
		if (g == 0) {
			char arg[16];

			snprintf(arg, sizeof(arg), "%d", cfd);
			execl(self, self, "churn", arg, (char *)NULL);
			_exit(16);
		}
		(void)!write(fds[1], &g, sizeof(g));
		_exit(0);
	}
	close(fds[1]);
	status = wait_exit(o);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the trap-mode parent exited (0x%x)",
	      status);
	CHECK(read(fds[0], &g, sizeof(g)) == sizeof(g), "read the child's pid: %m");
	close(fds[0]);
	/* calls answered by the daemon: O is gone */
	start = atomic_load(calls);
	{
		uint64_t end = harness_now_ms() + harness_scaled_s(20) * 1000ull;

		while (atomic_load(calls) < start + KILL_AFTER && harness_now_ms() < end)
			usleep(1000);
	}
	moved = atomic_load(calls) >= start + KILL_AFTER;
	kill(g, SIGKILL); /* also when the check below fails: leave nothing behind */
	status = wait_exit(g);
	CHECK(moved, "the orphan's threads made trapped calls after its parent exited (%lu)",
	      atomic_load(calls) - start);
	CHECK(WIFSIGNALED(status), "the orphan was killed (0x%x)", status);
	CHECK(listeners_become(0),
	      "the daemon dropped the listener after its users were killed "
	      "mid-call (holds %d)",
	      daemon_listeners());
	munmap(calls, PAGE);
	close(cfd);
}

/* the daemon SIGKILLed: this trap-mode process and a child keep working */
static void stage_daemon_killed(void)
{
	struct um_client *c;
	int r, status;
	pid_t child;
	char *m;

	r = um_connect(NULL, UM_CONNECT_TRAP_VMA, &c);
	CHECK(r == 0, "connect in trap mode: %s", strerror(-r));
	m = harness_map_anon(4, PROT_READ | PROT_WRITE);
	status = harness_kill_daemon(SIGKILL);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "daemon killed (0x%x)", status);
	CHECK(map_calls() == 0, "our trapped calls work with the daemon dead");
	child = fork();
	CHECK(child >= 0, "fork: %m");
	if (child == 0)
		_exit(map_calls() == 0 ? 0 : 1);
	status = wait_exit(child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a child's trapped calls work with the daemon dead (0x%x)", status);
	CHECK(mprotect(m, PAGE, PROT_READ) == 0 && munmap(m, 4 * PAGE) == 0,
	      "mprotect, munmap with the daemon dead: %m");
	um_disconnect(c);
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n;

	if (argc == 2 && !strcmp(argv[1], "exec-child"))
		return map_calls() == 0 ? 0 : 3;
	if (argc == 3 && !strcmp(argv[1], "churn"))
		return churn_main(atoi(argv[2]));
	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_trap_handover", NULL);
	/* orphans come to us, so that we reap them and see how they ended */
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER: %m");
	stage_exec();
	stage_orphan();
	/* the vanishing takes a narrow window: several rounds */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0, "readlink /proc/self/exe: %m");
	self[n] = 0;
	for (int i = 0; i < KILL_ROUNDS; i++)
		stage_killed(self);
	stage_daemon_killed();
	return harness_summary();
}
