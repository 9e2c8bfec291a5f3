/* SPDX-License-Identifier: MIT */
/*
 * encode.h - turn raw snapshot entries (UM_E_*) into a caller's encoding.
 *
 * struct um_range lets the caller choose the bit for each flag, the value
 * for each special case and where the PFN goes (the freedom struct
 * hmm_range gives). This is pure code: no I/O, no locks, unit-tested alone.
 */
#ifndef UM_ENCODE_H
#define UM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "umirror.h"

/*
 * The raw flag bits UMP_E_PRESENT..UMP_E_UFFD_WP (52..59) are in the same
 * order as the flag indexes UM_PFN_VALID..UM_PFN_UFFD_WP (0..7), so one
 * 256-entry table, filled once per call, turns the eight raw bits of an
 * entry into the caller's flag bits: a snapshot of 1 GiB is 262,144 table
 * loads, not 262,144 x 8 tests.
 */
#define ENCODE_RAW_SHIFT 52

struct um_encoding {
	uint64_t flags[UM_PFN_FLAG_MAX];
	uint64_t values[UM_PFN_VALUE_MAX];
	uint8_t pfn_shift;
	uint64_t table[256]; /* raw bits 52..59 -> caller's flag bits */
};

/**
 * encode_init() - resolve a caller's encoding, filling in the defaults.
 * @e: filled
 * @flags: UM_PFN_FLAG_MAX flag bits, or NULL for the library's defaults
 * @values: UM_PFN_VALUE_MAX values, or NULL for the library's defaults
 * @pfn_shift: where the PFN goes; used only when @flags is not NULL
 *
 * Return: 0, or -EINVAL when @flags is given with @pfn_shift >= 64.
 * Waits for nothing, holds nothing.
 */
int encode_init(struct um_encoding *e, const uint64_t *flags, const uint64_t *values,
		uint8_t pfn_shift);

/**
 * encode_entry() - one raw entry in encoding @e.
 * Return: values[ERROR] for a hole or a page without read permission,
 * values[NONE] | flags[SWAP] (swapped) | flags[UFFD_WP] (still armed) for a
 * page not present, else (pfn << pfn_shift) | flags[VALID] | the flags
 * that apply.
 */
uint64_t encode_entry(const struct um_encoding *e, uint64_t raw);

/**
 * encode_entries() - encode @n raw entries from @raw into @out.
 * @raw and @out may be the same array. Waits for nothing, holds nothing.
 */
void encode_entries(const struct um_encoding *e, const uint64_t *raw, uint64_t *out, size_t n);

#endif /* UM_ENCODE_H */
