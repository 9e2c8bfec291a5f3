/* SPDX-License-Identifier: MIT */
/*
 * test_abi.c - the parts of libumirror's ABI a program relies on across
 * versions: um_version() against the version macros, and the size fields
 * of struct um_status and struct um_interval_info, against the real
 * daemon.
 *
 * The layouts are pinned here: a change of sizeof or of a field's offset
 * breaks programs compiled against an earlier umirror.h, so it must be a
 * conscious edit of this file too.
 */
#include "harness.h"
#include "umirror.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(sizeof(struct um_status) == 168, "struct um_status: size is ABI");
_Static_assert(offsetof(struct um_status, reserved) == UM_STATUS_SIZE_VER0, "um_status VER0");
_Static_assert(offsetof(struct um_status, filled) == 4, "um_status.filled");
_Static_assert(offsetof(struct um_status, kfeatures_masked) == 96, "um_status layout");
_Static_assert(sizeof(struct um_interval_info) == 120, "struct um_interval_info: size is ABI");
_Static_assert(offsetof(struct um_interval_info, reserved0) == UM_INTERVAL_INFO_SIZE_VER0 - 4,
	       "um_interval_info VER0");
_Static_assert(offsetof(struct um_interval_info, revalidate_ms) == 64, "um_interval_info layout");

static void check_version(void)
{
	char want[32];
	const char *v = um_version();

	snprintf(want, sizeof(want), "%d.%d.%d", UMIRROR_VERSION_MAJOR, UMIRROR_VERSION_MINOR,
		 UMIRROR_VERSION_PATCH);
	CHECK(v && !strcmp(v, want), "um_version() '%s', the macros say '%s'", v ? v : "(null)",
	      want);
	CHECK(!strcmp(UMIRROR_VERSION_STRING, want), "UMIRROR_VERSION_STRING '%s', want '%s'",
	      UMIRROR_VERSION_STRING, want);
	CHECK(UMIRROR_VERSION_AT_LEAST(0, 1, 0) &&
		      !UMIRROR_VERSION_AT_LEAST(UMIRROR_VERSION_MAJOR + 1, 0, 0),
	      "UMIRROR_VERSION_AT_LEAST");
}

static void check_status(struct um_client *c)
{
	struct um_status st = UM_STATUS_INIT;
	/* a program built against a newer, bigger struct um_status */
	struct {
		struct um_status st;
		unsigned char newer[64];
	} big;
	struct um_status small = { .size = UM_STATUS_SIZE_VER0 - 1 };

	memset(&st.daemon_version, 0x5a, sizeof(st) - offsetof(struct um_status, daemon_version));
	CHECK(um_status(c, &st) == 0, "status");
	CHECK(st.size == sizeof(st), "size is left as the caller set it: %u", st.size);
	CHECK(st.filled == UM_STATUS_SIZE_VER0, "filled %u, want %d", st.filled,
	      UM_STATUS_SIZE_VER0);
	CHECK(st.daemon_pid == harness_daemon_pid(), "daemon_pid %d, want %d", (int)st.daemon_pid,
	      (int)harness_daemon_pid());
	for (size_t i = 0; i < sizeof(st.reserved) / sizeof(st.reserved[0]); i++)
		CHECK(st.reserved[i] == 0, "reserved[%zu] zeroed", i);
	/* reused as it is: the same answer */
	CHECK(um_status(c, &st) == 0 && st.filled == UM_STATUS_SIZE_VER0, "status again");

	memset(&big, 0xa5, sizeof(big));
	big.st.size = sizeof(big);
	CHECK(um_status(c, &big.st) == 0, "status into a bigger struct");
	CHECK(big.st.size == sizeof(big) && big.st.filled == UM_STATUS_SIZE_VER0,
	      "bigger struct: size %u filled %u", big.st.size, big.st.filled);
	for (size_t i = 0; i < sizeof(big.newer); i++)
		CHECK(big.newer[i] == 0, "the fields this library does not know are zeroed (%zu)",
		      i);
	CHECK(big.st.daemon_pid == harness_daemon_pid(), "bigger struct: daemon_pid");

	CHECK(um_status(c, &small) == -EINVAL, "a size below UM_STATUS_SIZE_VER0: -EINVAL");
}

static void check_list(struct um_client *c)
{
	char *m = harness_map_anon(2, PROT_READ | PROT_WRITE);
	struct um_interval_info *info = NULL;
	struct um_interval *iv;
	size_t n = 0;
	bool seen = false;

	memset(m, 1, 2 * PAGE);
	CHECK(um_interval_insert(c, m, 2 * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(um_list(c, &info, &n) == 0, "list");
	for (size_t i = 0; i < n; i++) {
		CHECK(info[i].size == UM_INTERVAL_INFO_SIZE_VER0, "record %zu: size %u, want %d", i,
		      info[i].size, UM_INTERVAL_INFO_SIZE_VER0);
		CHECK(info[i].reserved0 == 0 && info[i].reserved[0] == 0, "record %zu: reserved 0",
		      i);
		seen |= info[i].interval_id == um_interval_id(iv) && info[i].pid == getpid() &&
			info[i].length == 2 * PAGE;
	}
	CHECK(seen, "the interval is listed with its fields where they belong");
	free(info);
	CHECK(um_interval_remove(iv) == 0, "remove");
}

int main(void)
{
	struct um_client *c;

	check_version();
	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_abi", NULL);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	check_status(c);
	check_list(c);
	um_disconnect(c);
	return harness_summary();
}
