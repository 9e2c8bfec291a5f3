/* SPDX-License-Identifier: MIT */
/*
 * encode.c - raw snapshot entries to the caller's flags[]/values[] encoding.
 */
#include "encode.h"

#include <errno.h>

#include "umirror_proto.h"

/* raw bit -> flag index, for every flag a present page may carry */
static const struct {
	uint64_t raw;
	enum um_pfn_flag flag;
} present_flags[] = {
	{ UM_E_WRITE, UM_PFN_WRITE },	  { UM_E_ZERO, UM_PFN_ZERO },
	{ UM_E_FILE, UM_PFN_FILE },	  { UM_E_EXCL, UM_PFN_EXCLUSIVE },
	{ UM_E_HUGE, UM_PFN_HUGE },	  { UM_E_UFFD_WP, UM_PFN_UFFD_WP },
};

int encode_init(struct um_encoding *e, const uint64_t *flags, const uint64_t *values,
		uint8_t pfn_shift)
{
	if (flags && pfn_shift >= 64)
		return -EINVAL;

	for (int i = 0; i < UM_PFN_FLAG_MAX; i++)
		e->flags[i] = flags ? flags[i] : 1ull << i;
	e->pfn_shift = flags ? pfn_shift : UM_DEFAULT_PFN_SHIFT;

	if (values) {
		for (int i = 0; i < UM_PFN_VALUE_MAX; i++)
			e->values[i] = values[i];
	} else {
		e->values[UM_PFN_ERROR] = UM_DEFAULT_ERROR;
		e->values[UM_PFN_NONE] = 0;
		e->values[UM_PFN_SPECIAL] = UM_DEFAULT_SPECIAL;
	}
	return 0;
}

uint64_t encode_entry(const struct um_encoding *e, uint64_t raw)
{
	uint64_t out;

	if (raw & (UM_E_HOLE | UM_E_NOPERM))
		return e->values[UM_PFN_ERROR];
	if (!(raw & UM_E_PRESENT)) {
		out = e->values[UM_PFN_NONE];
		if (raw & UM_E_SWAP)
			out |= e->flags[UM_PFN_SWAP];
		return out;
	}

	out = ((raw & UM_E_PFN_MASK) << e->pfn_shift) | e->flags[UM_PFN_VALID];
	for (size_t i = 0; i < sizeof(present_flags) / sizeof(present_flags[0]); i++)
		if (raw & present_flags[i].raw)
			out |= e->flags[present_flags[i].flag];
	return out;
}

void encode_entries(const struct um_encoding *e, const uint64_t *raw, uint64_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = encode_entry(e, raw[i]);
}
