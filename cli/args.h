/* SPDX-License-Identifier: MIT */
/*
 * args.h - umirrorctl's operands and option values: numbers, pids,
 * address ranges. The parse_* functions below print nothing; the
 * *_arg ones say what was wrong (usage_error()) and return 2.
 */
#ifndef UMIRRORCTL_ARGS_H
#define UMIRRORCTL_ARGS_H

#include <stdint.h>
#include <sys/types.h>

/** parse_hex() - "1a2b" or "0x1a2b", all of @s. Return: 0, -EINVAL. */
int parse_hex(const char *s, uint64_t *out);

/**
 * parse_len() - a byte count, all of @s: decimal or 0x hex, with an
 * optional K, M or G (binary) suffix: "4096", "0x1000", "64K", "2M".
 * Return: 0, -EINVAL (not a number, a sign, or more than 64 bits).
 */
int parse_len(const char *s, uint64_t *out);

/** parse_pid() - a decimal pid, 1 to INT_MAX, all of @s. Return: 0, -EINVAL. */
int parse_pid(const char *s, pid_t *out);

/**
 * positive_arg() - the value @arg of option @name (for the message): a
 * decimal number from 1 to @max. Return: 0, or 2 after a usage message.
 */
int positive_arg(const char *name, const char *arg, uint64_t max, uint64_t *out);

/**
 * range_args() - @cmd's operands PID ADDR[+LEN] (hex ADDR, LEN as
 * parse_len(), default one page) as the pages covering them: *@start
 * page-aligned down, *@npages at most SHOW_MAX_PAGES. Writes a NUL over
 * the '+' in argv[1]. Return: 0, or 2 after a usage message.
 */
int range_args(const char *cmd, int argc, char **argv, pid_t *pid, uint64_t *start,
	       uint64_t *npages);

#endif /* UMIRRORCTL_ARGS_H */
