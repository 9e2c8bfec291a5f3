/* SPDX-License-Identifier: MIT */
/*
 * transport.h - one datagram over a SOCK_SEQPACKET Unix socket, with file
 * descriptors passed as SCM_RIGHTS: the only sendmsg/recvmsg of the
 * daemon, the library and the fuzzer.
 *
 * Nothing here knows the wire format (umirror_proto.h): it moves bytes
 * and fds, and tells truncation apart from a message, so that no caller
 * ever decodes a cut datagram or loses track of an fd.
 */
#ifndef UM_TRANSPORT_H
#define UM_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

#include "umirror_proto.h"

/*
 * The most fds one datagram may carry, and the control space a receive
 * offers: above UMP_MSG_MAX_FDS, so that a peer sending one fd too many is
 * seen (counted, and the extra closed) rather than cut off by MSG_CTRUNC.
 */
#define UM_TRANSPORT_MAX_FDS 8
_Static_assert(UM_TRANSPORT_MAX_FDS > UMP_MSG_MAX_FDS, "room to see an fd too many");

/**
 * ump_transport_send() - send one datagram, with @nfds fds attached.
 * @sock: a connected SOCK_SEQPACKET socket
 * @buf, @len: the datagram
 * @fds: fds to pass (SCM_RIGHTS), not closed here; NULL when @nfds is 0
 * @nfds: how many, at most UM_TRANSPORT_MAX_FDS
 * @flags: extra sendmsg(2) flags (MSG_DONTWAIT); MSG_NOSIGNAL is implied
 *
 * A record goes whole or not at all. Retries EINTR.
 * Waits for: socket buffer space, unless @flags has MSG_DONTWAIT.
 * Holds: nothing; the caller serialises senders.
 * Return: 0; -EINVAL too many fds; -EAGAIN the buffer is full (MSG_DONTWAIT);
 * -EPIPE, -ECONNRESET the peer is gone; another -errno of sendmsg(2).
 */
int ump_transport_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds,
		       int flags);

/**
 * ump_transport_recv() - receive one datagram and the fds that came with it.
 * @sock: a connected SOCK_SEQPACKET socket
 * @buf, @size: where the datagram goes
 * @fds: receives the first min(*@nfds, @max_fds) fds, close-on-exec; the
 *	caller owns them (closes them) whatever it does with the datagram
 * @max_fds: the room in @fds (may be 0)
 * @nfds: how many fds came, including those beyond @max_fds, which are
 *	closed here: a decoder that counts fds sees the true number
 * @flags: extra recvmsg(2) flags (MSG_DONTWAIT); MSG_CMSG_CLOEXEC is implied
 *
 * Retries EINTR. Waits for: a datagram, unless @flags has MSG_DONTWAIT.
 * Holds: nothing.
 * Return: the datagram's length (> 0); 0 the peer hung up (end of file);
 * -EAGAIN nothing to read (MSG_DONTWAIT); -EMSGSIZE the datagram was longer
 * than @size (MSG_TRUNC); -EBADMSG the control data was cut (MSG_CTRUNC:
 * more fds than UM_TRANSPORT_MAX_FDS) or was not SCM_RIGHTS; another
 * -errno of recvmsg(2). On every return <= 0, *@nfds is 0 and every fd
 * that came is closed.
 */
ssize_t ump_transport_recv(int sock, void *buf, size_t size, int *fds, unsigned int max_fds,
			   unsigned int *nfds, int flags);

#endif /* UM_TRANSPORT_H */
