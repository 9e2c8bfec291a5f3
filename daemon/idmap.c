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

void idmap_init(struct idmap *m)
{
	m->ent = NULL;
	m->cap = 0;
	m->count = 0;
}

void idmap_fini(struct idmap *m)
{
	free(m->ent);
	idmap_init(m);
}

static struct idmap_ent *find(const struct idmap *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
		struct idmap_ent *e = &m->ent[i];

		if (!e->val)
			return NULL;
		if (e->key == key)
			return e;
	}
}

/* move every entry into a table of @cap slots; -ENOMEM leaves @m as it was */
static int resize(struct idmap *m, size_t cap)
{
	struct idmap_ent *old = m->ent, *ent = calloc(cap, sizeof(*ent));
	size_t oldcap = m->cap;

	if (!ent)
		return -ENOMEM;
	m->ent = ent;
	m->cap = cap;
	for (size_t k = 0; k < oldcap; k++) {
		size_t i;

		if (!old[k].val)
			continue;
		for (i = slot_of(m, old[k].key); ent[i].val; i = (i + 1) & (cap - 1))
			;
		ent[i] = old[k];
	}
	free(old);
	return 0;
}

int idmap_put(struct idmap *m, uint64_t key, void *val)
{
	struct idmap_ent *e;
	size_t i;

	if (!val)
		return -EINVAL;
	e = find(m, key);
	if (e) {
		e->val = val;
		return 0;
	}
	if ((m->count + 1) * 4 > m->cap * 3) {
		int ret = resize(m, m->cap ? m->cap * 2 : IDMAP_MIN);

		if (ret)
			return ret;
	}
	for (i = slot_of(m, key); m->ent[i].val; i = (i + 1) & (m->cap - 1))
		;
	m->ent[i].key = key;
	m->ent[i].val = val;
	m->count++;
	return 0;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	struct idmap_ent *e = find(m, key);

	return e ? e->val : NULL;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
	struct idmap_ent *e = find(m, key);
	size_t mask = m->cap - 1, hole, i;
	void *val;

	if (!e)
		return NULL;
	val = e->val;
	hole = (size_t)(e - m->ent);
	/*
	 * Close the hole: an entry further along the probe run moves back
	 * into it unless its home slot lies cyclically in (hole, i].
	 */
	for (i = (hole + 1) & mask; m->ent[i].val; i = (i + 1) & mask) {
		size_t home = slot_of(m, m->ent[i].key);

		if (((i - home) & mask) >= ((i - hole) & mask)) {
			m->ent[hole] = m->ent[i];
			hole = i;
		}
	}
	m->ent[hole].val = NULL;
	m->count--;
	if (m->count == 0)
		idmap_fini(m);
	else if (m->cap > IDMAP_MIN && m->count * 8 < m->cap)
		resize(m, m->cap / 2);
	return val;
}
