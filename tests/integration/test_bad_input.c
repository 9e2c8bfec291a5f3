/* SPDX-License-Identifier: MIT */
/*
 * test_bad_input - bad arguments and misbehaving peers.
 *
 * The library refuses bad ranges itself. Raw clients (socket +
 * ump_proto_encode) send a bad field (answered -EINVAL, kept), garbage
 * (bad magic, truncated, wrong body size: dropped), a request before HELLO
 * (dropped), an unknown version (refused, dropped) and ATTACH with fds that
 * are not userfaultfds (-EBADF, kept). A well-behaved library client keeps
 * getting invalidations and snapshots before and after.
 */
#include "harness.h"
#include "rawclient.h"
#include "umirror.h"
#include "umirror_proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAGES 8

static sem_t ev_sem;

static void on_invalidate(struct um_interval *iv, const struct um_invalidation *inv, void *priv)
{
	sem_post(&ev_sem);
}

static const struct um_interval_ops ops = { .invalidate = on_invalidate };

/* --- the well-behaved client ----------------------------------------- */

static struct um_client *good;
static struct um_interval *good_iv;
static char *good_buf;
static int good_page;

static void good_client_works(const char *when)
{
	uint64_t pfns[NPAGES];
	struct um_range r = { .start = (uintptr_t)good_buf,
			      .end = (uintptr_t)good_buf + NPAGES * PAGE,
			      .pfns = pfns };
	long ret;

	CHECK(good_page < NPAGES, "test has pages left");
	good_buf[good_page++ * PAGE] = 'w';
	CHECK(harness_sem_wait_ms(&ev_sem, 5000), "%s: invalidation delivered", when);
	CHECK(um_range_register(&r, good_iv) == 0, "register");
	/* the callback ran; the ack that completes the invalidation may be in flight */
	CHECK(um_range_wait_until_valid(&r, 2000) == 0, "%s: valid again", when);
	ret = um_range_snapshot(&r);
	CHECK(ret == NPAGES, "%s: snapshot returned %ld", when, ret);
	CHECK((pfns[good_page - 1] & (UM_DEFAULT_VALID | UM_DEFAULT_WRITE)) ==
		      (UM_DEFAULT_VALID | UM_DEFAULT_WRITE),
	      "%s: written page valid and writable", when);
	um_range_unregister(&r);
}

static void raw_still_connected(int fd, uint64_t id, const char *after)
{
	raw_send(fd, UMP_MSG_PING, id, NULL, 0, -1);
	CHECK(raw_reply(fd, UMP_MSG_PING, id) == 0, "still served after %s", after);
}

static void raw_dropped(int fd, const char *after)
{
	CHECK(raw_recv(fd) == 0, "dropped (EOF) after %s", after);
	close(fd);
}

static void attach_not_uffd(void)
{
	struct ump_attach at = { .uffd_mode = UMP_UFFD_SYSCALL, .probe = 0x10000 };
	int fd = raw_connect(), pfd[2], efd;
	int32_t ret;

	raw_hello(fd);
	CHECK(pipe(pfd) == 0, "pipe: %m");
	raw_send(fd, UMP_MSG_ATTACH, 2, &at, sizeof(at), pfd[0]);
	ret = raw_reply(fd, UMP_MSG_ATTACH, 2);
	CHECK(ret == -EBADF, "ATTACH(pipe): %d, want -EBADF", ret);
	raw_still_connected(fd, 3, "ATTACH(pipe)");
	efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0, "eventfd: %m");
	raw_send(fd, UMP_MSG_ATTACH, 4, &at, sizeof(at), efd);
	ret = raw_reply(fd, UMP_MSG_ATTACH, 4);
	CHECK(ret == -EBADF, "ATTACH(eventfd): %d, want -EBADF", ret);
	raw_still_connected(fd, 5, "ATTACH(eventfd)");
	close(pfd[0]);
	close(pfd[1]);
	close(efd);
	close(fd);
}

