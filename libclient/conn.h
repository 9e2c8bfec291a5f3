/* SPDX-License-Identifier: MIT */
/*
 * conn.h - the socket to umirrord: connect, send one message, receive one.
 *
 * Nothing here knows about requests or events; it moves validated
 * datagrams (ump_proto_decode(UMP_SIDE_CLIENT)) and at most one fd each way.
 */
#ifndef UM_CONN_H
#define UM_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "umirror_proto.h"

/* A received message. buf is 8-byte aligned as the decoder requires. */
struct conn_msg {
	union {
		uint64_t align;
		unsigned char bytes[UMP_MSG_MAX];
	} buf;
	struct ump_msg msg; /* points into buf */
	int fd;		    /* the fd that came with it, or -1 */
};

/**
 * conn_open() - connect a SOCK_SEQPACKET socket to the daemon.
 * @path: socket path, or NULL for $UMIRROR_SOCKET, else UMP_DEFAULT_SOCKET
 * @fd: the connected socket (close-on-exec) on success
 *
 * Waits for: connect(2). Holds: nothing.
 * Return: 0, -ENAMETOOLONG, or connect's -errno (-ENOENT, -ECONNREFUSED ...).
 */
int conn_open(const char *path, int *fd);

/**
 * conn_send() - send one message, with @send_fd attached when >= 0.
 * @fd: socket
 * @buf: the encoded message (ump_proto_encode())
 * @len: its length
 * @send_fd: fd to pass (SCM_RIGHTS), or -1
 *
 * The caller serialises senders. Waits for: socket buffer space.
 * Return: 0, -ENOTCONN when the daemon is gone, or another -errno.
 */
int conn_send(int fd, const void *buf, size_t len, int send_fd);

/**
 * conn_recv() - receive and validate one message, without blocking.
 * @fd: socket
 * @m: filled on success; m->fd is -1 or an fd the caller now owns
 *
 * Every fd that arrives is received close-on-exec and closed here unless
 * handed out in @m. Holds nothing.
 * Return: 0 a message; -EAGAIN nothing to read; -ENOTCONN the daemon
 * closed the connection or broke the protocol (the connection is dead).
 */
int conn_recv(int fd, struct conn_msg *m);

/**
 * conn_recv_wait() - as conn_recv(), but waits for a message, the hang-up
 * or shutdown() of @fd (one system call where poll and receive take two).
 * Return: as conn_recv(); -EAGAIN also when a signal interrupted the wait.
 */
int conn_recv_wait(int fd, struct conn_msg *m);

/**
 * conn_poll() - wait until @fd is readable or hung up.
 * @fd: socket
 * @timeout_ms: <0 forever
 *
 * Waits for: @fd, up to @timeout_ms. Holds: nothing.
 * Return: 1 readable, 0 timed out, -errno (-EINTR).
 */
int conn_poll(int fd, int timeout_ms);

#endif /* UM_CONN_H */
