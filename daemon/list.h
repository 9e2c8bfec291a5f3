/* SPDX-License-Identifier: MIT */
/*
 * list.h - intrusive circular doubly linked list.
 *
 * The daemon keeps every object (client, address space, interval,
 * receiver, invalidation) on one or more of these; removal is O(1) and
 * never allocates, so teardown paths cannot fail.
 */
#ifndef UMD_LIST_H
#define UMD_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
	struct list *prev, *next;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define list_entry(ptr, type, member) container_of(ptr, type, member)

/** list_init() - make @l an empty list (or an unlinked node). */
static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}

/** list_empty() - true when @l has no entries (or the node is unlinked). */
static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}

/** list_add_tail() - append @n to @head. */
static inline void list_add_tail(struct list *head, struct list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/** list_del() - unlink @n and leave it unlinked (safe to call twice). */
static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

#define list_first_entry(head, type, member) list_entry((head)->next, type, member)

#define list_for_each_entry(pos, head, member)                                             \
	for (pos = list_entry((head)->next, typeof(*pos), member); &pos->member != (head); \
	     pos = list_entry(pos->member.next, typeof(*pos), member))

/* safe against removal of pos (not of the next entry) */
#define list_for_each_entry_safe(pos, tmp, head, member)              \
	for (pos = list_entry((head)->next, typeof(*pos), member),    \
	    tmp = list_entry(pos->member.next, typeof(*pos), member); \
	     &pos->member != (head);                                  \
	     pos = tmp, tmp = list_entry(tmp->member.next, typeof(*tmp), member))

#endif /* UMD_LIST_H */
