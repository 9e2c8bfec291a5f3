/* SPDX-License-Identifier: MIT */
/*
 * uidlimits.h - per-uid limits on clients, intervals and mirrored bytes.
 *
 * One uid must not be able to exhaust the daemon (file descriptors, seq
 * slots, pinned kernel state) for everybody else. Usage is charged before
 * the resource is taken and uncharged when it goes; a charge is all or
 * nothing. Root is unlimited unless limit_root is set (--limit-root): a
 * root client can read any pagemap anyway, and must never be locked out.
 * Everything runs on the loop thread: nothing is locked.
 */
#ifndef UMD_UIDLIMITS_H
#define UMD_UIDLIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum limit_kind {
	LIMIT_CLIENTS,
	LIMIT_INTERVALS,
	LIMIT_BYTES,
	LIMIT_NR,
};

#define LIMIT_DEF_CLIENTS 64
#define LIMIT_DEF_INTERVALS 4096
#define LIMIT_DEF_BYTES (64ull << 30)

/* configuration: max[k] == 0 means unlimited */
struct limits_cfg {
	uint64_t max[LIMIT_NR];
	bool limit_root; /* the limits apply to uid 0 too */
};

struct limits_use {
	uid_t uid;
	uint64_t n[LIMIT_NR];
};

struct limits {
	struct limits_cfg cfg;
	struct limits_use *use; /* uids with any usage, unordered */
	size_t nuse, cap;
};

/**
 * limits_cfg_defaults() - the workstation defaults: 64 clients, 4096
 * intervals, 64 GiB mirrored per uid; root unlimited.
 */
void limits_cfg_defaults(struct limits_cfg *cfg);

/**
 * limits_cfg_set() - set limit @k to @max (0: unlimited) for every uid
 * but root (unless cfg->limit_root).
 */
void limits_cfg_set(struct limits_cfg *cfg, enum limit_kind k, uint64_t max);

/** limits_init() - empty accounting under @cfg (copied). Cannot fail. */
void limits_init(struct limits *l, const struct limits_cfg *cfg);

/** limits_fini() - free the accounting. */
void limits_fini(struct limits *l);

/**
 * limits_charge() - charge @uid @n[k] of each kind, all or nothing.
 * @hit: if not NULL, the kind that was over its limit (on -EUSERS/-EDQUOT)
 *
 * Return: 0 charged; -EUSERS the client limit would be exceeded;
 * -EDQUOT the interval or byte limit would be; -EOVERFLOW a counter
 * would wrap; -ENOMEM no room to track a new uid. Nothing is charged
 * on error.
 */
int limits_charge(struct limits *l, uid_t uid, const uint64_t n[LIMIT_NR], enum limit_kind *hit);

/**
 * limits_uncharge() - give back what limits_charge() took for @uid.
 * Uncharging more than was charged is a bug: it is clamped at zero.
 */
void limits_uncharge(struct limits *l, uid_t uid, const uint64_t n[LIMIT_NR]);

/** limits_usage() - what @uid currently uses of kind @k. */
uint64_t limits_usage(const struct limits *l, uid_t uid, enum limit_kind k);

/** limits_max() - @uid's limit of kind @k, 0 when unlimited. */
uint64_t limits_max(const struct limits *l, uid_t uid, enum limit_kind k);

/** limits_name() - "clients", "intervals", "bytes". */
const char *limits_name(enum limit_kind k);

#endif /* UMD_UIDLIMITS_H */
