/* SPDX-License-Identifier: MIT */
/*
 * idmap.h - a hash map from a 64-bit id to a pointer.
 *
 * Open addressing with linear probing in a power-of-two table, at most
 * 3/4 full, deleted entries closed up by shifting back (no tombstones),
 * the table halved when it falls below 1/8 full so that memory goes back
 * on removal. O(1) expected per operation, whatever the number of
 * entries; used where a per-event path looks an object up by the id a
 * client sent (an acknowledgement names its interval).
 */
#ifndef UMD_IDMAP_H
#define UMD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_ent {
	uint64_t key;
	void *val; /* NULL: empty slot */
};

struct idmap {
	struct idmap_ent *ent; /* NULL while empty */
	size_t cap;	       /* 0 or a power of two */
	size_t count;
};

/** idmap_init() - an empty map; allocates nothing. */
void idmap_init(struct idmap *m);

/** idmap_fini() - free the table (not the values); the map is empty after. */
void idmap_fini(struct idmap *m);

/**
 * idmap_put() - map @key to @val (not NULL), replacing any earlier value.
 * Return: 0; -EINVAL @val is NULL; -ENOMEM the table could not grow (the
 * map is unchanged). Holds nothing.
 */
int idmap_put(struct idmap *m, uint64_t key, void *val);

/** idmap_get() - the value of @key, or NULL. Waits for nothing. */
void *idmap_get(const struct idmap *m, uint64_t key);

/**
 * idmap_del() - remove @key. Return: its value, or NULL when absent.
 * Never fails (a failed shrink keeps the larger table).
 */
void *idmap_del(struct idmap *m, uint64_t key);

#endif /* UMD_IDMAP_H */
