/* SPDX-License-Identifier: MIT */
/*
 * children.c - the children of an owner (children.h).
 */
#include "children.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

bool pid_in(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

int read_children(pid_t pid, struct pidset *out)
{
	char path[80];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	out->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while (!ret && (e = readdir(d))) {
		FILE *f;
		int child;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)pid, e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* the thread exited meanwhile */
		while (!ret && fscanf(f, "%d", &child) == 1) {
			if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 16;
				pid_t *v = realloc(out->v, cap * sizeof(*v));

				if (!v) {
					ret = -ENOMEM;
					break;
				}
				out->v = v;
				out->cap = cap;
			}
			out->v[out->n++] = child;
		}
		fclose(f);
	}
	closedir(d);
	return ret;
}

void mm_fork_note_children(struct mm *mm)
{
	struct pidset now = { 0 };

	if (!list_empty(&mm->fork_waits) || read_children(mm->pid, &now)) {
		free(now.v);
		return;
	}
	free(mm->fork_known);
	mm->fork_known = now.v;
	mm->nfork_known = now.n;
}
