/*
 * config.c - JSON document -> validated, immutable configuration snapshot.
 *
 * The document walk: it follows the option tables of config_opts.c, hands
 * each value to the checks of config_check.c, records every problem in the
 * diagnostics list of config_diag.c, and builds the canonical dumps with
 * config_json.c. The top of the config layers: nothing else in the config
 * files calls it.
 *
 * The parser never stops at the first problem: it walks the whole document
 * and reports every error, one per line, each prefixed with the path of the
 * value it is about. Secret values never appear in any message.
 */
#include "config.h"

#include "config_check.h"
#include "config_diag.h"
#include "config_json.h"
#include "config_opts.h"
#include "duration.h"
#include "strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENDPOINTS 256

/* One parse: its problems, and the snapshot being built (for notices). */
struct ctx {
	struct pw_cfg_diag diag;
	struct pw_config *cfg;
};

/* Reasons attached to the notice of an ignored option. */
static const char *ignored_reason(const char *name)
{
	if (strcmp(name, "tracing") == 0)
		return "trace header propagation is not implemented";
	return "debug-info upload is not implemented";
}

static void add_notice(struct pw_config *cfg, char *msg)
{
	char **n;

	if (!msg)
		return;
	n = realloc(cfg->notices, (cfg->nnotices + 1) * sizeof(*n));
	if (!n) {
		free(msg);
		return;
	}
	cfg->notices = n;
	cfg->notices[cfg->nnotices++] = msg;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

static void free_block(const struct block *b, char *base);

/* Returns the string of v or NULL after reporting why it is not usable. */
static const char *get_string(struct ctx *c, const char *path, json_t *v, const char *expect)
{
	const char *s;

	if (!json_is_string(v)) {
		pw_cfg_err_at(&c->diag, path, "expected %s, got %s", expect, pw_cfg_jtype(v));
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		pw_cfg_err_at(&c->diag, path, "must not contain a NUL character");
		return NULL;
	}
	return s;
}

static void set_string(char **dst, const char *s, bool secret)
{
	if (secret)
		pw_secret_free(*dst);
	else
		free(*dst);
	/* An empty string means "not set", as in Alloy's Go structs. */
	*dst = s && *s ? pw_strdup(s) : NULL;
}

static void parse_scalar_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
				const char *path)
{
	char **dst = (char **)(void *)(base + o->off);
	const char *s = get_string(c, path, v, "a string");

	if (!s)
		return;
	if (!*s && (o->flags & OPT_REQUIRED)) {
		pw_cfg_err_at(&c->diag, path, "must not be empty");
		return;
	}
	set_string(dst, s, o->type == OT_SECRET);
	if (!*dst)
		return;
	pw_cfg_check_string(&c->diag, o, path, s);
}

static void parse_duration(struct ctx *c, const struct opt *o, json_t *v, char *base,
			   const char *path)
{
	const char *s, *why = NULL;
	int64_t ns;
	char shown[SHOW_BUF];

	if (!json_is_string(v)) {
		pw_cfg_err_at(&c->diag, path, "expected a duration string such as \"10s\", got %s",
			      pw_cfg_jtype(v));
		return;
	}
	s = get_string(c, path, v, "a duration string");
	if (!s)
		return;
	if (pw_duration_parse(s, &ns, &why) < 0) {
		pw_cfg_show(shown, sizeof(shown), s, strlen(s));
		pw_cfg_err_at(
			&c->diag, path,
			"invalid duration \"%s\": %s (examples: \"500ms\", \"10s\", \"1m30s\")",
			shown, why);
		return;
	}
	*(int64_t *)(void *)(base + o->off) = ns;
	pw_cfg_check_range(&c->diag, o, path, ns);
}

static void parse_int(struct ctx *c, const struct opt *o, json_t *v, char *base, const char *path)
{
	int64_t n;

	if (json_is_real(v)) {
		pw_cfg_err_at(&c->diag, path, "expected an integer, got a number with a fraction");
		return;
	}
	if (!json_is_integer(v)) {
		pw_cfg_err_at(&c->diag, path, "expected an integer, got %s", pw_cfg_jtype(v));
		return;
	}
	n = (int64_t)json_integer_value(v);
	*(int64_t *)(void *)(base + o->off) = n;
	pw_cfg_check_range(&c->diag, o, path, n);
}

static void parse_tls_version(struct ctx *c, const struct opt *o, json_t *v, char *base,
			      const char *path)
{
	const char *s = get_string(c, path, v, "a string such as \"TLS12\"");

	if (!s)
		return;
	if (!*s)
		return; /* empty: unset, as in Alloy */
	pw_cfg_check_tls_version(&c->diag, path, s, (enum pw_tls_version *)(void *)(base + o->off));
}

