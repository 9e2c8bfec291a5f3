/* SPDX-License-Identifier: MIT */
/*
 * test_seq - daemon/seq.c: slots are handed out from the lowest 4096 and
 * grow 4096 at a time only when all are in use, a freed slot is reused,
 * the bound (--max-intervals-per-mm) gives -ENOSPC, and the memfd keeps
 * its size and seals (no writable mapping, no resize) for the clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mm_types.h"
#include "seq.h"
#include "server_types.h"

#define NSLOTS 10000

struct fix {
	struct server s;
	struct mm mm;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->s.opt.seq_slots_max = NSLOTS;
	f->mm.srv = &f->s;
	f->mm.id = 1;
	assert_int_equal(seq_area_create(&f->mm), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	seq_area_destroy(&f->mm);
	free(f);
	return 0;
}

static void grows_in_chunks_to_the_bound(void **state)
{
	struct fix *f = *state;
	uint32_t slot;

	assert_int_equal(seq_area_slots(&f->mm), NSLOTS);
	for (uint32_t k = 0; k < NSLOTS; k++) {
		assert_int_equal(seq_slot_alloc(&f->mm, &slot), 0);
		assert_int_equal(slot, k);
		assert_int_equal(f->mm.seq[slot].flags, UMP_SLOT_LIVE);
		assert_int_equal(f->mm.seq[slot].seq, 0);
		assert_int_equal(f->mm.slot_cap, k < 4096 ? 4096 : k < 8192 ? 8192 : NSLOTS);
	}
	assert_int_equal(seq_slot_alloc(&f->mm, &slot), -ENOSPC);
}

static void freed_slots_are_reused_at_the_bound(void **state)
{
	struct fix *f = *state;
	uint32_t slot, a, b;

	for (uint32_t k = 0; k < NSLOTS; k++)
		assert_int_equal(seq_slot_alloc(&f->mm, &slot), 0);
	seq_slot_free(&f->mm, 9000);
	seq_slot_free(&f->mm, 5);
	seq_slot_free(&f->mm, 5);	   /* twice: no-op */
	seq_slot_free(&f->mm, NSLOTS + 7); /* never handed out: no-op */
	assert_int_equal(seq_slot_alloc(&f->mm, &a), 0);
	assert_int_equal(seq_slot_alloc(&f->mm, &b), 0);
	assert_true((a == 5 && b == 9000) || (a == 9000 && b == 5));
	assert_int_equal(seq_slot_alloc(&f->mm, &slot), -ENOSPC);
}

static void churn_does_not_grow(void **state)
{
	struct fix *f = *state;
	uint32_t keep[100], slot;

	for (int i = 0; i < 100; i++)
		assert_int_equal(seq_slot_alloc(&f->mm, &keep[i]), 0);
	/* 100 live at most + 1: the first chunk is enough, however long this goes */
	for (int i = 0; i < 3 * NSLOTS; i++) {
		assert_int_equal(seq_slot_alloc(&f->mm, &slot), 0);
		assert_true(slot < 4096);
		seq_slot_free(&f->mm, slot);
	}
	assert_int_equal(f->mm.slot_cap, 4096);
	assert_int_equal(f->mm.slots_live, 100);
}

static void sealed_full_size(void **state)
{
	struct fix *f = *state;
	int seals = fcntl(f->mm.seq_fd, F_GET_SEALS);
	struct stat st;

	assert_int_equal(fstat(f->mm.seq_fd, &st), 0);
	assert_true((uint64_t)st.st_size >= (uint64_t)NSLOTS * sizeof(struct ump_seq_slot));
	assert_int_equal(seals & (F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			 F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* what a client holding the fd can and cannot do */
	assert_ptr_equal(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f->mm.seq_fd, 0),
			 MAP_FAILED);
	assert_int_equal(ftruncate(f->mm.seq_fd, st.st_size + 4096), -1);
	assert_int_equal(ftruncate(f->mm.seq_fd, 4096), -1);
	assert_int_equal(
		fallocate(f->mm.seq_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1);
}

static void default_is_the_protocol_most(void **state)
{
	struct mm mm = { 0 };

	(void)state;
	assert_int_equal(seq_area_create(&mm), 0);
	assert_int_equal(seq_area_slots(&mm), UMP_SEQ_SLOTS_MAX);
	seq_area_destroy(&mm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(grows_in_chunks_to_the_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(freed_slots_are_reused_at_the_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(churn_does_not_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(sealed_full_size, setup, teardown),
		cmocka_unit_test(default_is_the_protocol_most),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
