/* SPDX-License-Identifier: MIT */
/*
 * test_json.c - umirrorctl's JSON writer (cli/json.c).
 *
 * The exact text of escapes (quotes, backslash, every control character,
 * DEL), of UTF-8 passed through and of every kind of invalid sequence
 * replaced by U+FFFD; commas and nesting, empty containers, pretty
 * indentation, the extreme numbers; and, over random byte strings, that
 * the output is one strict JSON value in valid UTF-8 with no raw control
 * character. The random part prints its seed; UM_SEED=N replays it.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include <cmocka.h>

#include "jparse.h"
#include "json.h"

/* a writer into memory; text() ends it and returns what was written */
struct out {
	char *buf;
	size_t len;
	FILE *f;
	struct json j;
};

static void out_open(struct out *o)
{
	o->buf = NULL;
	o->f = open_memstream(&o->buf, &o->len);
	assert_non_null(o->f);
	json_init(&o->j, o->f);
}

static const char *out_text(struct out *o)
{
	fclose(o->f);
	o->f = NULL;
	return o->buf;
}

static void out_free(struct out *o)
{
	if (o->f)
		fclose(o->f);
	free(o->buf);
}

/* @s as one JSON string document, without the newline json_end() adds */
static char *string_doc(const char *s)
{
	struct out o;
	char *text;
	size_t n;

	out_open(&o);
	json_string(&o.j, s);
	json_end(&o.j);
	text = strdup(out_text(&o));
	out_free(&o);
	n = strlen(text);
	assert_true(n > 0 && text[n - 1] == '\n');
	text[n - 1] = '\0';
	return text;
}

static void check_string(const char *in, const char *want)
{
	char *got = string_doc(in);

	assert_string_equal(got, want);
	free(got);
}

static void test_escapes(void **state)
{
	check_string("", "\"\"");
	check_string("plain text", "\"plain text\"");
	check_string("a\"b", "\"a\\\"b\"");
	check_string("a\\b", "\"a\\\\b\"");
	check_string("/", "\"/\""); /* solidus needs no escape */
	check_string("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	check_string("\x01\x1f", "\"\\u0001\\u001f\"");
	check_string("\x7f", "\"\\u007f\"");
	check_string(" ~", "\" ~\"");
}

/* every control character is escaped, the short forms where JSON has them */
static void test_every_control_char(void **state)
{
	static const char *const shortform[0x20] = {
		['\b'] = "\\b", ['\t'] = "\\t", ['\n'] = "\\n", ['\f'] = "\\f", ['\r'] = "\\r",
	};

	for (int c = 1; c < 0x20; c++) {
		char in[2] = { (char)c, 0 }, want[16];

		if (shortform[c])
			snprintf(want, sizeof(want), "\"%s\"", shortform[c]);
		else
			snprintf(want, sizeof(want), "\"\\u%04x\"", c);
		check_string(in, want);
	}
}

