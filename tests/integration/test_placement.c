/* SPDX-License-Identifier: MIT */
/*
 * test_placement - NUMA placement: a snapshot with range->nodes reports
 * each present page's node as move_pages(2) tells this process itself,
 * -ENOENT for pages not present; um_range_place() to an online node is
 * announced by a MIGRATE invalidation before it returns the pages moved
 * (every present page); to a node that is not online it fails -ENODEV
 * without any invalidation; a connection that only watches may not place.
 */
#include "harness.h"
#include "umirror.h"
#include "umirror_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define NPAGES 8
#define NPRESENT 6

static struct {
	pthread_mutex_t lock;
	sem_t sem;
	unsigned int n, migrate;
	uint64_t start, end;
} ev = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	pthread_mutex_lock(&ev.lock);
	ev.n++;
	if (inv->reason == UM_REASON_MIGRATE) {
		ev.migrate++;
		ev.start = inv->start;
		ev.end = inv->end;
	}
	pthread_mutex_unlock(&ev.lock);
	sem_post(&ev.sem);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* is @node in the node list @path ("0", "0-3,5")? */
static bool node_in(const char *path, int node)
{
	char buf[256], *p = buf;
	FILE *f = fopen(path, "re");
	bool in = false;

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	while (*p >= '0' && *p <= '9') {
		long lo = strtol(p, &p, 10), hi = lo;

		if (*p == '-')
			hi = strtol(p + 1, &p, 10);
		in |= node >= lo && node <= hi;
		if (*p == ',')
			p++;
	}
	return in;
}

/* a raw connection that only watches (no interval object to place with) */
static int raw_call(int fd, uint16_t type, uint64_t id, const void *body, size_t len, void *reply,
		    size_t reply_len)
{
	union {
		uint64_t align;
		unsigned char b[UMP_MSG_MAX];
	} buf;
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf.b, .iov_len = sizeof(buf.b) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm;
	struct ump_msg m;
	unsigned int nfds = 0;
	ssize_t n;

	n = (ssize_t)ump_proto_encode(buf.b, type, id, body, len);
	CHECK(send(fd, buf.b, (size_t)n, 0) == n, "send: %m");
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	CHECK(n > 0, "recvmsg: %m");
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int f;

		memcpy(&f, CMSG_DATA(cm), sizeof(f));
		close(f);
		nfds++;
	}
	CHECK(ump_proto_decode(UMP_SIDE_CLIENT, buf.b, (size_t)n, nfds, &m) == 0, "decode reply");
	CHECK(m.type == (type | UMP_REPLY) && m.id == id, "reply type %#x", m.type);
	CHECK(m.body_len == reply_len, "reply length");
	memcpy(reply, m.body, reply_len);
	return ((const struct ump_reply_hdr *)reply)->status;
}

static void watcher_cannot_place(uint64_t interval_id, uint64_t start)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ump_hello h = { .version = UMP_PROTO_VERSION, .features = UMP_PFEAT_ALL };
	struct ump_watch w = { .pid = getpid() };
	struct ump_place pl = { .interval_id = interval_id, .start = start, .npages = 1 };
	struct ump_hello_reply hr;
	struct ump_place_reply pr;
	struct ump_reply_hdr rh;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), ret;

	CHECK(fd >= 0, "socket: %m");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", harness_socket());
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %m");
	CHECK(raw_call(fd, UMP_MSG_HELLO, 1, &h, sizeof(h), &hr, sizeof(hr)) == 0, "hello");
	CHECK(raw_call(fd, UMP_MSG_WATCH, 2, &w, sizeof(w), &rh, sizeof(rh)) == 0, "watch");
	ret = raw_call(fd, UMP_MSG_PLACE, 3, &pl, sizeof(pl), &pr, sizeof(pr));
	CHECK(ret == -EACCES, "a watcher places: %s, want EACCES", strerror(-ret));
	close(fd);
}

