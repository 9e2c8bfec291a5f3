/* SPDX-License-Identifier: MIT */
/*
 * rawclient - a client that speaks the wire protocol by hand.
 *
 * Tests that must send what libumirror never sends (bad lengths, another
 * process's userfaultfd, messages out of order) use these instead of the
 * library. Every function fails the test (CHECK) on an unexpected socket
 * error; none of them hold anything beyond the socket the caller owns.
 */
#ifndef UMIRROR_IT_RAWCLIENT_H
#define UMIRROR_IT_RAWCLIENT_H

#include "umirror_proto.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The last message raw_recv() read (8-byte aligned, as the decoder wants). */
extern _Alignas(8) char raw_msg[UMP_MSG_MAX];

/** raw_connect() - a new SEQPACKET connection to the harness's daemon; returns its fd. */
int raw_connect(void);

/**
 * raw_send_bytes() - send @len bytes as one message, with @pass_fd as
 * SCM_RIGHTS when it is >= 0. Does not wait for an answer.
 */
void raw_send_bytes(int fd, const void *data, size_t len, int pass_fd);

/** raw_send() - encode (ump_proto_encode) and send one message; see raw_send_bytes(). */
void raw_send(int fd, uint16_t type, uint64_t id, const void *body, size_t len, int pass_fd);

/**
 * raw_recv() - wait up to 5 s for one message and read it into raw_msg;
 * fds that ride with it are closed. Returns its length, 0 on EOF or
 * connection reset; fails the test on timeout.
 */
ssize_t raw_recv(int fd);

/**
 * raw_reply() - raw_recv() a message that must be the reply of @type with
 * @id (fails the test otherwise); returns the reply's status.
 */
int32_t raw_reply(int fd, uint16_t type, uint64_t id);

/** raw_hello() - HELLO (id 1) that must be accepted; returns the daemon's kfeatures. */
uint64_t raw_hello(int fd);

#endif