static void parse_map_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
			     const char *path)
{
	struct pw_kvmap *m = (struct pw_kvmap *)(void *)(base + o->off);
	const char *key;
	json_t *val;
	char cpath[PATH_LEN];

	if (!json_is_object(v)) {
		pw_cfg_err_at(&c->diag, path, "expected an object of strings, got %s",
			      pw_cfg_jtype(v));
		return;
	}
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (!m->items) {
		pw_cfg_err_at(&c->diag, path, "out of memory");
		return;
	}
	json_object_foreach(v, key, val)
	{
		pw_cfg_path_map(cpath, path, key, strlen(key));
		pw_cfg_check_map_key(&c->diag, o, cpath, key);
		if (!pw_cfg_check_map_value(&c->diag, o, cpath, val))
			continue;
		m->items[m->n].key = pw_strdup(key);
		m->items[m->n].value = pw_strdup(json_string_value(val));
		m->n++;
	}
}

static void parse_map_list(struct ctx *c, const struct opt *o, json_t *v, char *base,
			   const char *path)
{
	struct pw_kvlistmap *m = (struct pw_kvlistmap *)(void *)(base + o->off);
	const char *key;
	json_t *val;
	char cpath[PATH_LEN], ipath[PATH_LEN];

	if (!json_is_object(v)) {
		pw_cfg_err_at(&c->diag, path, "expected an object of string lists, got %s",
			      pw_cfg_jtype(v));
		return;
	}
	m->items = calloc(json_object_size(v) + 1, sizeof(*m->items));
	if (!m->items) {
		pw_cfg_err_at(&c->diag, path, "out of memory");
		return;
	}
	json_object_foreach(v, key, val)
	{
		struct pw_kvlist *item;
		size_t i;
		json_t *e;

		pw_cfg_path_map(cpath, path, key, strlen(key));
		pw_cfg_check_map_key(&c->diag, o, cpath, key);
		if (!json_is_array(val)) {
			pw_cfg_err_at(&c->diag, cpath, "expected a list of strings, got %s",
				      pw_cfg_jtype(val));
			continue;
		}
		item = &m->items[m->n++];
		item->key = pw_strdup(key);
		item->values = calloc(json_array_size(val) + 1, sizeof(*item->values));
		if (!item->values)
			continue;
		json_array_foreach(val, i, e)
		{
			pw_cfg_path_index(ipath, cpath, i);
			if (pw_cfg_check_map_value(&c->diag, o, ipath, e))
				item->values[item->nvalues++] = pw_strdup(json_string_value(e));
		}
	}
}

static void parse_list_string(struct ctx *c, const struct opt *o, json_t *v, char *base,
			      const char *path)
{
	char ***dst = (char ***)(void *)(base + o->off);
	size_t *n = (size_t *)(void *)(base + o->off2);
	char ipath[PATH_LEN];
	size_t i;
	json_t *e;

	if (!json_is_array(v)) {
		pw_cfg_err_at(&c->diag, path, "expected a list of strings, got %s",
			      pw_cfg_jtype(v));
		return;
	}
	*dst = calloc(json_array_size(v) + 1, sizeof(**dst));
	if (!*dst) {
		pw_cfg_err_at(&c->diag, path, "out of memory");
		return;
	}
	json_array_foreach(v, i, e)
	{
		const char *s;

		pw_cfg_path_index(ipath, path, i);
		s = get_string(c, ipath, e, "a string");
		if (s)
			(*dst)[(*n)++] = pw_strdup(s);
	}
}

static void parse_block(struct ctx *c, const struct block *b, json_t *obj, char *base,
			const char *path);

static void parse_endpoints(struct ctx *c, const struct opt *o, json_t *v, char *base,
			    const char *path)
{
	struct pw_endpoint_config **eps = (struct pw_endpoint_config **)(void *)(base + o->off);
	size_t *n = (size_t *)(void *)(base + o->off2);
	size_t count = json_is_array(v) ? json_array_size(v) : 1;
	char ipath[PATH_LEN];

	if (!json_is_array(v) && !json_is_object(v)) {
		pw_cfg_err_at(&c->diag, path,
			      "expected an endpoint object or a list of them, got %s",
			      pw_cfg_jtype(v));
		return;
	}
	if (count > MAX_ENDPOINTS) {
		pw_cfg_err_at(&c->diag, path, "at most %d endpoints are supported, got %zu",
			      MAX_ENDPOINTS, count);
		return;
	}
	*eps = calloc(count + 1, sizeof(**eps));
	if (!*eps) {
		pw_cfg_err_at(&c->diag, path, "out of memory");
		return;
	}
	*n = count;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_is_array(v) ? json_array_get(v, i) : v;

		pw_cfg_path_index(ipath, path, i);
		if (!json_is_object(e)) {
			pw_cfg_err_at(&c->diag, ipath, "expected an endpoint object, got %s",
				      pw_cfg_jtype(e));
			continue;
		}
		parse_block(c, o->sub, e, (char *)&(*eps)[i], ipath);
	}
}

