/* SPDX-License-Identifier: MIT */
/*
 * evlog.h - the integration tests' invalidation recorder: an interval ops
 * whose invalidate callback logs every (interval, um_invalidation) it is
 * called with, in order, for the test to look at under evlog.lock.
 */
#ifndef UMIRROR_IT_EVLOG_H
#define UMIRROR_IT_EVLOG_H

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

#include "umirror.h"

#define EVLOG_MAX 2048 /* events kept; later ones are counted by nothing */

struct evlog_ev {
	struct um_interval *iv;
	struct um_invalidation inv;
	unsigned int order; /* position in the order log (evlog_tick()) */
};

struct evlog {
	pthread_mutex_t lock; /* guards everything below but sem */
	struct evlog_ev ev[EVLOG_MAX];
	unsigned int n;		  /* events logged since evlog_reset() */
	unsigned int order_clock; /* next order number */
	uint64_t last_ms;	  /* harness_now_ms() of the last event */
	sem_t sem;		  /* posted once per event */
	unsigned int cb_delay_ms; /* the callback sleeps this long first */
};

extern struct evlog evlog;

/* insert intervals with these ops to log their invalidations in evlog */
extern const struct um_interval_ops evlog_ops;

/**
 * evlog_reset() - forget the logged events (takes evlog.lock) and drain
 * evlog.sem without waiting. The order clock keeps running.
 */
void evlog_reset(void);

/**
 * evlog_tick() - take the next order number, as an event would (takes
 * evlog.lock), to place a test's own steps in the events' order.
 * Return: the number.
 */
unsigned int evlog_tick(void);

/**
 * evlog_settle() - wait until no event came for 200 ms since the call or
 * the last event, or @max_ms passed, polling every 10 ms.
 * @max_ms: the longest wait
 *
 * Return: the number of events logged (evlog.n) at that point.
 */
unsigned int evlog_settle(unsigned int max_ms);

#endif
