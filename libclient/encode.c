/* SPDX-License-Identifier: MIT */
/*
 * encode.c - raw snapshot entries to the caller's flags[]/values[] encoding.
 */
#include "encode.h"

#include <errno.h>

#include "umirror_proto.h"

_Static_assert(UMP_E_PRESENT == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_VALID) &&
		       UMP_E_WRITE == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_WRITE) &&
		       UMP_E_ZERO == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_ZERO) &&
		       UMP_E_SWAP == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_SWAP) &&
		       UMP_E_FILE == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_FILE) &&
		       UMP_E_EXCL == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_EXCLUSIVE) &&
		       UMP_E_HUGE == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_HUGE) &&
		       UMP_E_UFFD_WP == 1ull << (ENCODE_RAW_SHIFT + UM_PFN_UFFD_WP),
	       "raw flag bits and flag indexes line up");

/* only these describe a page that is not present */
#define NOT_PRESENT_BITS ((UMP_E_SWAP | UMP_E_UFFD_WP) >> ENCODE_RAW_SHIFT)

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
	for (unsigned int bits = 0; bits < 256; bits++) {
		uint64_t v = 0;

		for (int i = 0; i < UM_PFN_FLAG_MAX; i++)
			if (bits & (1u << i))
				v |= e->flags[i];
		e->table[bits] = v;
	}
	return 0;
}

uint64_t encode_entry(const struct um_encoding *e, uint64_t raw)
{
	unsigned int bits = (unsigned int)(raw >> ENCODE_RAW_SHIFT) & 0xff;

	if (raw & (UMP_E_HOLE | UMP_E_NOPERM))
		return e->values[UM_PFN_ERROR];
	if (!(raw & UMP_E_PRESENT))
		return e->values[UM_PFN_NONE] | e->table[bits & NOT_PRESENT_BITS];
	return ((raw & UMP_E_PFN_MASK) << e->pfn_shift) | e->table[bits];
}

void encode_entries(const struct um_encoding *e, const uint64_t *raw, uint64_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = encode_entry(e, raw[i]);
}
