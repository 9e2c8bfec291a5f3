/* SPDX-License-Identifier: MIT */
/*
 * test_unprivileged - a real unprivileged client (uid/gid nobody): it can
 * connect to a 0666 socket, its library falls back to UFFD_USER_MODE_ONLY,
 * it sees PFN 0 where root's pagemap shows real PFNs, its writes are
 * mirrored, a read(2) into protected memory fails with EFAULT, it may not
 * subscribe to, snapshot or watch root's process (-EACCES, not the -EPERM
 * of a PROT_NONE page), and its third interval hits
 * --max-intervals-per-uid 2 (-EDQUOT) while root is not limited.
 * A second nobody, member of the daemon's --pfn-group, is shown the real
 * PFNs: the ones root reads in its pagemap.
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
/* --pfn-group: a gid nobody is not in, so that only the second child has it */
#define PFN_GROUP 4242
#define PFN_GROUP_ARG "4242"
#define NPAGES 4
#define ROOT_INTERVALS 4

struct to_child {
	pid_t pid;
	uint64_t interval_id;
};

struct from_child {
	pid_t pid;
	uint64_t addr;
	uint64_t pfns[NPAGES]; /* what the daemon showed the child */
};

static sem_t inval_sem;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	sem_post(&inval_sem);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

static void on_watch(uint64_t interval_id, pid_t pid, const struct um_invalidation *inv, void *priv)
{
}

static unsigned long long cap_eff(void)
{
	char line[256];
	unsigned long long cap = ~0ull;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return cap;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &cap) == 1)
			break;
	fclose(f);
	return cap;
}

/* become nobody with @ngroups supplementary @groups and no capabilities */
static void drop_privileges(size_t ngroups, const gid_t *groups)
{
	CHECK(setgroups(ngroups, groups) == 0, "setgroups: %m");
	CHECK(setgid(NOBODY) == 0, "setgid: %m");
	CHECK(setuid(NOBODY) == 0, "setuid: %m");
	CHECK(getuid() == NOBODY && geteuid() == NOBODY && getgid() == NOBODY &&
		      getegid() == NOBODY,
	      "ids after the drop");
	CHECK(getgroups(0, NULL) == (int)ngroups, "supplementary groups: %d, want %zu",
	      getgroups(0, NULL), ngroups);
	CHECK(cap_eff() == 0, "CapEff %#llx after the drop", cap_eff());
	CHECK(setuid(0) < 0 && errno == EPERM, "setuid(0) must fail");
	/* the library must not find a privileged way to a userfaultfd */
	CHECK(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC) < 0 && errno == EACCES,
	      "/dev/userfaultfd opened by nobody");
	CHECK(syscall(SYS_userfaultfd, O_CLOEXEC) < 0 && errno == EPERM,
	      "userfaultfd(2) without UFFD_USER_MODE_ONLY worked for nobody");
}

static struct um_interval *insert(struct um_client *c, size_t npages, int *err)
{
	struct um_interval *iv = NULL;
	char *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	CHECK(p != MAP_FAILED, "mmap: %m");
	memset(p, 'a', npages * PAGE);
	*err = um_interval_insert(c, p, npages * PAGE, 0, &ops, NULL, &iv);
	return iv;
}

/* snapshot @r (registered on @iv's NPAGES pages) into r->pfns; all valid */
static void snapshot_all(struct um_range *r, struct um_interval *iv)
{
	long n;

	CHECK(um_range_register(r, iv) == 0, "range register");
	while ((n = um_range_snapshot(r)) == -EAGAIN)
		CHECK(um_range_wait_until_valid(r, 0) == 0, "wait until valid");
	CHECK(n == NPAGES, "snapshot: %ld", n);
	for (int i = 0; i < NPAGES; i++)
		CHECK(r->pfns[i] & UM_DEFAULT_VALID, "page %d not valid: %#llx", i,
		      (unsigned long long)r->pfns[i]);
}

