/* SPDX-License-Identifier: MIT */
/*
 * commands.h - umirrorctl's commands, each a parser of its operands
 * (<name>_args: 0, or 2 after a usage message; waits for nothing) and
 * the command itself (cmd_<name>: connected, returns its exit status
 * having said why if not 0; holds nothing on return). umirrorctl.c's
 * table names them; ctl.h has the types.
 */
#ifndef UMIRRORCTL_COMMANDS_H
#define UMIRRORCTL_COMMANDS_H

#include "ctl.h"

/* status: version, counters and kernel features (cmd_status.c). Waits for: STATUS. */
int cmd_status(struct um_client *c, const struct opts *o, const struct cmd_args *a);

/* list: every interval the daemon mirrors, one line each (cmd_status.c). Waits for: LIST. */
int cmd_list(struct um_client *c, const struct opts *o, const struct cmd_args *a);

/*
 * show PID ADDR[+LEN]: one raw snapshot of the range, and the intervals
 * covering it (cmd_show.c). Waits for: SNAPSHOT and LIST.
 */
int show_args(int argc, char **argv, struct cmd_args *a);
int cmd_show(struct um_client *c, const struct opts *o, const struct cmd_args *a);

/*
 * dirty PID [ADDR[+LEN]]: the written pages of PID's intervals over the
 * range (no range: all of them), repeated with --interval (cmd_dirty.c).
 * Waits between samples; ends on SIGINT/SIGTERM or --count samples.
 */
int dirty_args(int argc, char **argv, struct cmd_args *a);
int cmd_dirty(struct um_client *c, const struct opts *o, const struct cmd_args *a);

/*
 * watch [PID]: invalidations until SIGINT/SIGTERM, --count of them, or
 * PID has no live interval left (cmd_watch.c). Waits for events.
 */
int watch_args(int argc, char **argv, struct cmd_args *a);
int cmd_watch(struct um_client *c, const struct opts *o, const struct cmd_args *a);

#endif /* UMIRRORCTL_COMMANDS_H */
