/* SPDX-License-Identifier: MIT */
/*
 * main.c - umirrord: options, start-up, the loop, graceful shutdown.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "dispatch.h"
#include "listen_fds.h"
#include "log.h"
#include "sd_notify.h"
#include "sandbox.h"
#include "trap_serve.h"
#include "server.h"
#include "uring.h"

static struct server srv;
static uv_signal_t sig_term, sig_int;
static bool no_sandbox;

static int parse_u64(const char *s, int base, unsigned long long min, unsigned long long max,
		     unsigned long long *out)
{
	char *end;

	/* a digit first: strtoull() would skip blanks and take " -1" as 2^64 - 1 */
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, base);
	if (errno || *end || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

/*
 * @name as a group: a name from the group database first (a group may be
 * called "100"), else a decimal gid, which need not be in the database.
 * Done while parsing the command line, long before the sandbox, because
 * NSS may open files, sockets or modules.
 */
static int resolve_group(const char *opt, const char *name, gid_t *gid)
{
	struct group gr, *found = NULL;
	unsigned long long v;
	char *buf = NULL;
	size_t size = 1024;
	int ret;

	do {
		char *nbuf = realloc(buf, size *= 2);

		if (!nbuf) {
			free(buf);
			return -ENOMEM;
		}
		buf = nbuf;
		ret = getgrnam_r(name, &gr, buf, size, &found);
	} while (ret == ERANGE && size < (1u << 20));
	if (found)
		*gid = gr.gr_gid;
	free(buf);
	if (found)
		return 0;
	/* (gid_t)-1 means "no change" to the kernel: never a real group */
	if (parse_u64(name, 10, 0, (gid_t)-1 - 1, &v) == 0) {
		*gid = v;
		return 0;
	}
	if (ret)
		log_error("%s '%s': group lookup: %s", opt, name, strerror(ret));
	else
		log_error("%s '%s': no such group", opt, name);
	return -ENOENT;
}

/*
 * The option whose value @arg is, as the user wrote it: "--mode" from
 * "--mode=999" or from "--mode" "999".
 */
static const char *option_name(int argc, char **argv, const char *arg)
{
	static char name[64];

	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (eq && eq + 1 == arg) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - argv[i]), argv[i]);
			return name;
		}
		if (argv[i] == arg && i > 1)
			return argv[i - 1];
	}
	return "option";
}

/*
 * One handler per option: the value @arg (NULL for an option that takes
 * none) into @o. Return: 0, or -EINVAL; the caller says what a bad value
 * should have been when the option has a @want, else the handler has.
 */
typedef int opt_set_fn(struct um_opts *o, const char *arg);

static int set_socket(struct um_opts *o, const char *arg)
{
	o->socket_path = arg;
	return 0;
}

static int set_mode(struct um_opts *o, const char *arg)
{
	unsigned long long v;

	if (parse_u64(arg, 8, 0, 07777, &v))
		return -EINVAL;
	o->mode = v;
	return 0;
}

static int set_group(struct um_opts *o, const char *arg)
{
	if (resolve_group("--group", arg, &o->group))
		return -EINVAL;
	o->group_set = true;
	return 0;
}

static int set_ack_timeout(struct um_opts *o, const char *arg)
{
	unsigned long long v;

	if (parse_u64(arg, 10, 1, 3600000, &v))
		return -EINVAL;
	o->ack_timeout_ms = v;
	return 0;
}

static int set_result_size(struct um_opts *o, const char *arg)
{
	unsigned long long v;

	/* whole pages, and it must fit ump_hello_reply.result_size */
	if (parse_u64(arg, 10, UMP_PAGE_SIZE, 1ull << 31, &v) || v % UMP_PAGE_SIZE)
		return -EINVAL;
	o->result_size = v;
	return 0;
}

static int set_limit(struct um_opts *o, enum limit_kind kind, const char *arg,
		     unsigned long long max)
{
	unsigned long long v;

	if (parse_u64(arg, 10, 0, max, &v))
		return -EINVAL;
	limits_cfg_set(&o->limits, kind, v);
	return 0;
}

