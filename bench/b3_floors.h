/* SPDX-License-Identifier: MIT */
/*
 * b3_floors.h - the hand-off floors B3 single is measured against
 * (b3_floors.c says what each one is).
 */
#ifndef UMIRROR_BENCH_B3_FLOORS_H
#define UMIRROR_BENCH_B3_FLOORS_H

#include <stdbool.h>

#define B3_FLOOR_PAGES 2000u /* the uffd floors' pages: B3 single's count */

enum b3_floor {
	B3_FLOOR_FUTEX_THREADS,
	B3_FLOOR_FUTEX_PROCS,
	B3_FLOOR_UFFD_READ,
	B3_FLOOR_UFFD_EPOLL,
	B3_FLOOR_4HOP,
	B3_FLOOR_3HOP,
	B3_NFLOORS,
};

struct b3_floors;

/**
 * b3_floors_open() - start the partners: a thread, a forked child (killed
 * with this process), two uffd-wp handler threads over populated memory.
 * @out: receives the floors
 * @what: points at what failed, on failure
 *
 * Waits for nothing. Return: 0, or -errno (nothing left running).
 */
int b3_floors_open(struct b3_floors **out, const char **what);

/**
 * b3_floor_once() - @n samples of floor @k: round trips (ping-pong), or
 * first writes to @n write-protected pages in B3's stride-2 order (uffd).
 * @lat: receives the @n samples in us, or NULL
 * @mean_us: receives the mean per sample
 * @what: points at the floor's name (on failure: what failed)
 *
 * Waits for the partner's answer to every sample.
 * Return: 0; -EBADMSG when a sample was not answered as it must be
 * (a write that did not fault, the partner gone); other -errno.
 */
int b3_floor_once(struct b3_floors *f, enum b3_floor k, unsigned int n, double *lat,
		  double *mean_us, const char **what);

/** b3_floors_close() - stop and reap every partner and free @f (NULL: nothing). */
void b3_floors_close(struct b3_floors *f);

#endif /* UMIRROR_BENCH_B3_FLOORS_H */
