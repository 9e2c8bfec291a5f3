/* SPDX-License-Identifier: MIT */
/*
 * test_args.c - umirrorctl's operand and option-value parsing (cli/args.c):
 * hex addresses, byte lengths with K/M/G, pids, positive counts, and a
 * PID ADDR[+LEN] range as pages. Signs, blanks and overflow are refused,
 * never read as another number.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* before cmocka.h, whose fail() macro would eat ctl.h's fail() */
#include "args.h"
#include "ctl.h"

#include <cmocka.h>

static void test_hex(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_hex("1a2b", &v), 0);
	assert_true(v == 0x1a2b);
	assert_int_equal(parse_hex("0x1A2B", &v), 0);
	assert_true(v == 0x1a2b);
	assert_int_equal(parse_hex("0X10", &v), 0);
	assert_true(v == 0x10);
	assert_int_equal(parse_hex("ffffffffffffffff", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_hex("10000000000000000", &v), -EINVAL); /* 65 bits */
	assert_int_equal(parse_hex("", &v), -EINVAL);
	assert_int_equal(parse_hex("0x", &v), -EINVAL);
	assert_int_equal(parse_hex("12g", &v), -EINVAL);
	assert_int_equal(parse_hex("-1", &v), -EINVAL);
	assert_int_equal(parse_hex("+1", &v), -EINVAL);
	assert_int_equal(parse_hex("0x-1", &v), -EINVAL);
	/* strtoull skips blanks, then reads "-1" as 2^64 - 1 */
	assert_int_equal(parse_hex(" -1", &v), -EINVAL);
	assert_int_equal(parse_hex("0x -1", &v), -EINVAL);
	assert_int_equal(parse_hex(" 10", &v), -EINVAL);
}

static void test_len(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_len("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_len("0x1000", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_len("64K", &v), 0);
	assert_true(v == 64 << 10);
	assert_int_equal(parse_len("64k", &v), 0);
	assert_true(v == 64 << 10);
	assert_int_equal(parse_len("2M", &v), 0);
	assert_true(v == 2 << 20);
	assert_int_equal(parse_len("1G", &v), 0);
	assert_true(v == 1ull << 30);
	assert_int_equal(parse_len("0x10k", &v), 0);
	assert_true(v == 16 << 10);
	assert_int_equal(parse_len("17179869183G", &v), 0); /* (2^64 - 1) >> 30 */
	assert_true(v == 17179869183ull << 30);
	assert_int_equal(parse_len("17179869184G", &v), -EINVAL); /* overflows */
	assert_int_equal(parse_len("18446744073709551616", &v), -EINVAL);
	assert_int_equal(parse_len("", &v), -EINVAL);
	assert_int_equal(parse_len("K", &v), -EINVAL);
	assert_int_equal(parse_len("1T", &v), -EINVAL);
	assert_int_equal(parse_len("1KB", &v), -EINVAL);
	assert_int_equal(parse_len("-1", &v), -EINVAL);
	assert_int_equal(parse_len("+1", &v), -EINVAL);
	assert_int_equal(parse_len(" -1", &v), -EINVAL);
	assert_int_equal(parse_len("0x -1", &v), -EINVAL);
	assert_int_equal(parse_len("0x", &v), -EINVAL);
}

static void test_pid(void **state)
{
	pid_t pid = 0;

	assert_int_equal(parse_pid("1", &pid), 0);
	assert_int_equal(pid, 1);
	assert_int_equal(parse_pid("2147483647", &pid), 0);
	assert_int_equal(pid, 2147483647);
	assert_int_equal(parse_pid("2147483648", &pid), -EINVAL);
	assert_int_equal(parse_pid("0", &pid), -EINVAL);
	assert_int_equal(parse_pid("-5", &pid), -EINVAL);
	assert_int_equal(parse_pid(" -5", &pid), -EINVAL);
	assert_int_equal(parse_pid("12x", &pid), -EINVAL);
	assert_int_equal(parse_pid("", &pid), -EINVAL);
}

static void test_positive(void **state)
{
	uint64_t v = 0;

	assert_int_equal(positive_arg("--count", "3", UINT64_MAX, &v), 0);
	assert_true(v == 3);
	assert_int_equal(positive_arg("--count", "18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(positive_arg("--scale", "100", 100, &v), 0);
	assert_int_equal(positive_arg("--scale", "101", 100, &v), 2);
	assert_int_equal(positive_arg("--count", "0", UINT64_MAX, &v), 2);
	assert_int_equal(positive_arg("--count", "-1", UINT64_MAX, &v), 2);
	assert_int_equal(positive_arg("--count", "", UINT64_MAX, &v), 2);
	assert_int_equal(positive_arg("--count", "5s", UINT64_MAX, &v), 2);
	assert_int_equal(positive_arg("--count", "18446744073709551616", UINT64_MAX, &v), 2);
	/* a blank before the sign: not 2^64 - 1 events */
	assert_int_equal(positive_arg("--count", " -1", UINT64_MAX, &v), 2);
	assert_int_equal(positive_arg("--count", "\t-2", UINT64_MAX, &v), 2);
}

/* range_args() on a copy of @addr (it writes over the '+') */
static int range(const char *pid, const char *addr, uint64_t *start, uint64_t *npages)
{
	char buf[64], p[16];
	char *argv[] = { p, buf };
	pid_t got;

	snprintf(p, sizeof(p), "%s", pid);
	snprintf(buf, sizeof(buf), "%s", addr);
	return range_args("show", 2, argv, &got, start, npages);
}

static void test_range(void **state)
{
	uint64_t start, n;

	assert_int_equal(range("7", "1000", &start, &n), 0);
	assert_true(start == 0x1000 && n == 1);
	/* unaligned: every page the bytes touch */
	assert_int_equal(range("7", "1fff+2", &start, &n), 0);
	assert_true(start == 0x1000 && n == 2);
	assert_int_equal(range("7", "0x1000+16K", &start, &n), 0);
	assert_true(start == 0x1000 && n == 4);
	assert_int_equal(range("7", "0+16G", &start, &n), 0);
	assert_true(start == 0 && n == SHOW_MAX_PAGES);
	assert_int_equal(range("7", "1+16G", &start, &n), 2); /* one page more */
	assert_int_equal(range("7", "ffffffffffffe000", &start, &n), 0);
	assert_true(start == 0xffffffffffffe000ull && n == 1);
	/* the last page: its end does not fit in 64 bits */
	assert_int_equal(range("7", "fffffffffffff000", &start, &n), 2);
	assert_int_equal(range("7", "fffffffffffff000+4097", &start, &n), 2);
	assert_int_equal(range("7", "1000+0", &start, &n), 2);
	assert_int_equal(range("0", "1000", &start, &n), 2);
	assert_int_equal(range("7", "xyz", &start, &n), 2);
	assert_int_equal(range("7", "1000+ -1", &start, &n), 2);
}

static void test_range_argc(void **state)
{
	char a0[] = "7", a1[] = "1000", a2[] = "x";
	char *argv[] = { a0, a1, a2 };
	uint64_t start, n;
	pid_t pid;

	assert_int_equal(range_args("show", 1, argv, &pid, &start, &n), 2);
	assert_int_equal(range_args("show", 3, argv, &pid, &start, &n), 2);
	assert_int_equal(range_args("show", 2, argv, &pid, &start, &n), 0);
	assert_int_equal(pid, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex),   cmocka_unit_test(test_len),
		cmocka_unit_test(test_pid),   cmocka_unit_test(test_positive),
		cmocka_unit_test(test_range), cmocka_unit_test(test_range_argc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
