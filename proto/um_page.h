/* SPDX-License-Identifier: MIT */
/*
 * um_page.h - the one page-size constant of umirror, apart from the rest of
 * umirror_proto.h so that code which must not see the wire structures (the
 * tests, beside the public umirror.h) can use it too.
 */
#ifndef UMIRROR_UM_PAGE_H
#define UMIRROR_UM_PAGE_H

/*
 * The wire counts memory in 4 KiB base pages: page-aligned starts and
 * lengths, npages, one snapshot entry and one dirty bit per 4 KiB. The
 * daemon and the library assume the kernel's base page is that size too
 * (x86_64; arm64 and others only when configured for 4 KiB pages).
 * This is the one definition: the daemon, the library, the protocol checks,
 * umirrorctl and the integration harness use it.
 */
#define UMP_PAGE_SHIFT 12
#define UMP_PAGE_SIZE (1ull << UMP_PAGE_SHIFT)
_Static_assert(UMP_PAGE_SIZE == 4096, "the wire assumes 4 KiB base pages");

#endif
