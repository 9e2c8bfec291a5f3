/* SPDX-License-Identifier: MIT */
/*
 * server.h - the daemon's listening socket: init, accept, shutdown. The
 * top floor: installs the hooks the lower floors call up through.
 */
#ifndef UMD_SERVER_H
#define UMD_SERVER_H

#include <uv.h>

#include "peer.h"
#include "server_types.h"

/**
 * server_init() - probe the kernel, create the listening socket, start
 * polling it and the timers on @loop.
 * @s: zeroed server, opt and dispatch filled by the caller
 * @loop: the loop everything runs on
 *
 * Return: 0, or -errno (the socket path is in use by a live daemon:
 * -EADDRINUSE; no dispatch hook: -EINVAL). Logs the reason.
 */
int server_init(struct server *s, uv_loop_t *loop);

/**
 * server_shutdown() - release every address space (their writers resume),
 * drop every client, close the listening socket and unlink its path.
 * After it the loop has only closing handles left; uv_run() finishes them.
 */
void server_shutdown(struct server *s);

#endif /* UMD_SERVER_H */
