/* SPDX-License-Identifier: MIT */
/*
 * no_uring_wrapper - run a program where io_uring_setup(2) fails with
 * ENOSYS, as under a container runtime's seccomp profile or a kernel
 * built without io_uring: "no_uring_wrapper PROGRAM ARGS...".
 *
 * Used as $UMIRRORD_WRAPPER by test_uring: the filter is installed, then
 * the daemon is exec'ed in this same process (the harness signals the
 * pid it started).
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: no_uring_wrapper PROGRAM [ARGS...]\n");
		return 2;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		fprintf(stderr, "no_uring_wrapper: seccomp_init failed\n");
		return 1;
	}
	ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0);
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret) {
		fprintf(stderr, "no_uring_wrapper: cannot install the filter: %s\n",
			strerror(-ret));
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_uring_wrapper: exec %s: %s\n", argv[1], strerror(errno));
	return 127;
}
