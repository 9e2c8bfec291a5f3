/* SPDX-License-Identifier: MIT */
/*
 * call.h - the round trip and the reader role (library-private).
 *
 * call.c is the only module that reads the socket. Replies go to the
 * thread waiting for them; everything else the daemon sends (events, and
 * the connection's death) goes to the one sink um_connect() installs, so
 * this floor never calls up into interval.c or fault.c.
 */
#ifndef UM_CALL_H
#define UM_CALL_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "types.h"

#define UM_REQUEST_TIMEOUT_MS 10000

/*
 * call_sink - where the reader reports what is not a reply. Set once in
 * c->sink before the first call_roundtrip().
 * @event: one UMP_EV_* message; runs on the thread holding the reader role,
 *	no lock held; callbacks may run from it; it owns m->fd (closes it)
 * @dead_locked: the connection just died; c->lock held, c->dead already
 *	set, the waiter already told: wake whatever waits on shared memory
 * @dead: then, with no lock held, still holding the reader role: release
 *	callbacks may run from it
 */
struct call_sink {
	void (*event)(struct um_client *c, const struct conn_msg *m);
	void (*dead_locked)(struct um_client *c);
	void (*dead)(struct um_client *c);
};

/**
 * call_lock() - take the request lock.
 * Return: 0 with req_lock held; -EDEADLK when called from a callback
 * (the reply could only be read by this very thread, which is busy).
 * Waits for: another thread's request to finish.
 */
int call_lock(struct um_client *c);

/** call_unlock() - drop the request lock. */
void call_unlock(struct um_client *c);

/**
 * call_roundtrip() - one request/reply round trip. Caller holds req_lock.
 * @c: client
 * @type: UMP_MSG_* request
 * @body, @len: request body
 * @send_fd: fd to pass with it or -1 (not closed here)
 * @reply: receives the reply; reply->fd is the caller's to close
 * @timeout_ms: how long to wait for the reply
 * @hook: run by the reader on a successful reply of the right type, or NULL
 *
 * Waits for: the reply (reading the socket itself when no other thread
 * does, running callbacks then). Holds: req_lock (the caller's).
 * Return: the reply's status (0 or -errno from the daemon), or -ENOTCONN,
 * -ETIMEDOUT, -EPROTO (a reply of the wrong type). reply->fd is -1
 * whenever the return is not 0 or a daemon status.
 */
int call_roundtrip(struct um_client *c, uint16_t type, const void *body, size_t len, int send_fd,
		   struct conn_msg *reply, int timeout_ms, const struct call_hook *hook);

/**
 * call_oneway() - send a message that has no reply (an ack, a
 * POPULATE_DONE). Needs no req_lock, so the reader and the populate worker
 * may send while a request waits.
 * Waits for: socket buffer space. Holds: send_lock meanwhile.
 * Return: 0 or -errno (ignored by callers: a dead connection needs no answer).
 */
int call_oneway(struct um_client *c, uint16_t type, const void *body, size_t len);

/**
 * call_start_reader() - start the event thread, which holds the reader
 * role until the connection dies or um_disconnect() shuts it down.
 * Signals are blocked on it: they go to the application's threads.
 * Return: 0 or -errno from pthread_create(). Holds nothing.
 */
int call_start_reader(struct um_client *c);

/**
 * call_in_callback() - is this thread running a library callback?
 * Return: true inside any callback (thread-local; waits for and holds nothing).
 */
bool call_in_callback(void);

/**
 * call_callback_enter() - mark this thread as running a callback.
 * @iv: the interval whose callback runs, NULL for the watch callback
 *
 * Requests made from the callback then fail with -EDEADLK instead of
 * waiting for a reply only this thread could read. Holds nothing.
 */
void call_callback_enter(struct um_interval *iv);

/** call_callback_exit() - the callback returned. Holds nothing. */
void call_callback_exit(void);

/**
 * call_current_callback() - the interval whose callback this thread runs.
 * Return: the interval, or NULL (thread-local; waits for and holds nothing).
 */
struct um_interval *call_current_callback(void);

/**
 * call_now_ms() - CLOCK_MONOTONIC in milliseconds, for deadlines.
 * Return: the time. Waits for and holds nothing.
 */
int64_t call_now_ms(void);

#endif /* UM_CALL_H */
