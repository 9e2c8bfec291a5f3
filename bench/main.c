// SPDX-License-Identifier: MIT
/*
 * umirror-bench - umirror's figures against baselines run side by side.
 *
 * Starts its own umirrord on a private socket (or uses --socket PATH),
 * connects once, runs the selected benchmarks and prints one JSON object
 * per result line on stdout. Diagnostics go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "daemon.h"

#ifndef UMIRRORD_PATH
#error "UMIRRORD_PATH must name the umirrord to start (set by bench/CMakeLists.txt)"
#endif

static struct bench_daemon daemon_;

/* Print a double as JSON: null for NaN/inf (JSON has no such numbers). */
static void json_num(const char *key, double v, bool comma)
{
	if (isfinite(v))
		printf("\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		printf("\"%s\":null%s", key, comma ? "," : "");
}

/* Our strings are literals without quotes or backslashes; escape anyway. */
static void json_str(const char *key, const char *s, bool comma)
{
	printf("\"%s\":", key);
	if (!s) {
		printf("null%s", comma ? "," : "");
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s < 0x20)
			putchar(' ');
		else
			putchar(*s);
	}
	printf("\"%s", comma ? "," : "");
}

void bench_report(const struct bench_result *r)
{
	double ratio = r->higher_is_better ? r->baseline / r->value : r->value / r->baseline;
	const char *meets = "null";

	if (isfinite(r->target) && isfinite(ratio))
		meets = (r->higher_is_better ? ratio >= r->target : ratio <= r->target) ? "true"
											: "false";
	putchar('{');
	json_str("bench", r->bench, true);
	json_num("value", r->value, true);
	json_str("unit", r->unit, true);
	json_num("baseline", r->baseline, true);
	json_str("baseline_name", r->baseline_name, true);
	json_num("ratio", ratio, true);
	json_str("ratio_kind", r->higher_is_better ? "higher_is_better" : "lower_is_better", true);
	json_num("target", r->target, true);
	json_num("goal", r->goal, true);
	if (r->p99 > 0)
		json_num("p99", r->p99, true);
	if (r->baseline_p99 > 0)
		json_num("baseline_p99", r->baseline_p99, true);
	printf("\"meets_target\":%s,\"runs\":%u,", meets, r->runs);
	json_str("note", r->note, false);
	printf("}\n");
	fflush(stdout);
}

void bench_fail(const char *bench, int err, const char *why, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, why);
	vsnprintf(msg, sizeof(msg), why, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, "umirror-bench: %s: %s: %s\n", bench, msg, strerror(-err));
	else
		fprintf(stderr, "umirror-bench: %s: %s\n", bench, msg);
	putchar('{');
	json_str("bench", bench, true);
	json_str("error", msg, true);
	printf("\"errno\":%d}\n", -err);
	fflush(stdout);
}

/* Ctrl-C: do not leave the private daemon or its directory behind. */
static void on_signal(int sig)
{
	if (daemon_.pid > 0)
		kill(daemon_.pid, SIGTERM);
	if (daemon_.dir[0]) {
		unlink(daemon_.socket);
		unlink(daemon_.log);
		rmdir(daemon_.dir);
	}
	_exit(128 + sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umirror-bench [--quick] [--only B1|B1s|B2|B3|B4|B5|B6|B7|B8|MEM[,...]] "
		"[--runs N]\n"
		"                     [--load N] [--socket PATH]\n"
		"  --quick        few repetitions (about a minute)\n"
		"  --load N       B2: load clients for the under-load figures (default 64)\n"
		"  --only LIST    run only these benchmarks\n"
		"  --runs N       measured/baseline pairs per benchmark (overrides the default)\n"
		"  --socket PATH  use a running umirrord instead of starting %s\n"
		"Prints one JSON object per result on stdout.\n",
		UMIRRORD_PATH);
}

static const struct {
	const char *name;
	int (*fn)(struct um_client *c, const struct bench_opts *o);
} benches[] = {
	/* MEM and B7 first: they read the daemon's RSS, which later runs' freed heap would hide */
	{ "MEM", bench_mem },	     { "B7", bench_b7_scale },	    { "B1", bench_b1_snapshot },
	{ "B1s", bench_b1s_sparse }, { "B2", bench_b2_delivery },   { "B3", bench_b3_first_write },
	{ "B4", bench_b4_dirty },    { "B5", bench_b5_read_retry }, { "B6", bench_b6_uring },
	{ "B8", bench_b8_trap },
};

/* True if @name appears as a comma-separated item of @list (or no list). */
static bool selected(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (!list)
		return true;
	for (p = list; (p = strcasestr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

/* "N" in 1..@max for option @name, into *@out. Return: 0, or 2 (said on stderr). */
static int parse_count(const char *name, const char *arg, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end || errno || v == 0 || v > max) {
		fprintf(stderr, "umirror-bench: --%s: 1..%lu\n", name, max);
		return 2;
	}
	*out = (unsigned int)v;
	return 0;
}

/*
 * Fills @o, *@only and *@socket_path from the command line.
 * Return: -1 to go on, or the exit status (0 after --help, 2 on a usage error).
 */
static int parse_args(int argc, char **argv, struct bench_opts *o, const char **only,
		      const char **socket_path)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "runs", required_argument, NULL, 'r' },
		{ "load", required_argument, NULL, 'l' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool any = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "qo:r:l:s:h", opts, NULL)) != -1) {
		int ret = 0;

		switch (opt) {
		case 'q':
			o->quick = true;
			break;
		case 'o':
			*only = optarg;
			break;
		case 'r':
			ret = parse_count("runs", optarg, 10000, &o->runs);
			break;
		case 'l':
			ret = parse_count("load", optarg, 1024, &o->load);
			break;
		case 's':
			*socket_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (ret)
			return ret;
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		any |= selected(*only, benches[i].name);
	if (!any) {
		fprintf(stderr,
			"umirror-bench: --only %s selects nothing (B1, B1s, B2, B3, B4, B5, B6, "
			"B7, B8, MEM)\n",
			*only);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	const char *only = NULL, *socket_path = NULL;
	struct um_client *c = NULL;
	int ret, failed = 0;
	size_t i;

	ret = parse_args(argc, argv, &o, &only, &socket_path);
	if (ret >= 0)
		return ret;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!socket_path) {
		ret = bench_daemon_start(&daemon_, UMIRRORD_PATH, 5000);
		if (ret < 0) {
			fprintf(stderr, "umirror-bench: starting %s: %s\n", UMIRRORD_PATH,
				ret == -ECHILD ? "it exited before it listened" : strerror(-ret));
			bench_daemon_print_log(&daemon_);
			bench_daemon_stop(&daemon_);
			return 1;
		}
		socket_path = daemon_.socket;
	}
	o.socket = socket_path;

	ret = um_connect(socket_path, 0, &c);
	if (ret < 0) {
		fprintf(stderr, "umirror-bench: um_connect(%s): %s\n", socket_path, strerror(-ret));
		failed = 1;
		goto out;
	}
	for (i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		if (selected(only, benches[i].name) && benches[i].fn(c, &o) < 0)
			failed = 1;
	um_disconnect(c);
out:
	if (failed)
		bench_daemon_print_log(&daemon_);
	if (daemon_.pid > 0 && bench_daemon_stop(&daemon_) != 0) {
		fprintf(stderr, "umirror-bench: the private umirrord did not exit cleanly\n");
		failed = 1;
	}
	bench_daemon_stop(&daemon_);
	return failed;
}