static void test_library_args(void)
{
	struct um_interval *iv = NULL;
	uint64_t raw[2], pfns[2];
	struct um_range r = { .pfns = pfns };

	CHECK(um_interval_insert(good, good_buf + 1, PAGE, 0, NULL, NULL, &iv) == -EINVAL,
	      "unaligned address");
	CHECK(um_interval_insert(good, good_buf, 0, 0, NULL, NULL, &iv) == -EINVAL, "zero length");
	CHECK(um_interval_insert(good, good_buf, 100, 0, NULL, NULL, &iv) == -EINVAL,
	      "unaligned length");
	CHECK(um_interval_insert(good, (void *)(uintptr_t)-PAGE, 2 * PAGE, 0, NULL, NULL, &iv) ==
		      -EINVAL,
	      "overflowing range");
	CHECK(iv == NULL, "no interval came back");
	CHECK(um_snapshot_raw(good, getpid(), (uintptr_t)good_buf + 8, 1, raw) == -EINVAL,
	      "raw snapshot, unaligned start");
	CHECK(um_snapshot_raw(good, getpid(), (uintptr_t)good_buf, 0, raw) == -EINVAL,
	      "raw snapshot, zero pages");
	r.start = (uintptr_t)good_buf + 1;
	r.end = r.start + PAGE;
	CHECK(um_range_register(&r, good_iv) == -EINVAL, "unaligned range");
	r.start = (uintptr_t)good_buf;
	r.end = r.start;
	CHECK(um_range_register(&r, good_iv) == -EINVAL, "empty range");
	r.end = r.start + (NPAGES + 1) * PAGE;
	CHECK(um_range_register(&r, good_iv) == -EINVAL, "range beyond the interval");
}

