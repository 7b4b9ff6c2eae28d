/* bridge/util.h - a growable string buffer, C text escaping, and whole-file I/O.
 *
 * The emitters build every generated file in memory first, so a file is written
 * completely or not at all, and `check` can compare bytes without touching DIR. */
#ifndef BRIDGE_UTIL_H
#define BRIDGE_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define BRIDGE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BRIDGE_PRINTF(fmt, args)
#endif

/* A NUL-terminated byte buffer. An allocation failure sets `failed` and turns every
 * later append into a no-op, so callers check once at the end instead of per append. */
typedef struct bridge_buf_s {
  char *data;
  size_t len;
  size_t cap;
  bool failed;
} bridge_buf_t;

void bridge_buf_init(bridge_buf_t *b);
void bridge_buf_free(bridge_buf_t *b);
void bridge_buf_add(bridge_buf_t *b, const char *s);
void bridge_buf_addn(bridge_buf_t *b, const char *s, size_t n);
void bridge_buf_addf(bridge_buf_t *b, const char *fmt, ...) BRIDGE_PRINTF(2, 3);
/* The contents as a C string ("" when empty); valid until the next append. */
const char *bridge_buf_str(const bridge_buf_t *b);

/* Appends `s` as the body of a C string literal: quotes, backslashes, "??" (which
 * could start a trigraph) and every byte outside printable ASCII are escaped. */
void bridge_buf_add_c_string(bridge_buf_t *b, const char *s);

/* Appends `text` as comment lines, each prefixed by `prefix` (e.g. " * "); text that
 * could end or nest the comment ("*\/", "/\*", "??/") is defused, control characters
 * become spaces, trailing blanks are dropped. */
void bridge_buf_add_comment_text(bridge_buf_t *b, const char *prefix, const char *text);

/* Appends a whole comment: "<indent>/\* first line" then "<indent> * next line"...,
 * closed with " *\/" on the last line. Trailing blank lines of `text` are dropped. */
void bridge_buf_add_comment(bridge_buf_t *b, const char *indent, const char *text);

/* Appends `s` quoted for an error message: at most `max` bytes, with control and
 * non-ASCII bytes escaped so that a message always stays on one line. */
void bridge_buf_add_quoted(bridge_buf_t *b, const char *s, size_t max);

/* snprintf into a fixed buffer that may truncate on purpose (paths in messages,
 * which are capped); a wrapper so the compiler does not flag each call. */
void bridge_format(char *out, size_t size, const char *fmt, ...) BRIDGE_PRINTF(3, 4);

/* `s` in upper case, into `out` (truncated to `size`). */
void bridge_upper(char *out, size_t size, const char *s);

/* Reads a whole file. Returns 0 and a malloc'd, NUL-terminated buffer in *out (its
 * length in *len), or -errno. */
int bridge_read_file(const char *path, char **out, size_t *len);

/* Writes `len` bytes to `path` (created or truncated, mode 0644). Returns 0 or -errno. */
int bridge_write_file(const char *path, const char *data, size_t len);

#endif /* BRIDGE_UTIL_H */
