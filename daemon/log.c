/* SPDX-License-Identifier: MIT */
/*
 * log.c - stderr logging. One write(2) per line so lines of concurrent
 * writers (tests run several daemons into one terminal) do not interleave.
 * Under systemd each line starts with its syslog priority ("<3>"), which
 * journald strips and records: `journalctl -p err` then shows errors.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static enum um_log_level max_level = UM_LOG_INFO;
static bool journal;

/* syslog priorities (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG) */
static const int priorities[] = {
	[UM_LOG_ERROR] = 3,
	[UM_LOG_WARN] = 4,
	[UM_LOG_INFO] = 6,
	[UM_LOG_DEBUG] = 7,
};

void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd names the journal stream it connected; stderr may have been
	 * redirected since (a shell in ExecStart=), then the prefix is noise */
	journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
		  fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

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
	n = 0;
	if (journal)
		n = snprintf(line, sizeof(line), "<%d>", priorities[level]);
	n += snprintf(line + n, sizeof(line) - n, "umirrord: %s: ", level_names[level]);
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
