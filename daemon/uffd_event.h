/* SPDX-License-Identifier: MIT */
/*
 * uffd_event.h - the uffd event source: reads an owner's userfaultfds and
 * turns each message (write fault, REMOVE, UNMAP, REMAP, FORK) into
 * invalidations.
 */
#ifndef UMD_UFFD_EVENT_H
#define UMD_UFFD_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

/**
 * uffd_event_cb() - the poll callback of an mm's uffds (installed as
 * server.hooks.uffd_cb): read up to 16 batches of messages and handle
 * each. @p's data is the mm, which may be dead (released) afterwards.
 */
void uffd_event_cb(uv_poll_t *p, int status, int events);

#endif /* UMD_UFFD_EVENT_H */
