/* SPDX-License-Identifier: MIT */
/*
 * dispatch.h - the daemon's requests: one table from request type to
 * handler, above the connections (peer.c) and the modules that do the
 * work (mm, snapshot, fault, place, dirty, grant, scan, inval).
 */
#ifndef UMD_DISPATCH_H
#define UMD_DISPATCH_H

struct client;
struct ump_msg;

/**
 * dispatch_request() - handle one decoded request of @c and answer it.
 * @c: the connection it came on (not dropping)
 * @m: a request ump_proto_decode() accepted (UMP_SIDE_DAEMON)
 * @fd: the fd that came with it, or -1; consumed in every case
 *
 * A request before HELLO drops @c. Otherwise the type's handler runs and
 * its reply (the reply type's size, from the message list) is sent, or
 * parked by the handler (FAULT, PLACE) and sent by it later; ACK and
 * POPULATE_DONE get none. Never blocks. Installed as the server's
 * dispatch hook (struct server.dispatch) by whoever calls server_init().
 */
void dispatch_request(struct client *c, const struct ump_msg *m, int fd);

#endif /* UMD_DISPATCH_H */
