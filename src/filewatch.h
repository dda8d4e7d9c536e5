/*
 * filewatch.h - a file whose content is re-read only when it changes.
 *
 * Secret and certificate files named by *_file options can be rotated while
 * the component runs (Kubernetes swaps a symlink, an operator rewrites the
 * file). A watch keeps the last content and re-reads the file only when a
 * cheap stat() shows a different size, modification time (ns) or inode.
 *
 * Not thread-safe: a watch belongs to one thread (the sender's I/O thread),
 * which is why there is no locking. Different watches are independent.
 */
#ifndef PW_FILEWATCH_H
#define PW_FILEWATCH_H

#include <stdbool.h>
#include <stddef.h>

struct pw_filewatch;

/*
 * Reads path now. Returns a new watch, or NULL with a malloc'd *err of the
 * form `cannot read "<path>": <reason>` (err may be NULL). Files larger than
 * max_size bytes are refused.
 */
struct pw_filewatch *pw_filewatch_open(const char *path, size_t max_size, char **err);

/*
 * Returns the current content, NUL-terminated, exactly as stored in the file
 * (no trimming; see pw_trim_space), and its length in *len (may be NULL).
 * Re-reads the file only when its size, mtime or inode changed since the
 * last successful read. *changed (may be NULL) is true when the file was
 * re-read and the content differs from what the previous call returned.
 * On a stat/read error returns NULL with a malloc'd *err; the previous
 * content is kept and returned again once the file reads back unchanged.
 * The returned pointer stays valid until the next call on fw or its free.
 */
const char *pw_filewatch_get(struct pw_filewatch *fw, size_t *len, bool *changed, char **err);

/* The path being watched; valid until pw_filewatch_free(). */
const char *pw_filewatch_path(const struct pw_filewatch *fw);

/* Wipes the content and frees the watch. Accepts NULL. */
void pw_filewatch_free(struct pw_filewatch *fw);

/*
 * Surrounding-whitespace trim, as Prometheus/Alloy do for password and token
 * files: returns a pointer to the first non-space byte of s[0..*len) and
 * stores the trimmed length in *len. s is not modified.
 */
const char *pw_trim_space(const char *s, size_t *len);

#endif /* PW_FILEWATCH_H */
