/* SPDX-License-Identifier: MIT */
/*
 * fork.h - following forks (UM_INSERT_FOLLOW_FORK): the child of a
 * UFFD_EVENT_FORK gets an address space of its own with copies of the
 * followed intervals.
 */
#ifndef UMD_FORK_H
#define UMD_FORK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

/**
 * fork_follow() - UFFD_EVENT_FORK of @mm with the child's uffd @ufd
 * (consumed): keep it while the child is looked for (a timer), or close
 * it when @mm follows no fork. Waits for nothing.
 */
void fork_follow(struct mm *mm, int ufd);

#endif /* UMD_FORK_H */
