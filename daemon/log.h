/* SPDX-License-Identifier: MIT */
/*
 * log.h - "umirrord: <level>: ..." lines on stderr (with journal priorities
 * under systemd).
 */
#ifndef UMD_LOG_H
#define UMD_LOG_H

#include <stdbool.h>

enum um_log_level {
	UM_LOG_ERROR = 0,
	UM_LOG_WARN = 1,
	UM_LOG_INFO = 2,
	UM_LOG_DEBUG = 3,
};

/**
 * log_init() - call first in main(): when stderr is the stream systemd
 * connected to the journal ($JOURNAL_STREAM names its device and inode),
 * every line gets the "<N>" syslog priority prefix journald understands,
 * so that error/warn/info/debug become the journal's err/warning/info/debug
 * priorities. Otherwise lines are printed as they are.
 */
void log_init(void);

/**
 * log_set_level() - print messages up to and including @level.
 * Default UM_LOG_INFO. Not thread-safe (the daemon has one thread).
 */
void log_set_level(enum um_log_level level);

/** log_enabled() - true if a message of @level would be printed. */
bool log_enabled(enum um_log_level level);

/**
 * log_msg() - print one line (a newline is added). Never fails, never
 * blocks for long: stderr is written with one write(2) per line.
 */
void log_msg(enum um_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(UM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(UM_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(UM_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                      \
	do {                                                \
		if (log_enabled(UM_LOG_DEBUG))              \
			log_msg(UM_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif /* UMD_LOG_H */
