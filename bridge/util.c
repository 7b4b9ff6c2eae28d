/* bridge/util.c - string buffer, escaping and file I/O helpers. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void bridge_buf_init(bridge_buf_t *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->failed = false;
}

void bridge_buf_free(bridge_buf_t *b) {
  free(b->data);
  bridge_buf_init(b);
}

/* Makes room for `extra` more bytes plus the terminating NUL. */
static bool reserve(bridge_buf_t *b, size_t extra) {
  size_t need;
  size_t cap;
  char *grown;

  if (b->failed)
    return false;
  if (extra > ((size_t)-1) / 2 - b->len) {
    b->failed = true;
    return false;
  }
  need = b->len + extra + 1;
  if (need <= b->cap)
    return true;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  grown = realloc(b->data, cap);
  if (grown == NULL) {
    b->failed = true;
    return false;
  }
  b->data = grown;
  b->cap = cap;
  return true;
}

void bridge_buf_addn(bridge_buf_t *b, const char *s, size_t n) {
  if (!reserve(b, n))
    return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void bridge_buf_add(bridge_buf_t *b, const char *s) { bridge_buf_addn(b, s, strlen(s)); }

void bridge_buf_addf(bridge_buf_t *b, const char *fmt, ...) {
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = true;
    return;
  }
  if (!reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

const char *bridge_buf_str(const bridge_buf_t *b) { return b->data ? b->data : ""; }

void bridge_buf_add_c_string(bridge_buf_t *b, const char *s) {
  const unsigned char *p;

  for (p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      bridge_buf_addf(b, "\\%c", *p);
    else if (*p == '?' && p[1] == '?')
      bridge_buf_add(b, "?\\"); /* "?\?" can never form a trigraph */
    else if (*p == '\n')
      bridge_buf_add(b, "\\n");
    else if (*p == '\t')
      bridge_buf_add(b, "\\t");
    else if (*p < 0x20 || *p >= 0x7f)
      bridge_buf_addf(b, "\\%03o", *p); /* octal: never swallows the next digit */
    else
      bridge_buf_addn(b, (const char *)p, 1);
  }
}

/* Appends one comment line with trailing blanks removed. */
static void add_comment_line(bridge_buf_t *b, const char *prefix, const char *line, size_t len) {
  size_t i;

  while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  if (len == 0) {
    /* an empty line keeps the prefix's leading part only: " *" not " * " */
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == ' ')
      plen--;
    bridge_buf_addn(b, prefix, plen);
    bridge_buf_add(b, "\n");
    return;
  }
  bridge_buf_add(b, prefix);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)line[i];
    char next = i + 1 < len ? line[i + 1] : '\0';
    if ((c == '*' && next == '/') || (c == '/' && next == '*'))
      bridge_buf_addf(b, "%c ", c); /* "*\/" would end the comment, "/\*" nests */
    else if (c == '?' && next == '?')
      bridge_buf_add(b, "? "); /* "??/" at a line end would splice lines */
    else if (c < 0x20 || c == 0x7f)
      bridge_buf_add(b, " ");
    else
      bridge_buf_addn(b, (const char *)&line[i], 1);
  }
  bridge_buf_add(b, "\n");
}

void bridge_buf_add_comment_text(bridge_buf_t *b, const char *prefix, const char *text) {
  const char *line = text;
  const char *end = text + strlen(text);

  while (end > text && isspace((unsigned char)end[-1]))
    end--; /* trailing blank lines would only pad the comment */
  for (;;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
    if (len > 0 && line[len - 1] == '\r')
      len--;
    add_comment_line(b, prefix, line, len);
    if (nl == NULL)
      break;
    line = nl + 1;
  }
}

void bridge_buf_add_comment(bridge_buf_t *b, const char *indent, const char *text) {
  bridge_buf_t first, rest, body;
  size_t len = strlen(text);
  const char *nl;

  while (len > 0 && isspace((unsigned char)text[len - 1]))
    len--;
  bridge_buf_init(&body);
  bridge_buf_addn(&body, text, len);
  bridge_buf_init(&first);
  bridge_buf_init(&rest);
  bridge_buf_addf(&first, "%s/* ", indent);
  bridge_buf_addf(&rest, "%s * ", indent);
  nl = strchr(bridge_buf_str(&body), '\n');
  if (nl == NULL) {
    bridge_buf_add_comment_text(b, bridge_buf_str(&first), bridge_buf_str(&body));
  } else {
    bridge_buf_t head;
    bridge_buf_init(&head);
    bridge_buf_addn(&head, bridge_buf_str(&body), (size_t)(nl - bridge_buf_str(&body)));
    bridge_buf_add_comment_text(b, bridge_buf_str(&first), bridge_buf_str(&head));
    bridge_buf_add_comment_text(b, bridge_buf_str(&rest), nl + 1);
    bridge_buf_free(&head);
  }
  if (!b->failed && b->len > 0 && b->data[b->len - 1] == '\n')
    b->data[--b->len] = '\0';
  bridge_buf_add(b, " */\n");
  if (body.failed || first.failed || rest.failed)
    b->failed = true;
  bridge_buf_free(&body);
  bridge_buf_free(&first);
  bridge_buf_free(&rest);
}

void bridge_buf_add_quoted(bridge_buf_t *b, const char *s, size_t max) {
  size_t i;

  bridge_buf_add(b, "\"");
  for (i = 0; s[i] && i < max; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      bridge_buf_addf(b, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      bridge_buf_addf(b, "\\x%02x", c);
    else
      bridge_buf_addn(b, &s[i], 1);
  }
  bridge_buf_add(b, s[i] ? "\"..." : "\"");
}

void bridge_format(char *out, size_t size, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(out, size, fmt, ap);
  va_end(ap);
}

void bridge_upper(char *out, size_t size, const char *s) {
  size_t i;

  if (size == 0)
    return;
  for (i = 0; s[i] && i + 1 < size; i++)
    out[i] = (char)toupper((unsigned char)s[i]);
  out[i] = '\0';
}

int bridge_read_file(const char *path, char **out, size_t *len) {
  FILE *f;
  bridge_buf_t b;
  char chunk[8192];
  size_t n;
  int rc = 0;

  f = fopen(path, "rb");
  if (f == NULL)
    return -errno;
  bridge_buf_init(&b);
  bridge_buf_addn(&b, "", 0); /* an empty file still yields "" */
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    bridge_buf_addn(&b, chunk, n);
  if (ferror(f))
    rc = -EIO;
  else if (b.failed)
    rc = -ENOMEM;
  fclose(f);
  if (rc != 0) {
    bridge_buf_free(&b);
    return rc;
  }
  *out = b.data;
  *len = b.len;
  return 0;
}

int bridge_write_file(const char *path, const char *data, size_t len) {
  int fd;
  int rc = 0;

  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      break;
    }
    data += n;
    len -= (size_t)n;
  }
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  return rc;
}
