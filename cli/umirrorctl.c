/* SPDX-License-Identifier: MIT */
/*
 * umirrorctl - look at what umirrord mirrors.
 *
 *   umirrorctl [--socket PATH] [--json] status
 *   umirrorctl [--socket PATH] [--json] list
 *   umirrorctl [--socket PATH] [--json] [GRID] show PID ADDR[+LEN]
 *   umirrorctl [--socket PATH] [--json] [GRID] [--rearm] [--interval MS [--count N]]
 *              dirty PID [ADDR[+LEN]]
 *   umirrorctl [--socket PATH] [--json] [--count N] watch [PID]
 *
 * A plain libumirror client: it never inserts an interval, so it never
 * creates a userfaultfd (dirty subscribes, asynchronously, to the
 * intervals it harvests). The connection is UM_CONNECT_MANUAL: watch
 * dispatches events on the main thread, beside a signalfd.
 *
 * This file is the command line: the options, the table of commands
 * (each in a cmd_*.c of its own) and main(). Exit status: 0 ok, 1 error
 * (message on stderr), 2 usage (one line saying what was wrong, then
 * where help is, as ip(8) and systemctl(1) do).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "grid.h"
#include "json.h"

static const struct cmd commands[] = {
	{ "status", "status", "daemon version, counters, kernel features", CMD_NO_ARGS, NULL,
	  cmd_status },
	{ "list", "list", "intervals the daemon mirrors", CMD_NO_ARGS, NULL, cmd_list },
	{ "show", "show PID ADDR[+LEN]",
	  "page map of a mirrored process (hex ADDR,\n"
	  "LEN in bytes with optional K/M/G; default one page)",
	  CMD_GRID, show_args, cmd_show },
	{ "dirty", "dirty PID [ADDR[+LEN]]", "pages written since armed, of PID's intervals",
	  CMD_GRID | CMD_REPEAT | CMD_COUNT_REPEAT, dirty_args, cmd_dirty },
	{ "watch", "watch [PID]", "print invalidations until interrupted or PID is gone", CMD_COUNT,
	  watch_args, cmd_watch },
};

/* where the help texts of commands and options start */
#define HELP_COLUMN 25

/* "  NAME<pad> help", each further line of @help indented to HELP_COLUMN */
static void print_help_entry(FILE *f, const char *name, const char *help)
{
	const char *nl;

	fprintf(f, "  %-*s ", HELP_COLUMN - 3, name);
	while ((nl = strchr(help, '\n'))) {
		fprintf(f, "%.*s\n%*s", (int)(nl - help), help, HELP_COLUMN, "");
		help = nl + 1;
	}
	fprintf(f, "%s\n", help);
}

static int usage(FILE *f, int status)
{
	fprintf(f, "Usage: %s [OPTIONS] COMMAND\n\nCommands:\n", prog);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		print_help_entry(f, commands[i].synopsis, commands[i].help);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -s, --socket PATH      daemon socket (default $%s, else %s)\n"
		"  -j, --json             machine-readable output\n"
		"  -p, --pretty           JSON indented for people (implies --json)\n"
		"  -n, --count N          watch: exit after N invalidations;\n"
		"                         dirty --interval: after N samples\n"
		"      --scale N          show, dirty: N pages per cell (default: automatic)\n"
		"      --color[=WHEN]     auto (a terminal, no $NO_COLOR), always, never\n"
		"      --no-legend        show, dirty: no legend line\n"
		"      --rearm            dirty: re-arm what is reported (the owner's\n"
		"                         own harvest then misses it)\n"
		"  -i, --interval MS      dirty: harvest every MS ms, print the rate\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n",
		"UMIRROR_SOCKET", DEFAULT_SOCKET);
	return status;
}

/* parse_options() result: no exit yet, go on to the command */
#define GO_ON (-1)

enum { OPT_SCALE = 256, OPT_COLOR, OPT_NO_LEGEND, OPT_REARM };

/*
 * The options before the command into @o; *@grid_opt whether one of the
 * grid's was given. Return: GO_ON, or the exit status (--help,
 * --version, 2 after a usage message).
 */
