/* SPDX-License-Identifier: MIT */
/*
 * idmap.h - a hash map from a 64-bit id to the object that carries it.
 *
 * Open addressing with linear probing in a power-of-two table of bare
 * pointers (the key is read from the object through key_of(), so a slot
 * costs 8 bytes, not 16), at most 7/8 full, deleted entries closed up by
 * shifting back (no tombstones), the table halved when it falls below 1/8
 * full so that memory goes back on removal. O(1) expected per operation,
 * whatever the number of entries; used where a per-event path looks an
 * object up by the id a client sent (an acknowledgement names its
 * interval). With 100,000 intervals the table is ~10 bytes per interval
 * (issue 12's memory figure), at the price of one pointer load per probe.
 */
#ifndef UMD_IDMAP_H
#define UMD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

/* the id of an object stored in the map; must not change while it is stored */
typedef uint64_t (*idmap_key_fn)(const void *val);

struct idmap {
	void **ent; /* NULL while empty; a NULL slot is empty */
	size_t cap; /* 0 or a power of two */
	size_t count;
	idmap_key_fn key_of;
};

/** idmap_init() - an empty map whose objects name their id through @key_of; allocates nothing. */
void idmap_init(struct idmap *m, idmap_key_fn key_of);

/** idmap_fini() - free the table (not the values); the map is empty after, key_of kept. */
void idmap_fini(struct idmap *m);

/**
 * idmap_put() - map key_of(@val) to @val (not NULL), replacing any earlier
 * object with that id. Return: 0; -EINVAL @val is NULL; -ENOMEM the table
 * could not grow (the map is unchanged). Holds nothing; the map keeps
 * @val's address until it is deleted or replaced.
 */
int idmap_put(struct idmap *m, void *val);

/** idmap_get() - the value of @key, or NULL. Waits for nothing. */
void *idmap_get(const struct idmap *m, uint64_t key);

/**
 * idmap_del() - remove @key. Return: its value, or NULL when absent.
 * Never fails (a failed shrink keeps the larger table).
 */
void *idmap_del(struct idmap *m, uint64_t key);

#endif /* UMD_IDMAP_H */