static void test_utf8_valid(void **state)
{
	/* U+00E9, U+20AC, U+1F600, and the edges of each length */
	check_string("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	check_string("\xe2\x82\xac", "\"\xe2\x82\xac\"");
	check_string("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
	check_string("\xc2\x80", "\"\xc2\x80\"");		  /* U+0080 */
	check_string("\xdf\xbf", "\"\xdf\xbf\"");		  /* U+07FF */
	check_string("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");	  /* U+0800 */
	check_string("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");	  /* U+D7FF */
	check_string("\xee\x80\x80", "\"\xee\x80\x80\"");	  /* U+E000 */
	check_string("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");	  /* U+FFFF */
	check_string("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""); /* U+10000 */
	check_string("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
}

#define FFFD "\\ufffd"

/* each byte that starts no valid sequence becomes one U+FFFD, then on */
static void test_utf8_invalid(void **state)
{
	check_string("\x80", "\"" FFFD "\""); /* lone continuation */
	check_string("a\xbf"
		     "b",
		     "\"a" FFFD "b\"");
	check_string("\xc0\x80", "\"" FFFD FFFD "\"");		/* overlong NUL */
	check_string("\xc1\xbf", "\"" FFFD FFFD "\"");		/* overlong 2-byte */
	check_string("\xe0\x80\x80", "\"" FFFD FFFD FFFD "\""); /* overlong 3-byte */
	check_string("\xe0\x9f\xbf", "\"" FFFD FFFD FFFD "\"");
	check_string("\xf0\x8f\xbf\xbf", "\"" FFFD FFFD FFFD FFFD "\""); /* overlong 4 */
	check_string("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"");		 /* U+D800 */
	check_string("\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\"");		 /* U+DFFF */
	check_string("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
	check_string("\xf5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
	check_string("\xff", "\"" FFFD "\"");
	/* cut short: at the end of the string, and before an ASCII byte */
	check_string("\xe2\x82", "\"" FFFD FFFD "\"");
	check_string("\xf0\x9f\x98", "\"" FFFD FFFD FFFD "\"");
	check_string("\xe2\x82x", "\"" FFFD FFFD "x\"");
	/* an invalid byte does not swallow the valid sequence after it */
	check_string("\xc3\xc3\xa9", "\"" FFFD "\xc3\xa9\"");
	/* a quote after a broken lead byte is still escaped */
	check_string("\xc3\"", "\"" FFFD "\\\"\"");
}

static void test_null_string(void **state)
{
	struct out o;

	out_open(&o);
	json_begin_array(&o.j);
	json_string(&o.j, NULL);
	json_string(&o.j, "");
	json_end_array(&o.j);
	json_end(&o.j);
	assert_string_equal(out_text(&o), "[null,\"\"]\n");
	out_free(&o);
}

static void test_numbers(void **state)
{
	struct out o;

	out_open(&o);
	json_begin_array(&o.j);
	json_u64(&o.j, 0);
	json_u64(&o.j, UINT64_MAX);
	json_i64(&o.j, INT64_MIN);
	json_i64(&o.j, -1);
	json_hex(&o.j, 0);
	json_hex(&o.j, UINT64_MAX);
	json_double(&o.j, 1.5, 3);
	json_double(&o.j, 2.0 / 3, 1);
	json_double(&o.j, 12345.678, 0);
	json_bool(&o.j, true);
	json_bool(&o.j, false);
	json_end_array(&o.j);
	json_end(&o.j);
	assert_string_equal(out_text(&o), "[0,18446744073709551615,-9223372036854775808,-1,"
					  "\"0x0\",\"0xffffffffffffffff\",1.500,0.7,12346,"
					  "true,false]\n");
	out_free(&o);
}

/* JSON has no NaN or infinity: a rate of 0 pages in 0 s must still parse */
static void test_double_not_finite(void **state)
{
	struct out o;

	out_open(&o);
	json_begin_array(&o.j);
	json_double(&o.j, NAN, 1);
	json_double(&o.j, INFINITY, 3);
	json_double(&o.j, -INFINITY, 0);
	json_double(&o.j, -0.25, 2);
	json_end_array(&o.j);
	json_end(&o.j);
	assert_string_equal(out_text(&o), "[null,null,null,-0.25]\n");
	out_free(&o);
}

/* commas between members and elements at every depth, none after the last */
static void test_nesting(void **state)
{
	struct out o;

	out_open(&o);
	json_begin_object(&o.j);
	json_key(&o.j, "a");
	json_begin_array(&o.j);
	json_begin_object(&o.j);
	json_end_object(&o.j);
	json_begin_array(&o.j);
	json_end_array(&o.j);
	json_begin_object(&o.j);
	json_key(&o.j, "x");
	json_u64(&o.j, 1);
	json_key(&o.j, "y\n");
	json_begin_array(&o.j);
	json_u64(&o.j, 2);
	json_u64(&o.j, 3);
	json_end_array(&o.j);
	json_end_object(&o.j);
	json_end_array(&o.j);
	json_key(&o.j, "b");
	json_bool(&o.j, false);
	json_end_object(&o.j);
	json_end(&o.j);
	assert_string_equal(out_text(&o), "{\"a\":[{},[],{\"x\":1,\"y\\n\":[2,3]}],\"b\":false}\n");
	out_free(&o);
}

/* the deepest nesting the writer allows, closed again */
static void test_max_depth(void **state)
{
	char want[2 * JSON_MAX_DEPTH + 2];
	struct out o;

	out_open(&o);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_begin_array(&o.j);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_end_array(&o.j);
	json_end(&o.j);
	memset(want, '[', JSON_MAX_DEPTH);
	memset(want + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	strcpy(want + 2 * JSON_MAX_DEPTH, "\n");
	assert_string_equal(out_text(&o), want);
	out_free(&o);
}

/* one writer, several documents: no comma carried from one to the next */
static void test_documents(void **state)
{
	struct out o;

	out_open(&o);
	json_begin_object(&o.j);
	json_key(&o.j, "n");
	json_u64(&o.j, 1);
	json_end_object(&o.j);
	json_end(&o.j);
	json_begin_object(&o.j);
	json_end_object(&o.j);
	json_end(&o.j);
	json_u64(&o.j, 7);
	json_end(&o.j);
	assert_string_equal(out_text(&o), "{\"n\":1}\n{}\n7\n");
	out_free(&o);
}

static void test_pretty(void **state)
{
	struct out o;

	json_set_pretty(true);
	out_open(&o);
	json_begin_object(&o.j);
	json_key(&o.j, "a");
	json_u64(&o.j, 1);
	json_key(&o.j, "empty");
	json_begin_array(&o.j);
	json_end_array(&o.j);
	json_key(&o.j, "list");
	json_begin_array(&o.j);
	json_u64(&o.j, 2);
	json_begin_object(&o.j);
	json_key(&o.j, "b");
	json_string(&o.j, "c");
	json_end_object(&o.j);
	json_end_array(&o.j);
	json_end_object(&o.j);
	json_end(&o.j);
	json_set_pretty(false);
	assert_string_equal(out_text(&o), "{\n"
					  "  \"a\": 1,\n"
					  "  \"empty\": [],\n"
					  "  \"list\": [\n"
					  "    2,\n"
					  "    {\n"
					  "      \"b\": \"c\"\n"
					  "    }\n"
					  "  ]\n"
					  "}\n");
	out_free(&o);
}

/* a strict UTF-8 check of @s[0..n), by the C library, not by json.c's rules */
static int utf8_valid(const char *s, size_t n)
{
	mbstate_t st;
	size_t k;

	memset(&st, 0, sizeof(st));
	while (n) {
		wchar_t wc;

		k = mbrtowc(&wc, s, n, &st);
		if (k == (size_t)-1 || k == (size_t)-2)
			return 0;
		if (wc >= 0xd800 && wc <= 0xdfff)
			return 0;
		s += k ? k : 1;
		n -= k ? k : 1;
	}
	return 1;
}

/* bytes that make trouble more often than uniform ones would */
static unsigned char random_byte(void)
{
	static const unsigned char hard[] = { 0x00, 0x01, 0x1f, '"',  '\\', 0x7f, 0x80,
					      0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef,
					      0xf0, 0xf4, 0xf5, 0xff, 'a',  '\n' };

	return rand() % 2 ? hard[rand() % sizeof(hard)] : (unsigned char)rand();
}

static void test_random_strings(void **state)
{
	const char *env = getenv("UM_SEED");
	unsigned int seed = env ? (unsigned int)strtoul(env, NULL, 0) : (unsigned int)time(NULL);

	printf("test_json: seed %u (replay: UM_SEED=%u)\n", seed, seed);
	srand(seed);
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		skip();
	for (int iter = 0; iter < 20000; iter++) {
		char in[24];
		size_t n = rand() % (sizeof(in) - 1), err_at = 0;
		struct jv *v = NULL;
		char *doc;

		for (size_t i = 0; i < n; i++) {
			in[i] = (char)random_byte();
			if (!in[i])
				n = i; /* the writer sees a C string: it ends here */
		}
		in[n] = '\0';
		doc = string_doc(in);
		for (const char *p = doc; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				fail_msg("raw control byte %#x in %s", (unsigned char)*p, doc);
		if (!utf8_valid(doc, strlen(doc)))
			fail_msg("invalid UTF-8 out (seed %u, iteration %d)", seed, iter);
		if (jparse(doc, &v, &err_at))
			fail_msg("not JSON at byte %zu: %s (seed %u, iteration %d)", err_at, doc,
				 seed, iter);
		assert_int_equal(v->t, J_STR);
		/* ASCII without escapes comes back as it went in */
		if (strspn(in, "abcdefghijklmnopqrstuvwxyz") == n)
			assert_string_equal(v->s, in);
		jfree(v);
		free(doc);
	}
	setlocale(LC_CTYPE, "C");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),		  cmocka_unit_test(test_every_control_char),
		cmocka_unit_test(test_utf8_valid),	  cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_null_string),	  cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_nesting),		  cmocka_unit_test(test_max_depth),
		cmocka_unit_test(test_documents),	  cmocka_unit_test(test_pretty),
		cmocka_unit_test(test_double_not_finite), cmocka_unit_test(test_random_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
