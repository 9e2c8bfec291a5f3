/* SPDX-License-Identifier: MIT */
/*
 * main.c - umirrord: options, start-up, the loop, graceful shutdown.
 */
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
#include "server.h"
#include "uring.h"

static struct server srv;
static uv_signal_t sig_term, sig_int;
static bool no_sandbox;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: umirrord [OPTIONS]\n"
		"Mirror CPU page tables of client processes (userfaultfd + pagemap).\n\n"
		"  --socket PATH        listening socket (default $" UM_SOCKET_ENV
		", else " UM_DEFAULT_SOCKET ")\n"
		"  --mode OCTAL         socket permissions (default 0660)\n"
		"  --group GROUP        the socket's group (name or gid; default: root's)\n"
		"  --ack-timeout MS     evict receivers that do not ack in MS (default 1000)\n"
		"  --result-size BYTES  per-client result buffer (default 4194304)\n"
		"  --max-clients-per-uid N    connections per uid (default 64; 0: unlimited)\n"
		"  --max-intervals-per-uid N  intervals per uid (default 4096; 0: unlimited)\n"
		"  --max-bytes-per-uid BYTES  mirrored bytes per uid (default 64 GiB; 0: "
		"unlimited)\n"
		"  --limit-root         apply the per-uid limits to root too (default: not)\n"
		"  --pfn-group GROUP    show real PFNs to members of GROUP (name or gid) too,\n"
		"                       not only to CAP_SYS_ADMIN peers\n"
		"  --revalidate-ms MS   default revalidation scan period (default 1000; 0: off;\n"
		"                       else 10..3600000)\n"
		"  --write-granule N    pages a streak of in-order first writes may grow to\n"
		"                       (default 512 = 2 MiB; 1: every first write is one page)\n"
		"  --trap=allow|forbid  may clients use trap mode (UM_CONNECT_TRAP_VMA: the\n"
		"                       daemon answers before their mprotect/munmap/...;\n"
		"                       default allow)\n"
		"  --no-sandbox         do not install the seccomp allow-list\n"
		"  --mask-features LIST do not use these kernel features even if present\n"
		"                       (comma-separated: pagemap_scan, wp_async, wp_unpopulated,\n"
		"                       procmap_query, io_uring, soft_dirty, or 6.1 for the first\n"
		"                       four; default $UMIRRORD_MASK_FEATURES)\n"
		"  --verbose            debug logging\n"
		"  --version            print the version and exit\n"
		"  --help               this text\n");
}

static int parse_u64(const char *s, int base, unsigned long long min, unsigned long long max,
		     unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, base);
	if (errno || end == s || *end || *s == '-' || *out < min || *out > max)
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

