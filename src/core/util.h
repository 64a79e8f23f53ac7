/*
 * util — small shared helpers: allocation that aborts on OOM (daemons cannot
 * recover from it and every caller would otherwise need a branch), the error
 * buffer every fallible function fills, strings and time.
 */
#ifndef CORE_UTIL_H
#define CORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* An error message buffer, filled at the point of failure. */
struct err {
    char msg[1024];
};

/* Formats into e (if not NULL) and returns -1, so callers can `return err_set(...)`. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* A growable byte buffer with a hard cap fixed at init (0 = no cap). */
struct buf {
    char *data;
    size_t len, cap, max;
};
void buf_init(struct buf *b, size_t max);
/* Appends; returns -1 (and appends nothing) if the cap would be exceeded. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns a NUL-terminated string owned by the buffer. */
const char *buf_str(struct buf *b);
void buf_free(struct buf *b);

/* Nanoseconds since the Unix epoch, wall clock. */
int64_t now_ns(void);
/* Milliseconds from a monotonic clock. */
int64_t mono_ms(void);
/* Formats ns-since-epoch as RFC 3339 in UTC with trailing fractional zeros
 * trimmed, as Go's RFC3339Nano does ("2024-01-02T03:04:05.12Z"). out >= 40 bytes. */
void time_format_rfc3339(int64_t ns, char *out, size_t outlen);
/* Parses RFC 3339 (Z or ±hh:mm offsets, optional fraction); 0 on success. */
int time_parse_rfc3339(const char *s, int64_t *ns);

/* Reads a whole file (at most max bytes); returns NULL and fills e on failure. */
char *read_file(const char *path, size_t max, size_t *len, struct err *e);
/* Writes a file atomically (temp file, fsync, rename) with the given mode. */
int write_file_atomic(const char *path, const void *data, size_t len, int mode, struct err *e);

/* Standard base64 with padding; caller frees. */
char *base64_encode(const void *data, size_t len);
/* Decodes standard base64 (padding optional, whitespace not allowed); returns
 * a NUL-terminated buffer the caller frees, or NULL on bad input. */
unsigned char *base64_decode(const char *s, size_t len, size_t *outlen);

int str_has_prefix(const char *s, const char *prefix);
int str_has_suffix(const char *s, const char *suffix);

#endif