static void parse_choice(struct ctx *c, const struct opt *o, json_t *v, char *base,
			 const char *path)
{
	const char *s = get_string(c, path, v, "a string");

	if (!s || !*s)
		return; /* empty: unset, the default stays */
	pw_cfg_check_choice(&c->diag, o, path, s, (bool *)(void *)(base + o->off));
}

static void parse_opt(struct ctx *c, const struct opt *o, json_t *v, char *base, const char *path)
{
	switch (o->type) {
	case OT_STRING:
	case OT_SECRET:
		parse_scalar_string(c, o, v, base, path);
		break;
	case OT_BOOL:
		if (!json_is_boolean(v))
			pw_cfg_err_at(&c->diag, path, "expected a bool (true or false), got %s",
				      pw_cfg_jtype(v));
		else
			*(bool *)(void *)(base + o->off) = json_is_true(v);
		break;
	case OT_INT:
		parse_int(c, o, v, base, path);
		break;
	case OT_DURATION:
		parse_duration(c, o, v, base, path);
		break;
	case OT_TLS_VERSION:
		parse_tls_version(c, o, v, base, path);
		break;
	case OT_MAP_STRING:
		parse_map_string(c, o, v, base, path);
		break;
	case OT_MAP_LIST_SECRET:
		parse_map_list(c, o, v, base, path);
		break;
	case OT_LIST_STRING:
		parse_list_string(c, o, v, base, path);
		break;
	case OT_BLOCK:
		if (!json_is_object(v)) {
			pw_cfg_err_at(&c->diag, path, "expected an object (a %s block), got %s",
				      o->name, pw_cfg_jtype(v));
			break;
		}
		*(bool *)(void *)(base + o->off2) = true;
		parse_block(c, o->sub, v, base + o->off, path);
		break;
	case OT_ENDPOINTS:
		parse_endpoints(c, o, v, base, path);
		break;
	case OT_ANY_OBJECT:
		if (!json_is_object(v))
			pw_cfg_err_at(&c->diag, path, "expected an object (a %s block), got %s",
				      o->name, pw_cfg_jtype(v));
		break;
	case OT_CHOICE:
		parse_choice(c, o, v, base, path);
		break;
	}
	if ((o->flags & OPT_IGNORED) && c->cfg)
		add_notice(c->cfg, pw_asprintf("%s is accepted and ignored: %s", path,
					       ignored_reason(o->name)));
}

static void apply_defaults(const struct block *b, char *base)
{
	for (const struct opt *o = b->opts; o->name; o++) {
		if (!o->def)
			continue;
		switch (o->type) {
		case OT_STRING:
			set_string((char **)(void *)(base + o->off), o->def, false);
			break;
		case OT_BOOL:
			*(bool *)(void *)(base + o->off) = strcmp(o->def, "true") == 0;
			break;
		case OT_INT:
			*(int64_t *)(void *)(base + o->off) = strtoll(o->def, NULL, 10);
			break;
		case OT_DURATION:
			pw_duration_parse(o->def, (int64_t *)(void *)(base + o->off), NULL);
			break;
		case OT_CHOICE:
			*(bool *)(void *)(base + o->off) = strcmp(o->def, o->choices[0]) == 0;
			break;
		default:
			break;
		}
	}
}

