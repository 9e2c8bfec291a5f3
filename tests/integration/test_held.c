/* SPDX-License-Identifier: MIT */
/*
 * test_held.c - requests whose reply waits for a held invalidation (a
 * write FAULT, a PLACE) when one side goes away while the reply is parked.
 *
 * A subscriber whose callback does not return (a harness gate) keeps the
 * held invalidation waiting for its ack, so the reply stays parked for as
 * long as the test needs:
 *  - the requester's connection closes: the record still runs to its end
 *    (the owner populates, the seqs go even), nothing is answered, the
 *    daemon goes on;
 *  - the owner dies: the requester is answered -EFAULT.
 * The ack timeout is long, so no eviction ends the wait behind the test's
 * back.
 */
#include "harness.h"
#include "rawclient.h"
#include "umirror.h"
#include "umirror_proto.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 4

static uint32_t nclients(struct um_client *c)
{
	struct um_status st = UM_STATUS_INIT;

	CHECK(um_status(c, &st) == 0, "status");
	return st.clients;
}

/* a raw connection subscribed (not synchronous: it never acks) to @id of @pid */
static int raw_subscriber(pid_t pid, uint64_t id)
{
	struct ump_subscribe s = { .interval_id = id, .pid = pid };
	int fd = raw_connect();

	raw_hello(fd);
	raw_send(fd, UMP_MSG_SUBSCRIBE, 2, &s, sizeof(s), -1);
	CHECK(raw_reply(fd, UMP_MSG_SUBSCRIBE, 2) == 0, "raw subscribe");
	return fd;
}

/* the reply to request 3 of @type, past the events a subscriber also gets */
static int32_t reply_past_events(int fd, uint16_t type)
{
	const struct ump_hdr *h = (const void *)raw_msg;

	for (;;) {
		CHECK(raw_recv(fd) > 0, "%s: the reply", ump_msg_type_name(type));
		if (h->type & UMP_REPLY)
			break;
	}
	CHECK(h->type == (type | UMP_REPLY) && h->id == 3, "reply %s id %llu, want %s id 3",
	      ump_msg_type_name(h->type), (unsigned long long)h->id,
	      ump_msg_type_name(type | UMP_REPLY));
	return ((const struct ump_reply_hdr *)(h + 1))->status;
}

/* send the parked request: a write FAULT or a PLACE on node 0 over @buf */
static void send_held(int fd, uint16_t type, uint64_t id, char *buf)
{
	if (type == UMP_MSG_FAULT) {
		struct ump_fault f = { .interval_id = id,
				       .start = (uintptr_t)buf,
				       .npages = NPAGES,
				       .flags = UMP_FAULT_WRITE };

		raw_send(fd, type, 3, &f, sizeof(f), -1);
	} else {
		struct ump_place p = { .interval_id = id,
				       .start = (uintptr_t)buf,
				       .npages = NPAGES };

		raw_send(fd, type, 3, &p, sizeof(p), -1);
	}
}

/*
 * The requester closes while its reply is parked; then the blocker acks.
 * The record must still complete: the interval's seq goes even again (a
 * snapshot returns) and, for FAULT, the owner populated every page.
 */
static void requester_gone(struct um_client *c, uint16_t type)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	const char *what = ump_msg_type_name(type);
	struct um_interval *iv, *blocked;
	struct harness_gate gate;
	struct um_client *b;
	struct um_range range;
	uint32_t before;
	uint64_t pfns[NPAGES];
	int fd;

	CHECK(um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv) == 0, "insert");
	CHECK(um_connect(NULL, 0, &b) == 0, "connect the blocker");
	harness_gate_init(&gate, 60000);
	CHECK(um_interval_subscribe(b, getpid(), um_interval_id(iv), 0, &harness_gate_ops, &gate,
				    &blocked) == 0,
	      "blocker subscribes");
	before = nclients(c);
	fd = raw_subscriber(getpid(), um_interval_id(iv));
	send_held(fd, type, um_interval_id(iv), buf);
	/* the invalidation reached the blocker: the reply is parked */
	CHECK(harness_sem_wait_ms(&gate.entered, 10000), "%s: the blocker sees the invalidation",
	      what);
	close(fd);
	while (nclients(c) != before)
		usleep(1000); /* the watchdog bounds it */
	sem_post(&gate.go);

	range = (struct um_range){ .iv = iv,
				   .start = (uintptr_t)buf,
				   .end = (uintptr_t)buf + NPAGES * PAGE,
				   .pfns = pfns };
	CHECK(harness_snapshot(&range) == NPAGES, "%s: snapshot after the requester left", what);
	if (type == UMP_MSG_FAULT)
		for (int i = 0; i < NPAGES; i++)
			CHECK(harness_pagemap(buf + i * PAGE) & PM_PRESENT,
			      "FAULT without its requester still populated page %d", i);
	CHECK(nclients(c) == before, "%s: the daemon serves on", what);
	CHECK(um_interval_remove(blocked) == 0, "blocker removes");
	um_disconnect(b);
	CHECK(um_interval_remove(iv) == 0, "remove");
	munmap(buf, NPAGES * PAGE);
}

