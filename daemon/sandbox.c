/* SPDX-License-Identifier: MIT */
/*
 * sandbox.c - seccomp allow-list (libseccomp), default: kill the process.
 *
 * The list is what the running daemon was seen to call under the whole
 * integration suite (strace -f -c of umirrord, see docs/SECURITY.md),
 * plus what glibc and libuv call on paths the suite does not reach but a
 * daemon does (abort, malloc arena growth, clock fallbacks). ioctl(2) is
 * limited to the requests the daemon issues. Notably absent: socket,
 * connect, bind, execve, clone/fork, ptrace, open by path for writing
 * outside /proc, mount, setuid and friends.
 */
#include "sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <unistd.h>

#include "log.h"
#include "uapi_compat.h"
#include "uring.h"

#if defined(__SANITIZE_ADDRESS__)
#define UMD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UMD_SANITIZED 1
#endif
#endif

static const int allowed[] = {
	/* the loop and its signal pipe */
	SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait),
	SCMP_SYS(epoll_pwait2),
	SCMP_SYS(epoll_ctl),
	SCMP_SYS(read),
	SCMP_SYS(write),
	SCMP_SYS(close),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime),
	/* clients: accept, identify, talk (SCM_RIGHTS), pidfds */
	SCMP_SYS(accept4),
	SCMP_SYS(getsockopt),
	SCMP_SYS(recvmsg),
	SCMP_SYS(sendmsg),
	SCMP_SYS(sendto),
	SCMP_SYS(poll),
	SCMP_SYS(ppoll),
	SCMP_SYS(pidfd_open),
	SCMP_SYS(fcntl),
	/* address spaces: /proc/PID/{pagemap,maps,status}, uffd check, memfds */
	SCMP_SYS(openat),
	SCMP_SYS(pread64),
	SCMP_SYS(readlink),
	SCMP_SYS(newfstatat),
	/* soft-dirty REARM: "4" into /proc/PID/clear_refs (dirty.c) */
	SCMP_SYS(pwrite64),
	SCMP_SYS(memfd_create),
	SCMP_SYS(ftruncate),
	SCMP_SYS(futex),
	/* NUMA: node queries and PLACE (place.c); children of a forking owner (children.c) */
	SCMP_SYS(move_pages),
	SCMP_SYS(getdents64),
	/* memory: malloc, result buffers, seq areas */
	SCMP_SYS(mmap),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(brk),
	SCMP_SYS(madvise),
	SCMP_SYS(mprotect),
	SCMP_SYS(getrandom),
	/* shutdown: remove our socket path; exit; abort() still dumps core */
	SCMP_SYS(unlink),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	SCMP_SYS(tgkill),
	/* trap_serve.c: cutting a receive short (its timer) */
	SCMP_SYS(timer_settime),
};

#ifdef UMD_SANITIZED
/*
 * ASan/UBSan reports and LeakSanitizer at exit: LSan stops the world with
 * a ptrace()ing helper thread and reads /proc/self/{maps,task}. Only in
 * sanitizer builds, which are test builds.
 */
static const int allowed_sanitizer[] = {
	SCMP_SYS(clone),
	SCMP_SYS(clone3),
	SCMP_SYS(ptrace),
	SCMP_SYS(wait4),
	SCMP_SYS(prctl),
	SCMP_SYS(sched_yield),
	SCMP_SYS(sigaltstack),
	SCMP_SYS(getdents),
	SCMP_SYS(getdents64),
	SCMP_SYS(getppid),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(rseq),
	SCMP_SYS(open),
	SCMP_SYS(stat),
	SCMP_SYS(lstat),
	SCMP_SYS(statx),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
	SCMP_SYS(uname),
	SCMP_SYS(writev),
	SCMP_SYS(kill),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(lseek),
};
#endif

/* the ioctls of mm, wp, interval, fork, uffd_event, vma, dirty and libuv's uv__nonblock/cloexec */
static const unsigned long allowed_ioctls[] = {
	UFFDIO_API,
	UFFDIO_REGISTER,
	UFFDIO_UNREGISTER,
	UFFDIO_WRITEPROTECT,
	UFFDIO_WAKE,
	PROCMAP_QUERY,
	/* probed at start-up; read-only on a pagemap fd, kept for the scan backend */
	PAGEMAP_SCAN,
	FIONBIO,
	FIOCLEX,
	/* trap_serve.c: the listeners of exited trap-mode processes */
	SECCOMP_IOCTL_NOTIF_RECV,
	SECCOMP_IOCTL_NOTIF_SEND,
};

static int allow_list(scmp_filter_ctx ctx, const int *nr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr[i], 0);

		/* a name libseccomp does not know on this arch resolves < 0 */
		if (ret && nr[i] >= 0)
			return ret;
	}
	return 0;
}

int sandbox_install(void)
{
	scmp_filter_ctx ctx;
	int ret;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		log_error("sandbox: seccomp_init failed");
		return -ENOMEM;
	}
	/* trap_serve.c's thread runs already; a filter on one thread only is none */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (ret)
		goto out;
	ret = allow_list(ctx, allowed, sizeof(allowed) / sizeof(allowed[0]));
#ifdef UMD_SANITIZED
	if (!ret)
		ret = allow_list(ctx, allowed_sanitizer,
				 sizeof(allowed_sanitizer) / sizeof(allowed_sanitizer[0]));
#endif
	/* the ring made before us (uring.c) is entered, never set up or registered */
	if (!ret && uring_global())
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(io_uring_enter), 0);
	if (ret)
		goto out;
	for (size_t i = 0; i < sizeof(allowed_ioctls) / sizeof(allowed_ioctls[0]); i++) {
		/* the kernel reads the request as unsigned int: compare those bits */
		ret = seccomp_rule_add(
			ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, allowed_ioctls[i] & 0xffffffffu));
		if (ret)
			goto out;
	}
	ret = seccomp_load(ctx);
out:
	if (ret)
		log_error("sandbox: cannot install the seccomp filter: %s", strerror(-ret));
	else
		log_debug("sandbox: seccomp allow-list installed");
	seccomp_release(ctx);
	return ret;
}

int sandbox_selftest(void)
{
	const char *v = getenv(SANDBOX_SELFTEST_ENV);
	int fd;

	if (!v || strcmp(v, "1"))
		return 0;
	log_info("sandbox self-test: calling socket(AF_INET), which must kill us");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		close(fd);
	log_error("sandbox self-test: socket(AF_INET) returned %d: no filter in force", fd);
	return -EPERM;
}