static const struct opt *find_opt(const struct block *b, const char *name)
{
	for (const struct opt *o = b->opts; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* An option given where it means nothing is refused rather than ignored:
 * whoever set it expected it to have an effect. */
static void check_applies(struct ctx *c, const struct block *b, json_t *obj, const char *base,
			  const char *path)
{
	char cpath[PATH_LEN];

	for (const struct opt *o = b->opts; o->name; o++) {
		json_t *given = json_object_get(obj, o->name);

		if (!o->applies || !given || json_is_null(given) || o->applies(base))
			continue;
		pw_cfg_path_key(cpath, path, o->name);
		pw_cfg_err_at(&c->diag, cpath, "is used only with %s; remove it or set %s",
			      o->applies_when, o->applies_when);
	}
}

static void parse_block(struct ctx *c, const struct block *b, json_t *obj, char *base,
			const char *path)
{
	const char *key;
	json_t *v;
	char cpath[PATH_LEN];

	apply_defaults(b, base);
	json_object_foreach(obj, key, v)
	{
		const struct opt *o = find_opt(b, key);

		pw_cfg_path_key(cpath, path, key);
		if (!o) {
			pw_cfg_unknown_key(&c->diag, b, cpath, key);
			continue;
		}
		/* null is the same as leaving the attribute out. */
		if (json_is_null(v))
			continue;
		parse_opt(c, o, v, base, cpath);
	}
	for (const struct opt *o = b->opts; o->name; o++) {
		json_t *given = json_object_get(obj, o->name);

		if ((o->flags & OPT_REQUIRED) && (!given || json_is_null(given))) {
			pw_cfg_path_key(cpath, path, o->name);
			pw_cfg_err_at(&c->diag, cpath, "required attribute is missing");
		}
	}
	check_applies(c, b, obj, base, path);
	if (b->validate)
		b->validate(&c->diag, path, base);
}

/* ------------------------------------------------------------------------ */
/* The public API                                                            */

static void finish_endpoints(struct ctx *c, struct pw_config *cfg)
{
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		struct pw_endpoint_config *e = &cfg->endpoints[i];

		e->canonical = pw_cfg_emit(&pw_cfg_endpoint_block, e, false);
		e->display = pw_cfg_display_name(e);
		if (!e->canonical || !e->display)
			pw_cfg_err_at(&c->diag, "", "out of memory");
	}
}

int pw_config_parse(const char *text, struct pw_config **out, char **errors)
{
	struct ctx c = {.cfg = NULL};
	struct pw_config *cfg = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	size_t len;
	int rc = -1;

	*out = NULL;
	if (errors)
		*errors = NULL;
	pw_cfg_diag_init(&c.diag);
	if (!text) {
		pw_cfg_err_at(&c.diag, "", "no document");
		goto out;
	}
	if (pw_cfg_precheck(&c.diag, text, &len))
		goto out;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY,
			  &jerr);
	if (!root) {
		pw_cfg_err_line(&c.diag, jerr.line, jerr.column, "%s", jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		pw_cfg_err_at(&c.diag, "", "expected a JSON object at the top level, got %s",
			      pw_cfg_jtype(root));
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		pw_cfg_err_at(&c.diag, "", "out of memory");
		goto out;
	}
	c.cfg = cfg;
	parse_block(&c, &pw_cfg_top_block, root, (char *)cfg, "");
	if (c.diag.nerrs == 0)
		finish_endpoints(&c, cfg);
	if (c.diag.nerrs == 0) {
		cfg->canonical = pw_cfg_emit(&pw_cfg_top_block, cfg, false);
		if (!cfg->canonical)
			pw_cfg_err_at(&c.diag, "", "out of memory");
	}
	if (c.diag.nerrs == 0) {
		*out = cfg;
		cfg = NULL;
		rc = 0;
	}
out:
	if (rc < 0 && errors)
		*errors = pw_cfg_diag_take(&c.diag);
	pw_cfg_diag_free(&c.diag);
	json_decref(root);
	pw_config_free(cfg);
	return rc;
}

char *pw_config_redacted_json(const struct pw_config *cfg)
{
	if (!cfg)
		return NULL;
	return pw_cfg_emit_redacted(&pw_cfg_top_block, cfg);
}

static void free_kvlistmap(struct pw_kvlistmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		for (size_t j = 0; j < m->items[i].nvalues; j++)
			pw_secret_free(m->items[i].values[j]);
		free(m->items[i].values);
		free(m->items[i].key);
	}
	free(m->items);
}

static void free_kvmap(struct pw_kvmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
}

static void free_block(const struct block *b, char *base)
{
	for (const struct opt *o = b->opts; o->name; o++) {
		void *p = base + o->off;

		switch (o->type) {
		case OT_STRING:
			free(*(char **)p);
			break;
		case OT_SECRET:
			pw_secret_free(*(char **)p);
			break;
		case OT_MAP_STRING:
			free_kvmap(p);
			break;
		case OT_MAP_LIST_SECRET:
			free_kvlistmap(p);
			break;
		case OT_LIST_STRING: {
			char **list = *(char ***)p;
			size_t n = *(size_t *)(void *)(base + o->off2);

			for (size_t i = 0; i < n; i++)
				free(list[i]);
			free(list);
			break;
		}
		case OT_BLOCK:
			free_block(o->sub, p);
			break;
		case OT_ENDPOINTS: {
			struct pw_endpoint_config *eps = *(struct pw_endpoint_config **)p;
			size_t n = *(size_t *)(void *)(base + o->off2);

			for (size_t i = 0; i < n; i++) {
				free_block(o->sub, (char *)&eps[i]);
				pw_secret_free(eps[i].canonical);
				free(eps[i].display);
			}
			free(eps);
			break;
		}
		default:
			break;
		}
	}
}

void pw_config_free(struct pw_config *cfg)
{
	if (!cfg)
		return;
	free_block(&pw_cfg_top_block, (char *)cfg);
	pw_secret_free(cfg->canonical);
	for (size_t i = 0; i < cfg->nnotices; i++)
		free(cfg->notices[i]);
	free(cfg->notices);
	free(cfg);
}

void pw_secret_free(char *s)
{
	if (!s)
		return;
	pw_memzero(s, strlen(s));
	free(s);
}
