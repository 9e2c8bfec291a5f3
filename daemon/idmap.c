// SPDX-License-Identifier: MIT
#include "idmap.h"

#include <errno.h>
#include <stdlib.h>

#define IDMAP_MIN 16

/* ids are small consecutive numbers: mix all bits into the low ones */
static size_t slot_of(const struct idmap *m, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)key & (m->cap - 1);
}

void idmap_init(struct idmap *m, idmap_key_fn key_of)
{
	m->ent = NULL;
	m->cap = 0;
	m->count = 0;
	m->key_of = key_of;
}

void idmap_fini(struct idmap *m)
{
	free(m->ent);
	idmap_init(m, m->key_of);
}

/* the slot holding @key, or -1 */
static ptrdiff_t find(const struct idmap *m, uint64_t key)
{
	if (!m->cap)
		return -1;
	for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (!m->ent[i])
			return -1;
		if (m->key_of(m->ent[i]) == key)
			return (ptrdiff_t)i;
	}
}

/* move every entry into a table of @cap slots; -ENOMEM leaves @m as it was */
static int resize(struct idmap *m, size_t cap)
{
	void **old = m->ent, **ent = calloc(cap, sizeof(*ent));
	size_t oldcap = m->cap;

	if (!ent)
		return -ENOMEM;
	m->ent = ent;
	m->cap = cap;
	for (size_t k = 0; k < oldcap; k++) {
		size_t i;

		if (!old[k])
			continue;
		for (i = slot_of(m, m->key_of(old[k])); ent[i]; i = (i + 1) & (cap - 1))
			;
		ent[i] = old[k];
	}
	free(old);
	return 0;
}

int idmap_put(struct idmap *m, void *val)
{
	uint64_t key;
	ptrdiff_t at;
	size_t i;

	if (!val)
		return -EINVAL;
	key = m->key_of(val);
	at = find(m, key);
	if (at >= 0) {
		m->ent[at] = val;
		return 0;
	}
	if ((m->count + 1) * 8 > m->cap * 7) {
		int ret = resize(m, m->cap ? m->cap * 2 : IDMAP_MIN);

		if (ret)
			return ret;
	}
	for (i = slot_of(m, key); m->ent[i]; i = (i + 1) & (m->cap - 1))
		;
	m->ent[i] = val;
	m->count++;
	return 0;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	ptrdiff_t at = find(m, key);

	return at >= 0 ? m->ent[at] : NULL;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
	ptrdiff_t at = find(m, key);
	size_t mask = m->cap - 1, hole, i;
	void *val;

	if (at < 0)
		return NULL;
	val = m->ent[at];
	hole = (size_t)at;
	/*
	 * Close the hole: an entry further along the probe run moves back
	 * into it unless its home slot lies cyclically in (hole, i].
	 */
	for (i = (hole + 1) & mask; m->ent[i]; i = (i + 1) & mask) {
		size_t home = slot_of(m, m->key_of(m->ent[i]));

		if (((i - home) & mask) >= ((i - hole) & mask)) {
			m->ent[hole] = m->ent[i];
			hole = i;
		}
	}
	m->ent[hole] = NULL;
	m->count--;
	if (m->count == 0)
		idmap_fini(m);
	else if (m->cap > IDMAP_MIN && m->count * 8 < m->cap)
		resize(m, m->cap / 2);
	return val;
}
