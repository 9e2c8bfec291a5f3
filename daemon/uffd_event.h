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
#include "server_types.h"

/**
 * uffd_event_cb() - the poll callback of an mm's uffds (installed as
 * server.hooks.uffd_cb): read up to 16 batches of messages and handle
 * each. @p's data is the mm, which may be dead (released) afterwards.
 */
void uffd_event_cb(uv_poll_t *p, int status, int events);

/**
 * uffd_event_init() - the uffd epoll set of @s: every mm's uffds are
 * added to it (mm.c) and read through it, by the loop and by
 * uffd_event_tick(); a check handle handles at the end of each loop turn
 * the write faults read during it. Installs server.hooks.uffd_cb and
 * .tick. Returns 0 or a negative errno (epoll_create1()).
 */
int uffd_event_init(struct server *s);

/**
 * uffd_event_tick() - between two pieces of other work (server.hooks.tick,
 * each message a connection sends): if no look at the uffds was made for
 * 5 us, read one batch from every ready uffd and handle at once the
 * address spaces with an event other than a write fault (REMOVE, UNMAP,
 * REMAP, FORK); the write faults read wait for the end of the loop turn
 * (docs/ARCHITECTURE.md, "The uffd event source"). Never nested in a look
 * or in handling; waits for nothing. Returns true if it handled any
 * event: then anything may have changed (a connection may be dropping),
 * and the caller should end its turn.
 */
bool uffd_event_tick(struct server *s);

/** uffd_event_fini() - close the uffd epoll set (at shutdown, after every mm). */
void uffd_event_fini(struct server *s);

#endif /* UMD_UFFD_EVENT_H */
