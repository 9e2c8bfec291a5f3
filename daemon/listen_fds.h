/* SPDX-License-Identifier: MIT */
/*
 * listen_fds.h - socket activation: adopt the listening socket systemd
 * passed ($LISTEN_PID, $LISTEN_FDS, fds from 3 on), by hand.
 */
#ifndef UMD_LISTEN_FDS_H
#define UMD_LISTEN_FDS_H

#include <stdbool.h>

#define LISTEN_FDS_START 3

/**
 * listen_fds_take() - adopt the socket-activated listening socket, if any.
 * @fd: set to the adopted fd (O_NONBLOCK and FD_CLOEXEC now set), else -1
 *
 * Only when $LISTEN_PID is this process and $LISTEN_FDS >= 1: fd 3 must
 * be an AF_UNIX SOCK_SEQPACKET socket in the listening state. The
 * variables are unset either way they were meant for us, so nothing we
 * might start inherits them. Extra fds beyond the first are refused:
 * umirrord.socket names exactly one. The socket's path is not ours to
 * unlink or chmod: the socket unit made it and keeps it across restarts.
 *
 * Return: 1 adopted, 0 not socket-activated (bind as usual), -errno when
 * the passed fds are not what the daemon can serve (logged: a unit file
 * mistake should stop the daemon, not leave it listening elsewhere).
 */
int listen_fds_take(int *fd);

/** listen_fds_adopted() - true after listen_fds_take() returned 1. */
bool listen_fds_adopted(void);

#endif /* UMD_LISTEN_FDS_H */
