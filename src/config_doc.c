/*
 * config_doc.c - the option reference tables of docs/configuration.md,
 * generated from the same option tables the parser uses, so the docs cannot
 * drift from the code without the docs test noticing. Only the docs and
 * their test call this; the component never does.
 */
#include "config_doc.h"

#include "config_opts.h"
#include "strbuf.h"

#include <stddef.h>

static const char *type_name(const struct opt *o)
{
	switch (o->type) {
	case OT_STRING:
	case OT_TLS_VERSION:
	case OT_CHOICE:
		return "string";
	case OT_SECRET:
		return "secret";
	case OT_BOOL:
		return "bool";
	case OT_INT:
		return "int";
	case OT_DURATION:
		return "duration";
	case OT_MAP_STRING:
		return "map(string)";
	case OT_MAP_LIST_SECRET:
		return "map(list(secret))";
	case OT_LIST_STRING:
		return "list(string)";
	case OT_BLOCK:
	case OT_ANY_OBJECT:
		return "block";
	case OT_ENDPOINTS:
		return "block, repeatable";
	}
	return "?";
}

char *pw_config_options_markdown(const char *block)
{
	const struct block *b = pw_cfg_find_block(block ? block : "");
	struct strbuf sb = STRBUF_INIT;

	if (!b)
		return NULL;
	strbuf_puts(&sb, "| Name | Type | Default | Required | Description |\n");
	strbuf_puts(&sb, "| --- | --- | --- | --- | --- |\n");
	for (const struct opt *o = b->opts; o->name; o++) {
		strbuf_printf(&sb, "| `%s` | `%s` | ", o->name, type_name(o));
		if (!o->def)
			strbuf_puts(&sb, "");
		else if (o->type == OT_STRING || o->type == OT_DURATION || o->type == OT_CHOICE)
			strbuf_printf(&sb, "`\"%s\"`", o->def);
		else
			strbuf_printf(&sb, "`%s`", o->def);
		strbuf_printf(&sb, " | %s | %s |\n", (o->flags & OPT_REQUIRED) ? "yes" : "no",
			      o->desc);
	}
	if (sb.failed) {
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}
