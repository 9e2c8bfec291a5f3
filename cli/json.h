/* SPDX-License-Identifier: MIT */
/*
 * json.h - a small streaming JSON writer for umirrorctl.
 *
 * Values are written as they come; the writer only remembers, per open
 * container, whether a comma is due. Strings are escaped per RFC 8259 and
 * bytes that are not valid UTF-8 become U+FFFD, so the output is always
 * valid JSON whatever the daemon sent.
 */
#ifndef UMIRRORCTL_JSON_H
#define UMIRRORCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	unsigned int depth;
	bool after_key;			     /* a key was written, its value is next */
	bool need_comma[JSON_MAX_DEPTH + 1]; /* per depth */
};

/**
 * json_set_pretty() - from now on, every writer puts each member and
 * element on a line of its own, indented two spaces a level (for people;
 * the default is one line per document, for programs).
 */
void json_set_pretty(bool on);

/** json_init() - start writing to @f. Holds nothing, waits for nothing. */
void json_init(struct json *j, FILE *f);

/** json_begin_object() / json_end_object() - '{' ... '}'. */
void json_begin_object(struct json *j);
void json_end_object(struct json *j);

/** json_begin_array() / json_end_array() - '[' ... ']'. */
void json_begin_array(struct json *j);
void json_end_array(struct json *j);

/** json_key() - an object member's name; the next call writes its value. */
void json_key(struct json *j, const char *key);

/** json_string() - @s escaped; NULL writes null. */
void json_string(struct json *j, const char *s);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_bool(struct json *j, bool v);
/** json_hex() - @v as the string "0x..." (addresses do not fit a double). */
void json_hex(struct json *j, uint64_t v);
/** json_double() - @v with @decimals digits after the point; NaN or infinite: null. */
void json_double(struct json *j, double v, int decimals);

/** json_end() - after the top-level value: a newline, and flush. */
void json_end(struct json *j);

#endif /* UMIRRORCTL_JSON_H */
