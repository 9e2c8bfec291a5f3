/* SPDX-License-Identifier: MIT */
/*
 * jparse.c - recursive descent over RFC 8259's grammar; depth-limited so a
 * broken output cannot blow the stack.
 */
#include "jparse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct parser {
	const char *p, *start;
	int depth;
};

static int value(struct parser *ps, struct jv *v);

static void ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* a string at ps->p (the opening quote), decoded into *out */
static int string(struct parser *ps, char **out)
{
	const char *q = ps->p + 1;
	size_t len = 0, cap = 16;
	char *s = malloc(cap);

	if (!s)
		return -ENOMEM;
	for (;;) {
		char c = *q++;

		if (c == '"')
			break;
		if ((unsigned char)c < 0x20)
			goto bad; /* includes the terminating NUL */
		if (c == '\\') {
			char e = *q++;

			switch (e) {
			case '"':
			case '\\':
			case '/':
				c = e;
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u': {
				int u = 0;

				for (int i = 0; i < 4; i++) {
					int d = hexdigit(q[i]);

					if (d < 0)
						goto bad;
					u = u * 16 + d;
				}
				q += 4;
				c = u < 0x80 ? (char)u : '?';
				break;
			}
			default:
				goto bad;
			}
		}
		if (len + 2 > cap) {
			char *n = realloc(s, cap *= 2);

			if (!n) {
				free(s);
				return -ENOMEM;
			}
			s = n;
		}
		s[len++] = c;
	}
	s[len] = '\0';
	ps->p = q;
	*out = s;
	return 0;
bad:
	free(s);
	ps->p = q - 1;
	return -EINVAL;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number(struct parser *ps, struct jv *v)
{
	const char *q = ps->p;

	if (*q == '-')
		q++;
	if (*q == '0')
		q++;
	else if (*q >= '1' && *q <= '9')
		while (*q >= '0' && *q <= '9')
			q++;
	else
		return -EINVAL;
	if (*q == '.') {
		if (!(*++q >= '0' && *q <= '9'))
			return -EINVAL;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		if (!(*q >= '0' && *q <= '9'))
			return -EINVAL;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	v->t = J_NUM;
	v->s = strndup(ps->p, q - ps->p);
	if (!v->s)
		return -ENOMEM;
	ps->p = q;
	return 0;
}

/* append a zeroed item to @v (an array or object) */
static struct jv *push(struct jv *v)
{
	struct jv *items = realloc(v->items, (v->n + 1) * sizeof(*items));

	if (!items)
		return NULL;
	v->items = items;
	if (v->t == J_OBJ) {
		char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));

		if (!keys)
			return NULL;
		v->keys = keys;
		v->keys[v->n] = NULL;
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	return &v->items[v->n++];
}

static int container(struct parser *ps, struct jv *v, char close)
{
	int r;

	if (++ps->depth > MAX_DEPTH)
		return -EINVAL;
	ps->p++;
	ws(ps);
	if (*ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		struct jv *item;

		ws(ps);
		item = push(v);
		if (!item)
			return -ENOMEM;
		if (close == '}') {
			if (*ps->p != '"')
				return -EINVAL;
			r = string(ps, &v->keys[v->n - 1]);
			if (r)
				return r;
			ws(ps);
			if (*ps->p++ != ':')
				return -EINVAL;
			ws(ps);
		}
		r = value(ps, item);
		if (r)
			return r;
		ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p != close)
			return -EINVAL;
		ps->p++;
		ps->depth--;
		return 0;
	}
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(ps->p, word, n))
		return -EINVAL;
	ps->p += n;
	return 0;
}

static int value(struct parser *ps, struct jv *v)
{
	switch (*ps->p) {
	case '{':
		v->t = J_OBJ;
		return container(ps, v, '}');
	case '[':
		v->t = J_ARR;
		return container(ps, v, ']');
	case '"':
		v->t = J_STR;
		return string(ps, &v->s);
	case 't':
		v->t = J_BOOL;
		v->b = true;
		return literal(ps, "true");
	case 'f':
		v->t = J_BOOL;
		return literal(ps, "false");
	case 'n':
		v->t = J_NULL;
		return literal(ps, "null");
	default:
		return number(ps, v);
	}
}

static void jfree_inner(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree_inner(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
}

void jfree(struct jv *v)
{
	if (!v)
		return;
	jfree_inner(v);
	free(v);
}

int jparse(const char *text, struct jv **out, size_t *err_at)
{
	struct parser ps = { .p = text, .start = text };
	struct jv *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	ws(&ps);
	r = value(&ps, v);
	if (!r) {
		ws(&ps);
		if (*ps.p)
			r = -EINVAL;
	}
	if (r) {
		if (err_at)
			*err_at = ps.p - ps.start;
		jfree(v);
		return r;
	}
	*out = v;
	return 0;
}

const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->items[i];
	return NULL;
}

bool jint(const struct jv *v, int64_t *out)
{
	char *end;

	if (!v || v->t != J_NUM || strpbrk(v->s, ".eE"))
		return false;
	errno = 0;
	*out = strtoll(v->s, &end, 10);
	return !errno && !*end;
}

bool jhex(const struct jv *v, uint64_t *out)
{
	char *end;

	if (!v || v->t != J_STR || strncmp(v->s, "0x", 2) || !v->s[2])
		return false;
	errno = 0;
	*out = strtoull(v->s + 2, &end, 16);
	return !errno && !*end;
}

bool jstr_is(const struct jv *v, const char *s)
{
	return v && v->t == J_STR && !strcmp(v->s, s);
}

bool jarr_has_str(const struct jv *a, const char *s)
{
	if (!a || a->t != J_ARR)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (jstr_is(&a->items[i], s))
			return true;
	return false;
}