static int set_max_clients(struct um_opts *o, const char *arg)
{
	return set_limit(o, LIMIT_CLIENTS, arg, UINT32_MAX);
}

static int set_max_intervals(struct um_opts *o, const char *arg)
{
	return set_limit(o, LIMIT_INTERVALS, arg, UINT32_MAX);
}

static int set_max_bytes(struct um_opts *o, const char *arg)
{
	return set_limit(o, LIMIT_BYTES, arg, UINT64_MAX);
}

static int set_max_intervals_mm(struct um_opts *o, const char *arg)
{
	unsigned long long v;

	if (parse_u64(arg, 10, 1, UMP_SEQ_SLOTS_MAX, &v))
		return -EINVAL;
	o->seq_slots_max = v;
	return 0;
}

static int set_limit_root(struct um_opts *o, const char *arg)
{
	o->limits.limit_root = true;
	return 0;
}

static int set_pfn_group(struct um_opts *o, const char *arg)
{
	if (resolve_group("--pfn-group", arg, &o->pfn_group))
		return -EINVAL;
	o->pfn_group_set = true;
	return 0;
}

static int set_revalidate(struct um_opts *o, const char *arg)
{
	unsigned long long v;

	/* below 10 ms the scan would keep the loop busy */
	if (parse_u64(arg, 10, 0, 3600000, &v) || (v && v < 10))
		return -EINVAL;
	o->revalidate_ms = v;
	return 0;
}

static int set_write_granule(struct um_opts *o, const char *arg)
{
	unsigned long long v;

	if (parse_u64(arg, 10, 1, 512, &v))
		return -EINVAL;
	o->write_granule = (unsigned int)v;
	return 0;
}

static int set_trap(struct um_opts *o, const char *arg)
{
	if (strcmp(arg, "allow") && strcmp(arg, "forbid"))
		return -EINVAL;
	o->trap_forbid = !strcmp(arg, "forbid");
	return 0;
}

static int set_no_sandbox(struct um_opts *o, const char *arg)
{
	no_sandbox = true;
	return 0;
}

static int set_mask_features(struct um_opts *o, const char *arg)
{
	return kfeat_parse_mask(arg, &o->mask_features);
}

static int set_verbose(struct um_opts *o, const char *arg)
{
	o->verbose = true;
	return 0;
}

static int show_version(struct um_opts *o, const char *arg)
{
	printf("umirrord %s (protocol %d)\n", UMD_VERSION, UMP_PROTO_VERSION);
	exit(0);
}

static void usage(FILE *f);

static int show_help(struct um_opts *o, const char *arg)
{
	usage(stdout);
	exit(0);
}

/*
 * The command line, in --help's order: getopt_long's table and --help
 * are made from it. @help lines after the first are continued under it.
 */
