/* SPDX-License-Identifier: MIT */
/*
 * pidfd.h - what a pidfd says about its process, without waiting.
 */
#ifndef UMD_PIDFD_H
#define UMD_PIDFD_H

#include <poll.h>
#include <stdbool.h>

/**
 * pidfd_alive() - has the process behind @pidfd not exited yet?
 * A pidfd polls readable once its process has exited; a zero-timeout
 * poll asks without waiting. Return: true while it runs.
 */
static inline bool pidfd_alive(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

#endif /* UMD_PIDFD_H */
