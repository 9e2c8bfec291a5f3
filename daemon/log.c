/* SPDX-License-Identifier: MIT */
/*
 * log.c - stderr logging. One write(2) per line so lines of concurrent
 * writers (tests run several daemons into one terminal) do not interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static enum um_log_level max_level = UM_LOG_INFO;

static const char *const level_names[] = {
	[UM_LOG_ERROR] = "error",
	[UM_LOG_WARN] = "warn",
	[UM_LOG_INFO] = "info",
	[UM_LOG_DEBUG] = "debug",
};

void log_set_level(enum um_log_level level)
{
	max_level = level;
}

bool log_enabled(enum um_log_level level)
{
	return level <= max_level;
}

void log_msg(enum um_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (!log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "umirrord: %s: ", level_names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* nothing useful to do if stderr is gone */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