int main(void)
{
	uint64_t pfns[NPAGES];
	int32_t nodes[NPAGES];
	int want[NPAGES];
	void *pages[NPAGES];
	struct um_range r = { .pfns = pfns, .nodes = nodes };
	struct um_interval *iv;
	struct um_client *c;
	int offline = 0, target;
	unsigned int before;
	long n;
	bool wp_unpopulated;
	char *p;

	if (access("/sys/devices/system/node/online", R_OK) < 0)
		harness_skip("no NUMA in this kernel (/sys/devices/system/node)");
	while (node_in("/sys/devices/system/node/online", offline))
		offline++;
	harness_start("test_placement", NULL);
	sem_init(&ev.sem, 0, 0);
	CHECK(node_in("/sys/devices/system/node/has_memory", 0), "node 0 has no memory");
	CHECK(um_connect(NULL, 0, &c) == 0, "connect");
	p = harness_map_anon(NPAGES, PROT_READ | PROT_WRITE);
	memset(p, 'x', NPRESENT * PAGE);
	CHECK(um_interval_insert(c, p, NPAGES * PAGE, 0, &ops, NULL, &iv) == 0, "insert");
	r.start = (uintptr_t)p;
	r.end = r.start + NPAGES * PAGE;
	CHECK(um_range_register(&r, iv) == 0, "register");

	memset(nodes, 0x55, sizeof(nodes));
	n = harness_snapshot(&r);
	CHECK(n == NPAGES, "snapshot: %ld", n);
	for (int i = 0; i < NPAGES; i++)
		pages[i] = p + i * PAGE;
	CHECK(syscall(SYS_move_pages, 0, NPAGES, pages, NULL, want, 0) == 0, "move_pages: %m");
	/*
	 * Pages past NPRESENT were never touched: not present, or (without
	 * WP_UNPOPULATED, read-faulted at insert) the zero page, which
	 * move_pages does not report on a node.
	 */
	wp_unpopulated = harness_kfeatures(c) & UM_FEAT_WP_UNPOPULATED;
	for (int i = 0; i < NPAGES; i++) {
		uint64_t pm = harness_pagemap(pages[i]);
		bool present = pm & PM_PRESENT;
		bool touched = i < NPRESENT;

		CHECK(nodes[i] == want[i], "page %d: daemon says node %d, move_pages %d", i,
		      nodes[i], want[i]);
		CHECK(present == (touched || !wp_unpopulated) &&
			      !!(pfns[i] & UM_DEFAULT_VALID) == present,
		      "page %d present %d", i, present);
		CHECK(touched ? nodes[i] >= 0 : nodes[i] < 0, "page %d: node %d", i, nodes[i]);
	}

	/*
	 * Move the pages to another node with memory where there is one (a
	 * real migration, new PFNs), else ask for the node they are on.
	 */
	target = nodes[0];
	for (int nd = 0; nd < offline; nd++)
		if (nd != nodes[0] && node_in("/sys/devices/system/node/has_memory", nd)) {
			target = nd;
			break;
		}
	printf("pages on node %d, placing on node %d (%d nodes online)\n", nodes[0], target,
	       offline);

	/* placement: MIGRATE first (acked by our callback), then the answer */
	n = um_range_place(&r, target);
	CHECK(n == NPRESENT, "place on node %d: %ld, want %d", target, n, NPRESENT);
	pthread_mutex_lock(&ev.lock);
	CHECK(ev.migrate == 1 && ev.start == r.start && ev.end == r.end,
	      "one MIGRATE invalidation over the range before the reply (%u)", ev.migrate);
	pthread_mutex_unlock(&ev.lock);
	CHECK(um_range_wait_until_valid(&r, 0) == 0, "valid again after the move");
	CHECK(syscall(SYS_move_pages, 0, NPRESENT, pages, NULL, want, 0) == 0, "move_pages: %m");
	n = harness_snapshot(&r);
	CHECK(n == NPAGES, "snapshot after the move: %ld", n);
	for (int i = 0; i < NPRESENT; i++)
		CHECK(want[i] == target && nodes[i] == target,
		      "page %d after the move: move_pages says node %d, daemon %d, want %d", i,
		      want[i], nodes[i], target);

	before = ev.n;
	n = um_range_place(&r, offline);
	CHECK(n == -ENODEV, "place on node %d (not online): %ld, want ENODEV", offline, n);
	harness_sem_wait_ms(&ev.sem, 200); /* time for a stray one to arrive */
	CHECK(ev.n == before, "no invalidation for a refused placement");

	watcher_cannot_place(um_interval_id(iv), r.start);

	um_range_unregister(&r);
	CHECK(um_interval_remove(iv) == 0, "remove");
	um_disconnect(c);
	return harness_summary();
}
