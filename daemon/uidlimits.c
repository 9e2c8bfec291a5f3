/* SPDX-License-Identifier: MIT */
/*
 * uidlimits.c - per-uid usage accounting. A handful of uids use a daemon at
 * once, so a small unordered array searched linearly is all it needs.
 */
#include "uidlimits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void limits_cfg_defaults(struct limits_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max[LIMIT_CLIENTS] = LIMIT_DEF_CLIENTS;
	cfg->max[LIMIT_INTERVALS] = LIMIT_DEF_INTERVALS;
	cfg->max[LIMIT_BYTES] = LIMIT_DEF_BYTES;
}

void limits_cfg_set(struct limits_cfg *cfg, enum limit_kind k, uint64_t max)
{
	cfg->max[k] = max;
}

void limits_init(struct limits *l, const struct limits_cfg *cfg)
{
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
}

void limits_fini(struct limits *l)
{
	free(l->use);
	l->use = NULL;
	l->nuse = l->cap = 0;
}

static struct limits_use *find(const struct limits *l, uid_t uid)
{
	for (size_t i = 0; i < l->nuse; i++)
		if (l->use[i].uid == uid)
			return &l->use[i];
	return NULL;
}

uint64_t limits_max(const struct limits *l, uid_t uid, enum limit_kind k)
{
	if (uid == 0 && !l->cfg.limit_root)
		return 0;
	return l->cfg.max[k];
}

uint64_t limits_usage(const struct limits *l, uid_t uid, enum limit_kind k)
{
	const struct limits_use *u = find(l, uid);

	return u ? u->n[k] : 0;
}

const char *limits_name(enum limit_kind k)
{
	static const char *const names[LIMIT_NR] = { "clients", "intervals", "bytes" };

	return k < LIMIT_NR ? names[k] : "?";
}

int limits_charge(struct limits *l, uid_t uid, const uint64_t n[LIMIT_NR], enum limit_kind *hit)
{
	struct limits_use *u = find(l, uid);
	uint64_t have[LIMIT_NR] = { 0 };

	if (u)
		memcpy(have, u->n, sizeof(have));
	for (int k = 0; k < LIMIT_NR; k++) {
		uint64_t max = limits_max(l, uid, k);

		if (have[k] + n[k] < have[k])
			return -EOVERFLOW;
		if (max && n[k] && have[k] + n[k] > max) {
			if (hit)
				*hit = k;
			return k == LIMIT_CLIENTS ? -EUSERS : -EDQUOT;
		}
	}
	if (!u) {
		if (l->nuse == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 8;
			struct limits_use *p = realloc(l->use, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			l->use = p;
			l->cap = cap;
		}
		u = &l->use[l->nuse++];
		memset(u, 0, sizeof(*u));
		u->uid = uid;
	}
	for (int k = 0; k < LIMIT_NR; k++)
		u->n[k] += n[k];
	return 0;
}

void limits_uncharge(struct limits *l, uid_t uid, const uint64_t n[LIMIT_NR])
{
	struct limits_use *u = find(l, uid);
	bool empty = true;

	if (!u)
		return;
	for (int k = 0; k < LIMIT_NR; k++) {
		u->n[k] = u->n[k] > n[k] ? u->n[k] - n[k] : 0;
		empty &= u->n[k] == 0;
	}
	/* forget idle uids so the array stays as small as the live set */
	if (empty)
		*u = l->use[--l->nuse];
}
