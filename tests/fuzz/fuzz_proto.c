/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto.c - libFuzzer target for ump_proto_decode().
 *
 * Input: byte 0 selects the decoding side (bit 0: 0 daemon, 1 client) and
 * the number of fds that "arrived" (bits 1-2); the rest is the datagram.
 * Whatever decodes (0, or -EINVAL with the message named) must re-encode
 * to the very same bytes and decode again to the same result: the decoder
 * accepted nothing it did not understand completely.
 *
 * Build: cmake --preset fuzz && cmake --build --preset fuzz; run:
 * build-fuzz/tests/fuzz/fuzz_proto -max_total_time=20 tests/fuzz/corpus
 */
#include "umirror_proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static union {
		uint64_t align;
		unsigned char b[UMP_MSG_MAX];
	} again;
	enum ump_proto_side side;
	unsigned int nfds;
	struct ump_msg m;
	unsigned char *buf;
	size_t len, n;
	int ret, ret2;

	if (size < 1 || size - 1 > 4 * UMP_MSG_MAX)
		return 0;
	side = data[0] & 1 ? UMP_SIDE_CLIENT : UMP_SIDE_DAEMON;
	nfds = (data[0] >> 1) & 3;
	len = size - 1;

	/* exactly len bytes on the heap, so ASan sees any read past them */
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);

	memset(&m, 0, sizeof(m));
	ret = ump_proto_decode(side, buf, len, nfds, &m);
	if (ret != 0 && ret != -EINVAL && ret != -EPROTO)
		abort();
	if (ret == -EPROTO)
		goto out;

	if (m.hdr != (const void *)buf || m.body_len != (size_t)ump_proto_body_size(m.type) ||
	    nfds != ump_proto_fds(m.type) || len != sizeof(struct ump_hdr) + m.body_len)
		abort();
	(void)ump_msg_type_name(m.type);
	if (m.type == UMP_EV_INVALIDATE)
		(void)ump_reason_name(((const struct ump_ev_invalidate *)m.body)->reason);

	n = ump_proto_encode(again.b, m.type, m.id, m.body, m.body_len);
	if (n != len || memcmp(again.b, buf, len))
		abort();
	ret2 = ump_proto_decode(side, again.b, n, nfds, &m);
	if (ret2 != ret)
		abort();
out:
	free(buf);
	return 0;
}