static const struct daemon_opt {
	const char *name;
	/* the value's name in --help, after a blank or, "=...", joined; NULL: none */
	const char *arg;
	const char *want; /* what a bad value should have been; NULL: set says */
	opt_set_fn *set;
	const char *help;
} options[] = {
	{ "socket", "PATH", NULL, set_socket,
	  "listening socket (default $" UMP_SOCKET_ENV ", else " UMP_DEFAULT_SOCKET ")" },
	{ "mode", "OCTAL", "an octal mode, 0 to 07777", set_mode,
	  "socket permissions (default 0660)" },
	{ "group", "GROUP", NULL, set_group, "the socket's group (name or gid; default: root's)" },
	{ "ack-timeout", "MS", "milliseconds, 1 to 3600000", set_ack_timeout,
	  "evict receivers that do not ack in MS (default 1000)" },
	{ "result-size", "BYTES", "bytes, a multiple of 4096 from 4096 to 2147483648",
	  set_result_size, "per-client result buffer (default 4194304)" },
	{ "max-clients-per-uid", "N", "a decimal number, 0 for unlimited", set_max_clients,
	  "connections per uid (default 64; 0: unlimited)" },
	{ "max-intervals-per-uid", "N", "a decimal number, 0 for unlimited", set_max_intervals,
	  "intervals per uid (default 4096; 0: unlimited)" },
	{ "max-bytes-per-uid", "BYTES", "bytes, decimal, 0 for unlimited", set_max_bytes,
	  "mirrored bytes per uid (default 64 GiB; 0: unlimited)" },
	{ "max-intervals-per-mm", "N", "a decimal number, 1 to 1048576", set_max_intervals_mm,
	  "intervals (seq slots) per address space\n"
	  "(default and most 1048576)" },
	{ "limit-root", NULL, NULL, set_limit_root,
	  "apply the per-uid limits to root too (default: not)" },
	{ "pfn-group", "GROUP", NULL, set_pfn_group,
	  "show real PFNs to members of GROUP (name or gid) too,\n"
	  "not only to CAP_SYS_ADMIN peers" },
	{ "revalidate-ms", "MS", "milliseconds, 0 (off) or 10 to 3600000", set_revalidate,
	  "default revalidation scan period (default 1000; 0: off;\n"
	  "else 10..3600000)" },
	{ "write-granule", "N", "pages, 1 to 512", set_write_granule,
	  "pages a streak of in-order first writes may grow to\n"
	  "(default 512 = 2 MiB; 1: every first write is one page)" },
	{ "trap", "=allow|forbid", "allow or forbid", set_trap,
	  "may clients use trap mode (UM_CONNECT_TRAP_VMA: the\n"
	  "daemon answers before their mprotect/munmap/...;\n"
	  "default allow)" },
	{ "no-sandbox", NULL, NULL, set_no_sandbox, "do not install the seccomp allow-list" },
	{ "mask-features", "LIST", NULL, set_mask_features,
	  "do not use these kernel features even if present\n"
	  "(comma-separated: pagemap_scan, wp_async, wp_unpopulated,\n"
	  "procmap_query, io_uring, soft_dirty, or 6.1 for the first\n"
	  "four; default $UMIRRORD_MASK_FEATURES)" },
	{ "verbose", NULL, NULL, set_verbose, "debug logging" },
	{ "version", NULL, NULL, show_version, "print the version and exit" },
	{ "help", NULL, NULL, show_help, "this text" },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))
/* getopt_long's value for options[i]: clear of '?' and ':' */
#define OPT_BASE 256
/*
 * --help's first column: "--name ARG" padded to HELP_LABEL; the few longer
 * ones (the per-uid limits) to HELP_LABEL_WIDE, so that they line up with
 * each other. Continuation lines start under HELP_LABEL's column.
 */
#define HELP_LABEL 20
#define HELP_LABEL_WIDE 26

static void usage(FILE *f)
{
	fprintf(f, "Usage: umirrord [OPTIONS]\n"
		   "Mirror CPU page tables of client processes (userfaultfd + pagemap).\n\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *help = options[i].help, *nl;
		char label[64];
		int len;

		len = snprintf(label, sizeof(label), "--%s%s%s", options[i].name,
			       options[i].arg && options[i].arg[0] != '=' ? " " : "",
			       options[i].arg ? options[i].arg : "");
		fprintf(f, "  %-*s ", len > HELP_LABEL ? HELP_LABEL_WIDE : HELP_LABEL, label);
		while ((nl = strchr(help, '\n'))) {
			fprintf(f, "%.*s\n%*s", (int)(nl - help), help, HELP_LABEL + 3, "");
			help = nl + 1;
		}
		fprintf(f, "%s\n", help);
	}
}