static void child_main(int in_fd, int out_fd)
{
	struct from_child fc = { .pid = getpid() };
	struct to_child tc;
	struct um_interval *iv, *iv2, *iv3, *sub = NULL;
	struct um_status st = UM_STATUS_INIT;
	struct um_client *c;
	struct um_range r = { 0 };
	int pipefd[2], err;
	char *buf, go;

	alarm(harness_scaled_s(30));
	sem_init(&inval_sem, 0, 0);
	drop_privileges(0, NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "nobody: um_connect");
	iv = insert(c, NPAGES, &err);
	CHECK(err == 0, "nobody: insert: %s", strerror(-err));
	buf = (char *)(uintptr_t)um_interval_start(iv);

	CHECK(um_status(c, &st) == 0, "nobody: status");
	printf("test_unprivileged: nobody got uffd_mode %d, kfeatures %#llx\n", st.uffd_mode,
	       (unsigned long long)st.kfeatures);
	CHECK(st.uffd_mode == UM_UFFD_USER_ONLY, "uffd_mode %d, want USER_ONLY", st.uffd_mode);
	CHECK(!(st.kfeatures & UM_FEAT_PFN_VISIBLE), "nobody is told it sees PFNs");

	r.start = (uintptr_t)buf;
	r.end = r.start + NPAGES * PAGE;
	r.pfns = fc.pfns;
	snapshot_all(&r, iv);
	for (int i = 0; i < NPAGES; i++)
		CHECK(fc.pfns[i] >> UM_DEFAULT_PFN_SHIFT == 0, "nobody sees PFN %#llx of page %d",
		      (unsigned long long)(fc.pfns[i] >> UM_DEFAULT_PFN_SHIFT), i);
	/* root reads our pagemap while the pages stay put */
	fc.addr = (uintptr_t)buf;
	CHECK(write(out_fd, &fc, sizeof(fc)) == sizeof(fc), "send addresses");
	CHECK(read(in_fd, &go, 1) == 1, "wait for the pagemap check");

	buf[0] = 'x';
	CHECK(harness_sem_wait_ms(&inval_sem, 5000), "a write by nobody is invalidated");

	/* the price of USER_MODE_ONLY: the kernel's own write faults are not ours */
	CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe: %m");
	CHECK(write(pipefd[1], "0123456789abcdef", 16) == 16, "fill the pipe");
	errno = 0;
	CHECK(read(pipefd[0], buf + 2 * PAGE, 16) < 0 && errno == EFAULT,
	      "read(2) into protected memory: %m, want EFAULT");
	close(pipefd[0]);
	close(pipefd[1]);

	CHECK(read(in_fd, &tc, sizeof(tc)) == sizeof(tc), "read root's interval");
	err = um_interval_subscribe(c, tc.pid, tc.interval_id, 0, &ops, NULL, &sub);
	CHECK(err == -EACCES, "cross-uid subscribe: %s, want EACCES", strerror(-err));
	CHECK(sub == NULL, "no interval handed out");
	/*
	 * Not allowed is -EACCES, never -EPERM: that is what a PROT_NONE page
	 * gives, and umirrorctl drew a refusal as a map of unreadable pages.
	 */
	{
		uint64_t raw[2] = { 0 };
		long n = um_snapshot_raw(c, tc.pid, 0x10000, 2, raw);

		CHECK(n == -EACCES, "raw snapshot of root's process: %ld, want -EACCES", n);
		err = um_watch(c, tc.pid, on_watch, NULL);
		CHECK(err == -EACCES, "watch of root's process: %s, want EACCES", strerror(-err));
	}

	iv2 = insert(c, 1, &err);
	CHECK(err == 0, "second insert: %s", strerror(-err));
	iv3 = insert(c, 1, &err);
	CHECK(err == -EDQUOT && !iv3, "third insert: %s, want EDQUOT", strerror(-err));
	/* removing one gives its share back */
	CHECK(um_interval_remove(iv2) == 0, "remove");
	iv3 = insert(c, 1, &err);
	CHECK(err == 0, "insert after a remove: %s", strerror(-err));

	um_range_unregister(&r);
	um_interval_remove(iv3);
	um_interval_remove(iv);
	um_disconnect(c);
	_exit(0);
}

/* nobody in --pfn-group: told it sees PFNs, and sends them to root to compare */
static void member_main(int in_fd, int out_fd)
{
	static const gid_t groups[] = { PFN_GROUP };
	struct from_child fc = { .pid = getpid() };
	struct um_range r = { 0 };
	struct um_interval *iv;
	struct um_status st = UM_STATUS_INIT;
	struct um_client *c;
	int err;
	char go;

	alarm(harness_scaled_s(30));
	drop_privileges(1, groups);
	CHECK(um_connect(NULL, 0, &c) == 0, "member: um_connect");
	iv = insert(c, NPAGES, &err);
	CHECK(err == 0, "member: insert: %s", strerror(-err));
	CHECK(um_status(c, &st) == 0, "member: status");
	CHECK(st.kfeatures & UM_FEAT_PFN_VISIBLE, "a --pfn-group member is not told it sees PFNs");

	fc.addr = um_interval_start(iv);
	r.start = fc.addr;
	r.end = r.start + NPAGES * PAGE;
	r.pfns = fc.pfns;
	snapshot_all(&r, iv);
	/* the pages stay put until root has compared them with its pagemap */
	CHECK(write(out_fd, &fc, sizeof(fc)) == sizeof(fc), "send PFNs");
	CHECK(read(in_fd, &go, 1) == 1, "wait for the pagemap check");

	um_range_unregister(&r);
	um_interval_remove(iv);
	um_disconnect(c);
	_exit(0);
}

