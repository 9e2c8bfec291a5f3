/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - a program built against an *installed* libumirror: the
 * header, the shared library and the symbol versions are the ones a
 * distribution ships. Connecting to a socket that does not exist must fail
 * with a negative errno (the library's one error convention), and the
 * library must be callable at all (um_reason_str).
 *
 * Usage: consumer SOCKET_PATH. Prints three lines the test compares; exit 0
 * when every check held, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <umirror.h>

int main(int argc, char **argv)
{
	struct um_client *c = NULL;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: consumer SOCKET_PATH\n");
		return 2;
	}
	ret = um_connect(argv[1], 0, &c);
	if (ret >= 0 || ret < -4095) {
		fprintf(stderr, "consumer: um_connect(%s) = %d, want a negative errno\n", argv[1],
			ret);
		um_disconnect(c);
		return 1;
	}
	if (c) {
		fprintf(stderr, "consumer: um_connect failed but set the client\n");
		return 1;
	}
	/* the installed library and the installed headers are the same version */
	if (strcmp(um_version(), UMIRROR_VERSION_STRING)) {
		fprintf(stderr, "consumer: um_version() %s, headers %s\n", um_version(),
			UMIRROR_VERSION_STRING);
		return 1;
	}
	printf("version %s\n", um_version());
	printf("connect %d %s\n", ret, strerror(-ret));
	printf("reason %s\n", um_reason_str(UM_REASON_WRITE));
	return 0;
}
