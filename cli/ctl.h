/* SPDX-License-Identifier: MIT */
/*
 * ctl.h - what umirrorctl's commands share: the parsed options, the
 * command table's entry, error reporting, the daemon connection.
 *
 * Exit status throughout: 0 ok, 1 error (message on stderr), 2 usage
 * (one line saying what was wrong, then where help is).
 */
#ifndef UMIRRORCTL_CTL_H
#define UMIRRORCTL_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <umirror.h>

#define SHOW_MAX_PAGES (1ull << 22) /* 16 GiB: 32 MiB of entries */
#define DEFAULT_SOCKET "/run/umirror/umirrord.sock"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* the program's name in every message, whatever argv[0] was */
extern const char *const prog;

struct opts {
	const char *socket;
	bool json;
	uint64_t count; /* watch: events, dirty --interval: samples (0: no end) */
	uint64_t scale; /* pages per cell (0: automatic) */
	bool color;	/* from --color=WHEN and the terminal */
	bool no_legend;
	bool rearm;	      /* dirty: re-arm what is reported */
	uint64_t interval_ms; /* dirty: sample every this many ms (0: once) */
};

/* a command's operands, as its parser left them */
struct cmd_args {
	pid_t pid;		/* 0: none given (watch: every process) */
	uint64_t start, npages; /* show, dirty: the page range (dirty: 0 pages, all) */
};

/* which options a command accepts besides the common ones */
enum {
	CMD_NO_ARGS = 1 << 0,	   /* takes no operands at all */
	CMD_COUNT = 1 << 1,	   /* --count */
	CMD_COUNT_REPEAT = 1 << 2, /* --count, with --interval */
	CMD_REPEAT = 1 << 3,	   /* --rearm, --interval */
	CMD_GRID = 1 << 4,	   /* --scale, --color, --no-legend */
};

struct cmd {
	const char *name;
	const char *synopsis; /* "show PID ADDR[+LEN]" */
	const char *help;     /* for --help; lines after the first are continued */
	unsigned int flags;   /* CMD_* */
	/* the operands into @a: 0, or 2 after a usage message (NULL: none) */
	int (*parse)(int argc, char **argv, struct cmd_args *a);
	/* the command, connected: its exit status, having said why if not 0 */
	int (*run)(struct um_client *c, const struct opts *o, const struct cmd_args *a);
};

/**
 * usage_error() - print "umirrorctl: <what was wrong>" and where help is,
 * on stderr. Return: 2, the usage exit status.
 */
int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...);

/** fail() - print "umirrorctl: @what: <strerror(-@err)>" on stderr. Return: 1. */
int fail(const char *what, int err);

/**
 * fail_pid() - explain the daemon's -ESRCH or -EACCES for @pid (not
 * attached, no such process, not allowed); any other @err as fail().
 * Sends @pid signal 0 to tell the first two apart. Return: 1.
 */
int fail_pid(pid_t pid, int err);

/**
 * connect_daemon() - connect (UM_CONNECT_MANUAL) to the socket of
 * --socket, else a non-empty $UMIRROR_SOCKET, else DEFAULT_SOCKET. Waits
 * for the HELLO round trip (at most 10 s). On failure says why, with a
 * hint at what to do.
 * Return: 0 with *@c the connection, or -errno.
 */
int connect_daemon(const struct opts *o, struct um_client **c);

/**
 * stop_signalfd() - block SIGINT and SIGTERM and return a signalfd that
 * reads them, so a command's poll loop ends cleanly on either. Return:
 * the fd (the caller closes it), or -1 after saying why (fail()).
 */
int stop_signalfd(void);

#endif /* UMIRRORCTL_CTL_H */