static int parse_args(int argc, char **argv, struct um_opts *o)
{
	struct option longopts[NOPTIONS + 1] = { 0 };
	const struct daemon_opt *d;
	int c;

	for (size_t i = 0; i < NOPTIONS; i++)
		longopts[i] = (struct option){ options[i].name,
					       options[i].arg ? required_argument : no_argument,
					       NULL, OPT_BASE + (int)i };
	o->socket_path = getenv(UMP_SOCKET_ENV);
	if (!o->socket_path || !*o->socket_path)
		o->socket_path = UMP_DEFAULT_SOCKET;
	o->mode = 0660;
	o->ack_timeout_ms = 1000;
	o->result_size = 4u << 20;
	o->revalidate_ms = 1000;
	o->write_granule = 512;
	limits_cfg_defaults(&o->limits);
	/* the environment is the default: test suites run a daemon per test */
	if (kfeat_parse_mask(getenv("UMIRRORD_MASK_FEATURES"), &o->mask_features))
		return -EINVAL;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c < OPT_BASE) {
			/* getopt said what was wrong; this says it at error priority */
			log_error("bad command line at '%s' (see umirrord --help)",
				  argv[optind - 1]);
			usage(stderr);
			return -EINVAL;
		}
		d = &options[c - OPT_BASE];
		if (!d->set(o, optarg))
			continue;
		/* getopt left the option as it was written in argv[optind - 1] (or - 2) */
		if (d->want)
			log_error("%s: bad value '%s': want %s", option_name(argc, argv, optarg),
				  optarg, d->want);
		return -EINVAL;
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* the socket clients reach us at: systemd's, when it passed one */
static void listen_desc(char *buf, size_t size)
{
	struct sockaddr_un sa = { 0 };
	socklen_t len = sizeof(sa) - 1;

	if (!listen_fds_adopted()) {
		snprintf(buf, size, "%s", srv.opt.socket_path);
		return;
	}
	if (getsockname(srv.listen_fd, (struct sockaddr *)&sa, &len) == 0 && sa.sun_path[0])
		snprintf(buf, size, "%s (socket-activated)", sa.sun_path);
	else
		snprintf(buf, size, "fd %d (socket-activated)", srv.listen_fd);
}

static void on_signal(uv_signal_t *h, int signum)
{
	log_info("%s: shutting down", strsignal(signum));
	notify_stopping();
	server_shutdown(&srv);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	char desc[sizeof(((struct sockaddr_un *)0)->sun_path) + 32];
	int ret;

	log_init();
	if (parse_args(argc, argv, &srv.opt))
		return 2;
	if (srv.opt.verbose)
		log_set_level(UM_LOG_DEBUG);
	signal(SIGPIPE, SIG_IGN);
	if (notify_init())
		return 1;
	srv.dispatch = dispatch_request;
	/*
	 * Before the socket exists: a SIGTERM the moment it accepts (a unit
	 * stopped at once, a test) must still shut down cleanly and remove it.
	 */
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	ret = server_init(&srv, loop);
	if (ret)
		return 1;
	/* io_uring_setup and _register are not on the allow-list: the ring comes first */
	uring_global_init(srv.opt.mask_features & UMP_KFEAT_IO_URING);
	srv.kf.io_uring = uring_global() != NULL;
	listen_desc(desc, sizeof(desc));
	log_info("listening on %s", desc);
	if (srv.opt.pfn_group_set)
		log_info("real PFNs shown to gid %u and CAP_SYS_ADMIN peers%s",
			 (unsigned int)srv.opt.pfn_group,
			 srv.kf.pfn_visible ? "" : " (but this daemon sees none itself)");
	/* a thread, a timer and a signal handler: before the sandbox */
	if (!srv.opt.trap_forbid && (ret = trap_serve_init()))
		log_warn("trap mode: cannot serve the listeners of exited processes (%s): "
			 "a trap-mode process's exec and its surviving children fail "
			 "trapped calls with ENOSYS",
			 strerror(-ret));
	if (!no_sandbox && sandbox_install())
		return 1;
	if (sandbox_selftest())
		return 1;
	notify_ready(&srv, desc);
	uv_run(loop, UV_RUN_DEFAULT);
	uring_global_exit();
	ret = uv_loop_close(loop);
	if (ret)
		log_warn("loop closed with handles left: %s", uv_strerror(ret));
	return 0;
}
