/* SPDX-License-Identifier: MIT */
/*
 * lookup.c - lookups (lookup.h).
 */
#include "lookup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mm *mm_find_pid(struct server *s, pid_t pid)
{
	struct mm *mm;

	list_for_each_entry (mm, &s->mms, link)
		if (mm->pid == pid && !mm->dead)
			return mm;
	return NULL;
}

struct receiver *client_receiver(struct client *c, uint64_t id)
{
	return idmap_get(&c->receiver_ids, id);
}

int receiver_access(struct client *c, uint64_t id, uint64_t start, uint64_t end,
		    struct receiver **out)
{
	struct receiver *r = client_receiver(c, id);
	struct interval *iv;

	if (!r)
		return interval_find(c->srv, id) ? -EACCES : -ENOENT;
	iv = r->iv;
	if (start >= end || start < iv->node.start || end > iv->node.end)
		return -EINVAL;
	if (iv->mm->dead)
		return -EFAULT;
	*out = r;
	return 0;
}

struct interval *interval_find(struct server *s, uint64_t id)
{
	struct interval *iv;
	struct mm *mm;

	list_for_each_entry (mm, &s->mms, link)
		list_for_each_entry (iv, &mm->intervals, mm_link)
			if (iv->id == id)
				return iv;
	return NULL;
}

static int hit_cb(struct itree_node *n, void *priv)
{
	struct hit_walk *h = priv;
	struct interval *iv = (struct interval *)n;

	if (h->written_only && !iv->written)
		return 0;
	if (h->n == h->cap) {
		unsigned int cap = h->cap * 2;
		struct inval_hit *v = malloc(cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		memcpy(v, h->v, h->n * sizeof(*v));
		if (h->v != h->stack)
			free(h->v);
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n].iv = iv;
	h->v[h->n].start = h->whole || n->start > h->start ? n->start : h->start;
	h->v[h->n].end = h->whole || n->end < h->end ? n->end : h->end;
	h->n++;
	return 0;
}

int mm_collect(struct mm *mm, struct hit_walk *h, uint64_t start, uint64_t end)
{
	h->v = h->stack;
	h->cap = sizeof(h->stack) / sizeof(h->stack[0]);
	h->n = 0;
	h->start = start;
	h->end = end;
	return itree_query(&mm->tree, start, end, hit_cb, h);
}

void mm_collect_done(struct hit_walk *h)
{
	if (h->v != h->stack)
		free(h->v);
}
