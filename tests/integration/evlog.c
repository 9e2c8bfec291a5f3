/* SPDX-License-Identifier: MIT */
/*
 * evlog.c - the integration tests' invalidation recorder (see evlog.h).
 */
#include "evlog.h"

#include <unistd.h>

#include "harness.h"

struct evlog evlog = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* before main(): callbacks may post it before a test looks at it */
__attribute__((constructor)) static void evlog_init(void)
{
	sem_init(&evlog.sem, 0, 0);
}

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	(void)priv;
	if (evlog.cb_delay_ms) /* widen the window a writer must wait through */
		usleep(evlog.cb_delay_ms * 1000);
	pthread_mutex_lock(&evlog.lock);
	if (evlog.n < EVLOG_MAX)
		evlog.ev[evlog.n++] =
			(struct evlog_ev){ .iv = iv, .inv = *inv, .order = evlog.order_clock++ };
	evlog.last_ms = harness_now_ms();
	pthread_mutex_unlock(&evlog.lock);
	sem_post(&evlog.sem);
}

const struct um_interval_ops evlog_ops = { .invalidate = on_invalidate };

void evlog_reset(void)
{
	pthread_mutex_lock(&evlog.lock);
	evlog.n = 0;
	pthread_mutex_unlock(&evlog.lock);
	while (sem_trywait(&evlog.sem) == 0)
		;
}

unsigned int evlog_tick(void)
{
	unsigned int t;

	pthread_mutex_lock(&evlog.lock);
	t = evlog.order_clock++;
	pthread_mutex_unlock(&evlog.lock);
	return t;
}

unsigned int evlog_settle(unsigned int max_ms)
{
	uint64_t deadline = harness_now_ms() + max_ms, start = harness_now_ms();
	unsigned int n;

	for (;;) {
		uint64_t now = harness_now_ms(), last;

		pthread_mutex_lock(&evlog.lock);
		n = evlog.n;
		last = evlog.last_ms > start ? evlog.last_ms : start;
		pthread_mutex_unlock(&evlog.lock);
		if (now - last >= 200 || now > deadline)
			return n;
		usleep(10000);
	}
}
