/* SPDX-License-Identifier: MIT */
/*
 * json.c - a small streaming JSON writer (see json.h).
 */
#include "json.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>

/* one setting for the whole program: --pretty */
static bool pretty;

void json_set_pretty(bool on)
{
	pretty = on;
}

/* a new line indented to @depth */
static void newline(struct json *j, unsigned int depth)
{
	fputc('\n', j->f);
	for (unsigned int i = 0; i < depth; i++)
		fputs("  ", j->f);
}

void json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->after_key = false;
	j->need_comma[0] = false;
}

/* before any value or key: the separator the container needs */
static void sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	if (pretty && j->depth)
		newline(j, j->depth);
	j->need_comma[j->depth] = true;
}

static void open_container(struct json *j, char c)
{
	sep(j);
	assert(j->depth < JSON_MAX_DEPTH);
	fputc(c, j->f);
	j->need_comma[++j->depth] = false;
}

static void close_container(struct json *j, char c)
{
	assert(j->depth > 0 && !j->after_key);
	/* an empty container stays "[]" */
	if (pretty && j->need_comma[j->depth])
		newline(j, j->depth - 1);
	j->depth--;
	fputc(c, j->f);
}

void json_begin_object(struct json *j)
{
	open_container(j, '{');
}

void json_end_object(struct json *j)
{
	close_container(j, '}');
}

void json_begin_array(struct json *j)
{
	open_container(j, '[');
}

void json_end_array(struct json *j)
{
	close_container(j, ']');
}

/*
 * Length of the valid UTF-8 sequence at @s (1-4), or 0 if it is not one:
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static int utf8_len(const unsigned char *s)
{
	uint32_t cp;
	int n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void put_escaped(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		int n;

		switch (*s) {
		case '"':
			fputs("\\\"", f);
			s++;
			continue;
		case '\\':
			fputs("\\\\", f);
			s++;
			continue;
		case '\b':
			fputs("\\b", f);
			s++;
			continue;
		case '\f':
			fputs("\\f", f);
			s++;
			continue;
		case '\n':
			fputs("\\n", f);
			s++;
			continue;
		case '\r':
			fputs("\\r", f);
			s++;
			continue;
		case '\t':
			fputs("\\t", f);
			s++;
			continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s);
			s++;
			continue;
		}
		n = utf8_len(s);
		if (n == 0) {
			fputs("\\ufffd", f);
			s++;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
	fputc('"', f);
}

void json_key(struct json *j, const char *key)
{
	assert(!j->after_key);
	sep(j);
	put_escaped(j->f, key);
	fputs(pretty ? ": " : ":", j->f);
	j->after_key = true;
}

void json_string(struct json *j, const char *s)
{
	sep(j);
	if (s)
		put_escaped(j->f, s);
	else
		fputs("null", j->f);
}

void json_u64(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, int64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRId64, v);
}

void json_bool(struct json *j, bool v)
{
	sep(j);
	fputs(v ? "true" : "false", j->f);
}

void json_hex(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "\"0x%" PRIx64 "\"", v);
}

void json_double(struct json *j, double v, int decimals)
{
	sep(j);
	/* printf's "nan" and "inf" are not JSON, which has no such numbers */
	if (!isfinite(v)) {
		fputs("null", j->f);
		return;
	}
	fprintf(j->f, "%.*f", decimals, v);
}

void json_end(struct json *j)
{
	assert(j->depth == 0);
	fputc('\n', j->f);
	fflush(j->f);
	j->need_comma[0] = false;
}
