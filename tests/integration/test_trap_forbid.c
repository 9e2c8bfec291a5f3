/* SPDX-License-Identifier: MIT */
/*
 * test_trap_forbid - a daemon started with --trap=forbid refuses trap
 * mode: um_connect(UM_CONNECT_TRAP_VMA) returns -EOPNOTSUPP and leaves the
 * process as it was (no seccomp filter, no PR_SET_NO_NEW_PRIVS); a plain
 * connection still works. Trap mode with UM_CONNECT_MANUAL is -EINVAL.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a "Name:\tN" line of /proc/self/status, or -1 */
static long status_field(const char *name)
{
	char line[256];
	size_t n = strlen(name);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

int main(void)
{
	static const char *const args[] = { "--trap=forbid", NULL };
	struct um_client *c;
	int r;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_trap_forbid", args);
	r = um_connect(NULL, UM_CONNECT_TRAP_VMA | UM_CONNECT_MANUAL, &c);
	CHECK(r == -EINVAL, "trap mode with UM_CONNECT_MANUAL: %d, want -EINVAL", r);
	r = um_connect(NULL, UM_CONNECT_TRAP_VMA, &c);
	CHECK(r == -EOPNOTSUPP, "trap mode against --trap=forbid: %d (%s), want -EOPNOTSUPP", r,
	      strerror(-r));
	CHECK(status_field("Seccomp") == 0, "no filter was installed (Seccomp: %ld)",
	      status_field("Seccomp"));
	CHECK(status_field("NoNewPrivs") == 0, "no_new_privs untouched (%ld)",
	      status_field("NoNewPrivs"));
	CHECK(um_connect(NULL, 0, &c) == 0, "a plain connection works");
	CHECK(um_ping(c) == 0, "ping");
	um_disconnect(c);
	return harness_summary();
}
