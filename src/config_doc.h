/*
 * config_doc.h - the option reference of docs/configuration.md, generated
 * from the option tables (config_doc.c). For the docs and their test; the
 * component itself never calls it.
 */
#ifndef PW_CONFIG_DOC_H
#define PW_CONFIG_DOC_H

/* The option reference of one block as a Markdown table, generated from the
 * same table the parser uses (docs/configuration.md embeds it). block is ""
 * for the top level, or "endpoint", "basic_auth", "authorization", "oauth2",
 * "tls_config". Returns malloc'd text, or NULL for an unknown block. */
char *pw_config_options_markdown(const char *block);

#endif /* PW_CONFIG_DOC_H */