int main(void)
{
	int fd;

	if (geteuid() != 0)
		harness_skip("umirrord needs root");
	harness_start("test_bad_input", NULL);
	sem_init(&ev_sem, 0, 0);
	good_buf = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	CHECK(good_buf != MAP_FAILED, "mmap: %m");
	memset(good_buf, 'a', NPAGES * PAGE);
	CHECK(um_connect(NULL, 0, &good) == 0, "connect");
	CHECK(um_interval_insert(good, good_buf, NPAGES * PAGE, 0, &ops, NULL, &good_iv) == 0,
	      "insert");
	good_client_works("start");
	test_library_args();

	/* a bad field: -EINVAL, connection kept */
	fd = raw_connect();
	raw_hello(fd);
	{
		struct ump_insert ins = { .start = 0x10001, .length = PAGE };

		raw_send(fd, UMP_MSG_INSERT, 2, &ins, sizeof(ins), -1);
		CHECK(raw_reply(fd, UMP_MSG_INSERT, 2) == -EINVAL, "unaligned INSERT: -EINVAL");
		raw_still_connected(fd, 3, "a bad INSERT");
		ins.start = (uintptr_t)good_buf;
		raw_send(fd, UMP_MSG_INSERT, 4, &ins, sizeof(ins), -1);
		CHECK(raw_reply(fd, UMP_MSG_INSERT, 4) == -EBADFD, "INSERT before ATTACH: -EBADFD");
		raw_still_connected(fd, 5, "INSERT before ATTACH");
	}
	{
		/* bad fields in messages that have no reply: ignored, kept (fuzz_server found it)
		 */
		struct ump_populate_done pd = { .token = 0, .status = -EFAULT };
		struct ump_ack ack = { .interval_id = 7, .seq = 2 };
		struct ump_populate_done late = { .token = 12345 };

		raw_send(fd, UMP_MSG_POPULATE_DONE, 6, &pd, sizeof(pd), -1);
		raw_send(fd, UMP_MSG_ACK, 7, &ack, sizeof(ack), -1);
		raw_send(fd, UMP_MSG_POPULATE_DONE, 8, &late, sizeof(late), -1);
		/* the next thing that arrives is PING's reply: nothing answered those */
		raw_still_connected(fd, 9, "bad POPULATE_DONE / ACK and a late POPULATE_DONE");
	}
	{
		/* requests of this session's protocol with bad fields: -EINVAL, kept */
		struct ump_fault f = { .interval_id = 1, .start = 0x1000, .npages = 0 };
		struct ump_dirty d = {
			.interval_id = 1, .start = 0x2000, .end = 0x1000, .max_ranges = 1
		};
		struct ump_revalidate rv = { .interval_id = 1, .period_ms = 5 };

		raw_send(fd, UMP_MSG_FAULT, 10, &f, sizeof(f), -1);
		CHECK(raw_reply(fd, UMP_MSG_FAULT, 10) == -EINVAL, "FAULT of 0 pages: -EINVAL");
		raw_send(fd, UMP_MSG_DIRTY, 11, &d, sizeof(d), -1);
		CHECK(raw_reply(fd, UMP_MSG_DIRTY, 11) == -EINVAL, "DIRTY end < start: -EINVAL");
		raw_send(fd, UMP_MSG_REVALIDATE, 12, &rv, sizeof(rv), -1);
		CHECK(raw_reply(fd, UMP_MSG_REVALIDATE, 12) == -EINVAL, "5 ms period: -EINVAL");
		f.npages = 1;
		f.interval_id = um_interval_id(good_iv);
		raw_send(fd, UMP_MSG_FAULT, 13, &f, sizeof(f), -1);
		CHECK(raw_reply(fd, UMP_MSG_FAULT, 13) == -EACCES, "FAULT of another's interval");
		f.interval_id = 999999;
		raw_send(fd, UMP_MSG_FAULT, 15, &f, sizeof(f), -1);
		CHECK(raw_reply(fd, UMP_MSG_FAULT, 15) == -ENOENT, "FAULT of an unknown interval");
		raw_still_connected(fd, 14, "bad FAULT / DIRTY / REVALIDATE");
	}

	close(fd);

	/* ATTACH with fds that are not userfaultfds: -EBADF, kept. From a child:
	 * this process is attached already, and a second ATTACH per pid is -EBUSY. */
	{
		pid_t pid = fork();
		int status;

		CHECK(pid >= 0, "fork: %m");
		if (pid == 0) {
			alarm(harness_scaled_s(30));
			attach_not_uffd();
			_exit(0);
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			      WEXITSTATUS(status) == 0,
		      "ATTACH checks in the child passed (status 0x%x)", status);
	}
	good_client_works("after bad fields");

	/* garbage: dropped */
	{
		_Alignas(8) char m[UMP_MSG_MAX];
		struct ump_hdr *h = (struct ump_hdr *)m;
		size_t len;

		fd = raw_connect();
		raw_hello(fd);
		len = ump_proto_encode(m, UMP_MSG_PING, 2, NULL, 0);
		h->magic ^= 0xff;
		raw_send_bytes(fd, m, len, -1);
		raw_dropped(fd, "bad magic");

		fd = raw_connect();
		raw_hello(fd);
		raw_send_bytes(fd, m, 10, -1);
		raw_dropped(fd, "a truncated message");

		fd = raw_connect();
		raw_hello(fd);
		memset(m + sizeof(*h), 0, 16);
		len = ump_proto_encode(m, UMP_MSG_INSERT, 2, m + sizeof(*h), 16);
		raw_send_bytes(fd, m, len, -1);
		raw_dropped(fd, "a wrong body size");

		fd = raw_connect();
		raw_hello(fd);
		len = ump_proto_encode(m, UMP_MSG_PING, 2, NULL, 0);
		h->length += 8; /* header says more than arrived */
		raw_send_bytes(fd, m, len, -1);
		raw_dropped(fd, "a length field that lies");
	}
	good_client_works("after garbage");

	/* a request before HELLO: dropped */
	fd = raw_connect();
	raw_send(fd, UMP_MSG_PING, 1, NULL, 0, -1);
	raw_dropped(fd, "a request before HELLO");

	/* an unknown version: refused, then dropped */
	{
		struct ump_hello hello = { .version = UMP_PROTO_VERSION + 1 };

		fd = raw_connect();
		raw_send(fd, UMP_MSG_HELLO, 1, &hello, sizeof(hello), -1);
		CHECK(raw_reply(fd, UMP_MSG_HELLO, 1) == -EPROTONOSUPPORT,
		      "HELLO version 2: -EPROTONOSUPPORT");
		raw_dropped(fd, "an unsupported version");
	}
	good_client_works("at the end");

	CHECK(um_interval_remove(good_iv) == 0, "remove");
	um_disconnect(good);
	munmap(good_buf, NPAGES * PAGE);
	return harness_summary();
}
