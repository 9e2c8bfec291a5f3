/* SPDX-License-Identifier: MIT */
/*
 * jparse.h - a strict little JSON reader for the CLI tests (RFC 8259: the
 * whole text must be exactly one value). Only what the tests look at:
 * member lookup, array items, integers and strings.
 */
#ifndef UMIRROR_TEST_JPARSE_H
#define UMIRROR_TEST_JPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;	  /* J_BOOL */
	char *s;  /* J_STR: decoded (\uXXXX beyond ASCII as '?'); J_NUM: the token */
	size_t n; /* J_ARR, J_OBJ: number of items */
	struct jv *items;
	char **keys; /* J_OBJ: the member names, in order */
};

/**
 * jparse() - parse @text (NUL-terminated) into a tree.
 * Return: 0 and *@out (free with jfree()); -EINVAL not one JSON value
 * (*@err_at: the byte offset where it went wrong); -ENOMEM.
 */
int jparse(const char *text, struct jv **out, size_t *err_at);

/** jfree() - free a tree from jparse() (NULL is fine). */
void jfree(struct jv *v);

/** jget() - member @key of object @o, or NULL (also when @o is not an object). */
const struct jv *jget(const struct jv *o, const char *key);

/** jint() - @v as an integer; false unless @v is a number with no fraction or exponent. */
bool jint(const struct jv *v, int64_t *out);

/** jhex() - @v as a "0x..." string of umirrorctl's addresses; false otherwise. */
bool jhex(const struct jv *v, uint64_t *out);

/** jstr_is() - @v is the string @s. */
bool jstr_is(const struct jv *v, const char *s);

/** jarr_has_str() - array @a holds the string @s. */
bool jarr_has_str(const struct jv *a, const char *s);

#endif /* UMIRROR_TEST_JPARSE_H */
