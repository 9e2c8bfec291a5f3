/* SPDX-License-Identifier: MIT */
/*
 * children.h - the children of an owner, as /proc/PID/task/TID/children
 * lists them: what fork following (fork.c) tells a new child apart by.
 */
#ifndef UMD_CHILDREN_H
#define UMD_CHILDREN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm_types.h"

/**
 * mm_fork_note_children() - remember @mm's owner's children now, so that a
 * later fork's child is told apart from them (UM_INSERT_FOLLOW_FORK).
 * Reads /proc/PID/task/TID/children; holds nothing. Errors keep the old list.
 */
void mm_fork_note_children(struct mm *mm);

/* a set of pids */
struct pidset {
	pid_t *v;
	size_t n, cap;
};

/** pid_in() - is @pid one of @v[0..@n)? */
bool pid_in(const pid_t *v, size_t n, pid_t pid);

/**
 * read_children() - the children of every thread of @pid into @out
 * (reallocated as needed; free @out->v). Reads /proc; holds nothing.
 * Return: 0 or -errno (@out holds what was read).
 */
int read_children(pid_t pid, struct pidset *out);

#endif /* UMD_CHILDREN_H */