/* the owner: insert, say the interval id and the address, wait to be killed */
static void owner_main(int in_fd, int out_fd)
{
	char *buf = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	struct um_interval *iv;
	struct um_client *c;
	uint64_t msg[2];
	char x;

	if (um_connect(NULL, 0, &c) ||
	    um_interval_insert(c, buf, NPAGES * PAGE, 0, NULL, NULL, &iv))
		_exit(1);
	msg[0] = um_interval_id(iv);
	msg[1] = (uintptr_t)buf;
	if (write(out_fd, msg, sizeof(msg)) != sizeof(msg))
		_exit(1);
	(void)!read(in_fd, &x, 1);
	_exit(0);
}

/* the owner dies while the reply is parked: the requester gets -EFAULT */
static void owner_gone(uint16_t type)
{
	const char *what = ump_msg_type_name(type);
	struct um_interval *blocked;
	struct harness_gate gate;
	struct um_client *b;
	int to_child, from_child, fd, status;
	uint64_t msg[2];
	int32_t ret;
	pid_t pid;

	pid = harness_fork(owner_main, &to_child, &from_child);
	CHECK(read(from_child, msg, sizeof(msg)) == sizeof(msg), "owner's interval");
	CHECK(um_connect(NULL, 0, &b) == 0, "connect the blocker");
	harness_gate_init(&gate, 60000);
	CHECK(um_interval_subscribe(b, pid, msg[0], 0, &harness_gate_ops, &gate, &blocked) == 0,
	      "blocker subscribes");
	fd = raw_subscriber(pid, msg[0]);
	send_held(fd, type, msg[0], (char *)(uintptr_t)msg[1]);
	CHECK(harness_sem_wait_ms(&gate.entered, 10000), "%s: the blocker sees the invalidation",
	      what);
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &status, 0) == pid, "reap the owner");
	ret = reply_past_events(fd, type);
	CHECK(ret == -EFAULT, "%s parked when the owner died: %s, want EFAULT", what,
	      strerror(-ret));
	sem_post(&gate.go);
	CHECK(harness_sem_wait_ms(&gate.released, 10000), "%s: the blocker's interval released",
	      what);
	close(fd);
	close(to_child);
	close(from_child);
	ret = um_interval_remove(blocked);
	CHECK(ret == 0, "blocker removes: %s", strerror(-ret));
	um_disconnect(b);
}

struct remover {
	struct um_interval *sub;
	int ret;
};

static void *remover_main(void *arg)
{
	struct remover *r = arg;

	r->ret = um_interval_remove(r->sub);
	return NULL;
}

/*
 * A subscriber removes its interval while the daemon drops it because its
 * owner died: the REMOVE meets an interval already gone and is answered
 * -ENOENT. For the caller that is a removal done, not an error (umirror.h:
 * 0 or -ENOTCONN). The daemon is stopped (SIGSTOP) while the owner dies and
 * the REMOVE is sent, so that it finds both at once when it resumes.
 * @manual: the subscriber does not dispatch and waits until the RELEASE is
 * there before removing (the daemon not stopped): the plain case.
 * Before the fix: -ENOENT in 5 of 5 runs (of 60 rounds).
 */
static void remove_after_owner_death(bool manual)
{
	struct pollfd p = { .events = POLLIN };
	struct remover rm = { 0 };
	int to_child, from_child, status;
	struct um_client *b;
	pthread_t t;
	uint64_t msg[2];
	pid_t pid;

	pid = harness_fork(owner_main, &to_child, &from_child);
	CHECK(read(from_child, msg, sizeof(msg)) == sizeof(msg), "owner's interval");
	CHECK(um_connect(NULL, manual ? UM_CONNECT_MANUAL : 0, &b) == 0, "connect the subscriber");
	CHECK(um_interval_subscribe(b, pid, msg[0], 0, NULL, NULL, &rm.sub) == 0, "subscribe");
	if (!manual)
		CHECK(kill(harness_daemon_pid(), SIGSTOP) == 0, "stop the daemon");
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &status, 0) == pid, "reap the owner");
	if (manual) {
		p.fd = um_fd(b);
		CHECK(poll(&p, 1, 10000) == 1, "the RELEASE is on its way");
		rm.ret = um_interval_remove(rm.sub);
	} else {
		CHECK(pthread_create(&t, NULL, remover_main, &rm) == 0, "remover thread");
		usleep(20000); /* the REMOVE is queued at the stopped daemon */
		CHECK(kill(harness_daemon_pid(), SIGCONT) == 0, "resume the daemon");
		pthread_join(t, NULL);
	}
	CHECK(rm.ret == 0, "remove %s after the owner died: %s",
	      manual ? "before reading the RELEASE" : "racing the RELEASE", strerror(-rm.ret));
	close(to_child);
	close(from_child);
	um_disconnect(b);
}

int main(void)
{
	static const char *const args[] = { "--ack-timeout", "600000", NULL };
	struct um_client *c;

	if (geteuid() != 0)
		harness_skip("umirrord needs root (userfaultfd of another process, PFNs)");
	harness_start("test_held", args);
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	requester_gone(c, UMP_MSG_FAULT);
	requester_gone(c, UMP_MSG_PLACE);
	owner_gone(UMP_MSG_FAULT);
	owner_gone(UMP_MSG_PLACE);
	remove_after_owner_death(true);
	for (int round = 0; round < 60; round++)
		remove_after_owner_death(false);
	um_disconnect(c);
	return harness_summary();
}