/* the facts that make this test mean something, printed for the log */
static void check_host(void)
{
	struct stat st;
	char v = '?';
	int fd = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &v, 1) != 1)
			v = '?';
		close(fd);
	}
	printf("test_unprivileged: vm.unprivileged_userfaultfd = %c\n", v);
	if (stat("/dev/userfaultfd", &st) == 0)
		printf("test_unprivileged: /dev/userfaultfd mode %04o uid %d gid %d\n",
		       st.st_mode & 07777, (int)st.st_uid, (int)st.st_gid);
	else
		printf("test_unprivileged: /dev/userfaultfd: %m\n");
	fflush(stdout); /* not again from the forked child */
	if (v != '0')
		harness_skip("vm.unprivileged_userfaultfd is not 0: nobody would not need "
			     "UFFD_USER_MODE_ONLY");
	if (stat("/dev/userfaultfd", &st) == 0 && (st.st_mode & 0007))
		harness_skip("/dev/userfaultfd is open to others");
}

/* root's side of member_main(): the PFNs it was shown are the real ones */
static void check_member(void)
{
	struct from_child fc;
	int to, from, status;
	char go = 'g';
	pid_t child = harness_fork(member_main, &to, &from);

	CHECK(read(from, &fc, sizeof(fc)) == sizeof(fc), "member's PFNs");
	CHECK(fc.pid == child, "member pid");
	for (int i = 0; i < NPAGES; i++) {
		uint64_t e = harness_pagemap_of(child, fc.addr + i * PAGE);
		uint64_t shown = fc.pfns[i] >> UM_DEFAULT_PFN_SHIFT;

		CHECK((e & PM_PRESENT) && (e & PM_PFN_MASK), "member's page %d: pagemap %#llx", i,
		      (unsigned long long)e);
		CHECK(shown == (e & PM_PFN_MASK),
		      "member shown PFN %#llx of page %d, pagemap %#llx", (unsigned long long)shown,
		      i, (unsigned long long)(e & PM_PFN_MASK));
	}
	CHECK(write(to, &go, 1) == 1, "let the member go on");
	CHECK(waitpid(child, &status, 0) == child, "waitpid: %m");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "member status 0x%x", status);
	close(to);
	close(from);
}

int main(void)
{
	static const char *const args[] = { "--mode", "0666",	     "--max-intervals-per-uid",
					    "2",      "--pfn-group", PFN_GROUP_ARG,
					    NULL };
	struct um_interval *mine[ROOT_INTERVALS];
	struct to_child tc = { .pid = getpid() };
	struct from_child fc;
	struct um_client *c;
	int to, from, status, err;
	char go = 'g';
	pid_t child;

	if (geteuid() != 0)
		harness_skip("needs root (umirrord, and a uid to drop to)");
	check_host();
	harness_start("test_unprivileged", args);
	/* mkdtemp made the directory 0700: nobody must reach the socket */
	CHECK(chmod(harness_dir(), 0711) == 0, "chmod %s: %m", harness_dir());
	sem_init(&inval_sem, 0, 0);
	child = harness_fork(child_main, &to, &from);

	CHECK(um_connect(NULL, 0, &c) == 0, "root: connect");
	/* root is not limited by --max-intervals-per-uid */
	for (int i = 0; i < ROOT_INTERVALS; i++) {
		mine[i] = insert(c, 1, &err);
		CHECK(err == 0, "root insert %d: %s", i, strerror(-err));
	}
	tc.interval_id = um_interval_id(mine[0]);

	CHECK(read(from, &fc, sizeof(fc)) == sizeof(fc), "child's addresses");
	CHECK(fc.pid == child, "child pid");
	for (int i = 0; i < NPAGES; i++) {
		uint64_t e = harness_pagemap_of(child, fc.addr + i * PAGE);

		CHECK((e & PM_PRESENT) && (e & PM_PFN_MASK),
		      "root's pagemap of the child's page %d: %#llx", i, (unsigned long long)e);
	}
	CHECK(write(to, &go, 1) == 1, "let the child go on");
	CHECK(write(to, &tc, sizeof(tc)) == sizeof(tc), "send root's interval");
	CHECK(waitpid(child, &status, 0) == child, "waitpid: %m");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);

	for (int i = 0; i < ROOT_INTERVALS; i++)
		CHECK(um_interval_remove(mine[i]) == 0, "root remove %d", i);
	um_disconnect(c);
	close(to);
	close(from);

	check_member();
	return harness_summary();
}
