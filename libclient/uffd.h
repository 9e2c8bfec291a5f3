/* SPDX-License-Identifier: MIT */
/*
 * uffd.h - create this process's userfaultfd and hand it to the daemon
 * (library-private).
 */
#ifndef UM_UFFD_H
#define UM_UFFD_H

#include "types.h"

/**
 * uffd_attach() - create a userfaultfd, ATTACH it, map the seq area.
 * @c: client; the caller holds its request lock
 *
 * Tries /dev/userfaultfd, then userfaultfd(2), then (on EPERM)
 * userfaultfd(2) with UFFD_USER_MODE_ONLY. Never calls UFFDIO_API: the
 * daemon does, with privileges the client may lack. Names a fresh private
 * page, written once, as ump_attach.probe (the daemon proves the uffd on
 * it) and unmaps it after the reply; -EAGAIN from the daemon (a fork or
 * mremap of ours met the proof) is tried again with a new uffd, up to 3
 * times. Closes the library's copy of the uffd whatever the daemon
 * answered, so that if the daemon dies this process's blocked writers
 * resume.
 *
 * Waits for: one round trip (per try). Holds: req_lock (the caller's);
 * c->lock briefly to publish the seq area.
 * Return: 0; -EPERM no userfaultfd could be created; the daemon's
 * status (-EBADF: not proven ours); -ENOTCONN; -ETIMEDOUT; -EPROTO a
 * malformed reply; -ENOMEM.
 */
int uffd_attach(struct um_client *c);

/**
 * uffd_attach_async() - create a second userfaultfd and ATTACH it with
 * UMP_ATTACH_ASYNC: the daemon enables WP_ASYNC on it for
 * UM_INTERVAL_TRACK_ASYNC intervals, with the same probe page proof and
 * retries as uffd_attach(). Closes the library's copy whatever the daemon
 * answered. Call after uffd_attach().
 * @c: client; the caller holds its request lock
 *
 * Waits for: one round trip. Holds: req_lock (the caller's).
 * Return: 0 (c->async_attached set); the daemon's status (-EOPNOTSUPP no
 * WP_ASYNC); -EPERM no userfaultfd; -ENOTCONN; -ETIMEDOUT.
 */
int uffd_attach_async(struct um_client *c);

#endif /* UM_UFFD_H */