static int parse_args(int argc, char **argv, struct um_opts *o)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "group", required_argument, NULL, 'g' },
		{ "ack-timeout", required_argument, NULL, 'a' },
		{ "result-size", required_argument, NULL, 'r' },
		{ "max-clients-per-uid", required_argument, NULL, 'C' },
		{ "max-intervals-per-uid", required_argument, NULL, 'I' },
		{ "max-bytes-per-uid", required_argument, NULL, 'B' },
		{ "limit-root", no_argument, NULL, 'R' },
		{ "pfn-group", required_argument, NULL, 'G' },
		{ "revalidate-ms", required_argument, NULL, 'W' },
		{ "write-granule", required_argument, NULL, 'K' },
		{ "no-sandbox", no_argument, NULL, 'S' },
		{ "trap", required_argument, NULL, 'T' },
		{ "mask-features", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* what a bad value of the option being parsed should have been */
	const char *want = NULL;
	unsigned long long v;
	int c;

	o->socket_path = getenv(UM_SOCKET_ENV);
	if (!o->socket_path || !*o->socket_path)
		o->socket_path = UM_DEFAULT_SOCKET;
	o->mode = 0660;
	o->ack_timeout_ms = 1000;
	o->result_size = 4u << 20;
	o->revalidate_ms = 1000;
	o->write_granule = 512;
	limits_cfg_defaults(&o->limits);
	/* the environment is the default: test suites run a daemon per test */
	if (kfeat_parse_mask(getenv("UMIRRORD_MASK_FEATURES"), &o->mask_features))
		return -EINVAL;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'm':
			want = "an octal mode, 0 to 07777";
			if (parse_u64(optarg, 8, 0, 07777, &v))
				goto bad;
			o->mode = v;
			break;
		case 'g':
			if (resolve_group("--group", optarg, &o->group))
				return -EINVAL;
			o->group_set = true;
			break;
		case 'a':
			want = "milliseconds, 1 to 3600000";
			if (parse_u64(optarg, 10, 1, 3600000, &v))
				goto bad;
			o->ack_timeout_ms = v;
			break;
		case 'r':
			/* whole pages, and it must fit um_hello_reply.result_size */
			want = "bytes, a multiple of 4096 from 4096 to 2147483648";
			if (parse_u64(optarg, 10, UMP_PAGE_SIZE, 1ull << 31, &v) ||
			    v % UMP_PAGE_SIZE)
				goto bad;
			o->result_size = v;
			break;
		case 'C':
			want = "a decimal number, 0 for unlimited";
			if (parse_u64(optarg, 10, 0, UINT32_MAX, &v))
				goto bad;
			limits_cfg_set(&o->limits, LIMIT_CLIENTS, v);
			break;
		case 'I':
			want = "a decimal number, 0 for unlimited";
			if (parse_u64(optarg, 10, 0, UINT32_MAX, &v))
				goto bad;
			limits_cfg_set(&o->limits, LIMIT_INTERVALS, v);
			break;
		case 'B':
			want = "bytes, decimal, 0 for unlimited";
			if (parse_u64(optarg, 10, 0, UINT64_MAX, &v))
				goto bad;
			limits_cfg_set(&o->limits, LIMIT_BYTES, v);
			break;
		case 'R':
			o->limits.limit_root = true;
			break;
		case 'G':
			if (resolve_group("--pfn-group", optarg, &o->pfn_group))
				return -EINVAL;
			o->pfn_group_set = true;
			break;
		case 'W':
			/* below 10 ms the scan would keep the loop busy */
			want = "milliseconds, 0 (off) or 10 to 3600000";
			if (parse_u64(optarg, 10, 0, 3600000, &v) || (v && v < 10))
				goto bad;
			o->revalidate_ms = v;
			break;
		case 'K':
			want = "pages, 1 to 512";
			if (parse_u64(optarg, 10, 1, 512, &v))
				goto bad;
			o->write_granule = (unsigned int)v;
			break;
		case 'S':
			no_sandbox = true;
			break;
		case 'T':
			want = "allow or forbid";
			if (strcmp(optarg, "allow") && strcmp(optarg, "forbid"))
				goto bad;
			o->trap_forbid = !strcmp(optarg, "forbid");
			break;
		case 'M':
			if (kfeat_parse_mask(optarg, &o->mask_features))
				return -EINVAL;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
			printf("umirrord %s (protocol %d)\n", UMD_VERSION, UM_PROTO_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			/* getopt said what was wrong; this says it at error priority */
			log_error("bad command line at '%s' (see umirrord --help)",
				  argv[optind - 1]);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
bad:
	/* getopt left the option as it was written in argv[optind - 1] (or - 2) */
	log_error("%s: bad value '%s': want %s", option_name(argc, argv, optarg), optarg, want);
	return -EINVAL;
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
	uring_global_init(srv.opt.mask_features & UM_KFEAT_IO_URING);
	srv.kf.io_uring = uring_global() != NULL;
	listen_desc(desc, sizeof(desc));
	log_info("listening on %s", desc);
	if (srv.opt.pfn_group_set)
		log_info("real PFNs shown to gid %u and CAP_SYS_ADMIN peers%s",
			 (unsigned int)srv.opt.pfn_group,
			 srv.kf.pfn_visible ? "" : " (but this daemon sees none itself)");
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