static int parse_options(int argc, char **argv, struct opts *o, bool *grid_opt)
{
	static const struct option longopts[] = { { "socket", required_argument, NULL, 's' },
						  { "json", no_argument, NULL, 'j' },
						  { "pretty", no_argument, NULL, 'p' },
						  { "count", required_argument, NULL, 'n' },
						  { "scale", required_argument, NULL, OPT_SCALE },
						  { "color", optional_argument, NULL, OPT_COLOR },
						  { "colour", optional_argument, NULL, OPT_COLOR },
						  { "no-legend", no_argument, NULL, OPT_NO_LEGEND },
						  { "rearm", no_argument, NULL, OPT_REARM },
						  { "interval", required_argument, NULL, 'i' },
						  { "help", no_argument, NULL, 'h' },
						  { "version", no_argument, NULL, 'V' },
						  {} };
	const char *color = "auto";
	int opt, ret = 0;

	while (!ret && (opt = getopt_long(argc, argv, "s:jpn:i:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->socket = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'p':
			/* pretty JSON is still JSON: --pretty implies --json */
			o->json = true;
			json_set_pretty(true);
			break;
		case 'n':
			ret = positive_arg("--count", optarg, UINT64_MAX, &o->count);
			break;
		case 'i':
			/* a day: anything longer is a typo */
			ret = positive_arg("--interval", optarg, 86400000, &o->interval_ms);
			break;
		case OPT_SCALE:
			ret = positive_arg("--scale", optarg, SHOW_MAX_PAGES, &o->scale);
			*grid_opt = true;
			break;
		case OPT_COLOR:
			color = optarg ? optarg : "always";
			if (grid_want_color(stdout, color) < 0)
				return usage_error("--color wants auto, always or never, not '%s'",
						   color);
			*grid_opt = true;
			break;
		case OPT_NO_LEGEND:
			o->no_legend = true;
			*grid_opt = true;
			break;
		case OPT_REARM:
			o->rearm = true;
			break;
		case 'h':
			return usage(stdout, 0);
		case 'V':
			printf("umirrorctl %s\n", UMIRROR_VERSION_STRING);
			return 0;
		default:
			/* getopt said what was wrong */
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return 2;
		}
	}
	o->color = grid_want_color(stdout, color) > 0;
	return ret ? ret : GO_ON;
}

/* "status, list, show, dirty or watch" */
static const char *command_names(void)
{
	static char names[128];
	size_t len = 0;

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		len += snprintf(names + len, sizeof(names) - len, "%s%s",
				!i			       ? ""
				: i + 1 < ARRAY_SIZE(commands) ? ", "
							       : " or ",
				commands[i].name);
	return names;
}

static const struct cmd *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* whether @cmd takes what it was given: 0, or 2 after a usage message */
static int check_applies(const struct cmd *cmd, const struct opts *o, bool grid_opt, int argc,
			 char **argv)
{
	unsigned int f = cmd->flags;

	if ((f & CMD_NO_ARGS) && argc)
		return usage_error("%s takes no arguments, got '%s'", cmd->name, argv[0]);
	if (o->count && !(f & CMD_COUNT) && !(o->interval_ms && (f & CMD_COUNT_REPEAT)))
		return usage_error("--count only applies to watch and dirty --interval");
	if ((o->rearm || o->interval_ms) && !(f & CMD_REPEAT))
		return usage_error("--%s only applies to dirty", o->rearm ? "rearm" : "interval");
	if (grid_opt && !(f & CMD_GRID))
		return usage_error("--scale, --color and --no-legend only apply to show and dirty");
	return 0;
}

int main(int argc, char **argv)
{
	struct cmd_args a = { 0 };
	struct um_client *c = NULL;
	const struct cmd *cmd;
	struct opts o = { 0 };
	bool grid_opt = false;
	int ret;

	/* getopt names the program after argv[0]: not a build or install path */
	argv[0] = (char *)prog;
	ret = parse_options(argc, argv, &o, &grid_opt);
	if (ret != GO_ON)
		return ret;
	if (optind >= argc)
		return usage_error("no command given (%s)", command_names());
	cmd = find_command(argv[optind]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	argc -= optind + 1;
	argv += optind + 1;
	/* arguments are checked before connecting: usage errors stay 2 */
	ret = check_applies(cmd, &o, grid_opt, argc, argv);
	if (!ret && cmd->parse)
		ret = cmd->parse(argc, argv, &a);
	if (ret)
		return ret;
	if (connect_daemon(&o, &c) < 0)
		return 1;
	ret = cmd->run(c, &o, &a);
	um_disconnect(c);
	return ret;
}
