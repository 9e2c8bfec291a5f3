/* SPDX-License-Identifier: MIT */
/*
 * peer.h - one client connection: receive (decoded requests go to the
 * dispatch hook), send queue, identity, parked replies, teardown.
 *
 * A client that must go away is only marked (client_drop()); the actual
 * teardown happens from an idle handle after the current callback, so no
 * caller ever sees an object freed under its feet. What the teardown
 * must free above this floor (the mm, the receivers) goes through
 * server.hooks.client_gone.
 */
#ifndef UMD_PEER_H
#define UMD_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server_types.h"

/**
 * server_adopt_client() - serve @fd as a client connection, as if accepted.
 * @s: initialised server
 * @fd: connected nonblocking SOCK_SEQPACKET socket (CLOEXEC); ownership
 *      moves to this function in every case
 *
 * The peer is identified by SO_PEERCRED/SO_PEERPIDFD like any accepted
 * connection. The listening socket uses it; so does a transport test (a
 * socketpair's other end is then the client).
 * Return: 0, or -errno (@fd is closed, the reason logged).
 */
int server_adopt_client(struct server *s, int fd);

/**
 * peer_free() - free @c now (server shutdown): parked replies cancelled,
 * server.hooks.client_gone called, queue dropped, socket closed (its
 * memory once the poll handle has closed).
 */
void peer_free(struct client *c);

/**
 * peer_init() - set up @s's reaper (the idle handle that frees dropped
 * clients) on @s->loop. Return: 0.
 */
int peer_init(struct server *s);

/**
 * client_send() - send one message to @c, or queue it if the socket is full.
 * @c: client (a dropping client swallows the message)
 * @type: message type
 * @id: request id (0 for events)
 * @body: body, @len bytes (fits UMP_MSG_MAX)
 * @fd: fd to pass, or -1; ownership moves to this function in every case
 *
 * Never blocks. A queue beyond UMD_SENDQ_MAX plus UMD_SENDQ_PER_INTERVAL
 * per interval @c could hear of (its receivers; for a watcher every
 * interval; the most since the queue was last empty) marks @c for
 * dropping.
 * Return: 0 sent or queued; -ENOTCONN when @c is (now) being dropped.
 */
int client_send(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len, int fd);

/**
 * client_send_mark() - where the message client_send() just sent or
 * queued to @c stands: client_delivered(@c, mark) is true once it is in
 * the socket (at once when it was not queued).
 */
static inline uint64_t client_send_mark(const struct client *c)
{
	return c->sendq_in;
}

/** client_delivered() - has the message of client_send_mark() @mark left @c's queue? */
static inline bool client_delivered(const struct client *c, uint64_t mark)
{
	return c->sendq_out >= mark;
}

/**
 * client_flush() - send from @c's queue what its socket takes now (the
 * loop does it when the socket turns writable; a caller that judges the
 * queue after a long stretch of work does it first). May drop @c on a
 * send error. Never blocks.
 */
void client_flush(struct client *c);

/**
 * client_input_pending() - has @c sent something not read yet (a peek,
 * nothing is consumed)? After a long stretch of work the daemon may have
 * an acknowledgement waiting in the socket that it has not read.
 */
bool client_input_pending(const struct client *c);

/**
 * sendfd_new() - share @fd (consumed, also on failure) among messages.
 * Return: the sendfd with one reference (the caller's), or NULL
 * (-ENOMEM: @fd is closed).
 */
struct sendfd *sendfd_new(int fd);

/** sendfd_put() - drop a reference to @f; the last one closes its fd. */
void sendfd_put(struct sendfd *f);

/**
 * client_send_shared() - client_send() with @f's fd, which the message
 * holds a reference to until it is sent (the caller keeps its own).
 * Return: as client_send().
 */
int client_send_shared(struct client *c, uint16_t type, uint64_t id, const void *body, size_t len,
		       struct sendfd *f);

/**
 * client_reply() - answer request @id of @type from @c.
 * @status: 0 or -errno, written into the ump_reply_hdr that starts @body
 * @body: the reply body of @len bytes (the reply type's size), or NULL;
 *        on an error status it is zeroed (an error reply still has the
 *        type's full size and fd count)
 * @fd: fd to send with it, or -1; ownership moves here in every case. A
 *      reply type that carries an fd gets /dev/null when none is given.
 *
 * Never blocks (client_send()).
 */
void client_reply(struct client *c, uint16_t type, uint64_t id, int status, void *body, size_t len,
		  int fd);

/**
 * deferred_add() - park request @id of @type from @c until deferred_reply().
 * @cancel: called (instead of any reply) if @c is freed first
 */
void deferred_add(struct client *c, struct deferred *d, uint16_t type, uint64_t id,
		  void (*cancel)(struct deferred *d));

/**
 * deferred_reply() - answer a parked request and unlink @d (the caller
 * frees it). @body is the full reply body of @d->type (status is written
 * into its ump_reply_hdr); on an error status the body is zeroed as
 * every error reply is. Never blocks.
 */
void deferred_reply(struct deferred *d, int status, void *body, size_t len);

/**
 * client_drop() - mark @c for removal with a logged @reason (idempotent).
 * The teardown (owner release, acks counted as given, subscriptions ended)
 * runs later from the loop; until then @c receives nothing.
 */
void client_drop(struct client *c, const char *reason);

/**
 * client_drop_bad() - client_drop() of a client that broke the protocol
 * (bad message, request before HELLO, unknown version): logged as a
 * warning, not as info, since the program behind it has a bug to find.
 */
void client_drop_bad(struct client *c, const char *reason);

/**
 * client_may_see() - may @c see an address space owned by @owner_uid?
 * True for root peers and peers of the same uid.
 */
bool client_may_see(const struct client *c, uid_t owner_uid);

/**
 * server_watch_copy() - send @ev (with UMP_INV_WATCH) to every watcher of
 * the address space of @pid owned by @owner_uid.
 */
void server_watch_copy(struct server *s, pid_t pid, uid_t owner_uid,
		       const struct ump_ev_invalidate *ev);

/** server_now_ms() - the loop's clock in milliseconds. */
uint64_t server_now_ms(const struct server *s);

#endif /* UMD_PEER_H */
