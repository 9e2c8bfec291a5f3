/* SPDX-License-Identifier: MIT */
/*
 * args.c - umirrorctl's operands and option values (see args.h).
 */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "um_page.h"

int parse_hex(const char *s, uint64_t *out)
{
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	/* strtoull() would skip blanks and take a sign: " -1" is 2^64 - 1 */
	if (!isxdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno || *end ? -EINVAL : 0;
}

int parse_len(const char *s, uint64_t *out)
{
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	uint64_t v, mul = 1;
	char *end;

	if (hex)
		s += 2;
	/* digits first: strtoull() would skip blanks and take a sign */
	if (!(hex ? isxdigit((unsigned char)*s) : isdigit((unsigned char)*s)))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, hex ? 16 : 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	}
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*out = (pid_t)v;
	return 0;
}

int positive_arg(const char *name, const char *arg, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || !isdigit((unsigned char)arg[0]) || *end || !*out || *out > max)
		return usage_error("%s wants a positive number%s, not '%s'", name,
				   max < UINT64_MAX ? " (not too large)" : "", arg);
	return 0;
}

int range_args(const char *cmd, int argc, char **argv, pid_t *pid, uint64_t *start,
	       uint64_t *npages)
{
	uint64_t addr, len = UMP_PAGE_SIZE, end;
	char *plus;

	if (argc < 2)
		return usage_error("%s needs PID and ADDR[+LEN]", cmd);
	if (argc > 2)
		return usage_error("%s: unexpected argument '%s'", cmd, argv[2]);
	if (parse_pid(argv[0], pid) < 0)
		return usage_error("%s: bad pid '%s'", cmd, argv[0]);
	plus = strchr(argv[1], '+');
	if (plus)
		*plus++ = '\0';
	if (parse_hex(argv[1], &addr) < 0)
		return usage_error("%s: bad address '%s': want hexadecimal", cmd, argv[1]);
	if (plus && (parse_len(plus, &len) < 0 || len == 0))
		return usage_error("%s: bad length '%s': want a number > 0, K/M/G allowed", cmd,
				   plus);
	if (addr + len < addr || addr + len > UINT64_MAX - UMP_PAGE_SIZE + 1)
		return usage_error("%s: range wraps around", cmd);
	*start = addr & ~(UMP_PAGE_SIZE - 1);
	end = (addr + len + UMP_PAGE_SIZE - 1) & ~(UMP_PAGE_SIZE - 1);
	*npages = (end - *start) / UMP_PAGE_SIZE;
	if (*npages > SHOW_MAX_PAGES)
		return usage_error("%s: range too large (at most %llu pages)", cmd,
				   (unsigned long long)SHOW_MAX_PAGES);
	return 0;
}
