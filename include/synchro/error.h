/* synchro/error.h - error codes and error values.
 *
 * Every function that returns int returns 0 on success or a negative code. The codes
 * below are synchro's own and never collide with libuv's (which are -errno on Unix);
 * libuv codes returned by an implementation reach the caller unchanged, so
 * synchro_strerror() and synchro_err_name() accept both. */
#ifndef SYNCHRO_ERROR_H
#define SYNCHRO_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(NAME, value, message): the one table that drives the enum, synchro_strerror()
 * and synchro_err_name(). */
#define SYNCHRO_ERRNO_MAP(XX)                                                                      \
  XX(EINVAL, -30001, "invalid argument")                                                           \
  XX(ENOMEM, -30002, "out of memory")                                                              \
  XX(ECANCELED, -30003, "call cancelled")                                                          \
  XX(ETIMEDOUT, -30004, "call deadline expired")                                                   \
  XX(EPENDING, -30005, "call still pending (the wait timed out)")                                  \
  XX(ESHUTDOWN, -30006, "synchronizer is shut down")                                               \
  XX(EDEADLK, -30007, "blocking call would deadlock (own loop thread, or a cycle of loops)")       \
  XX(EBUSY, -30008, "too many calls in flight")                                                    \
  XX(EFORKED, -30009, "handle inherited across fork()")                                            \
  XX(EALREADY, -30010, "already done")                                                             \
  XX(ECLOSED, -30011, "handle is closed")                                                          \
  XX(ESTART, -30012, "could not start the loop thread")                                            \
  XX(EPERM, -30013, "not allowed from this thread")                                                \
  XX(EFREED, -30014, "handle was already freed")                                                   \
  XX(EEMPTY, -30016, "nothing to wait for")                                                        \
  XX(EEND, -30017, "end of stream")                                                                \
  XX(ELOOPDIED, -30018, "the loop thread ended unexpectedly")

typedef enum synchro_errno_e {
#define SYNCHRO__ERRNO_ENUM(name, value, msg) SYNCHRO_##name = (value),
  SYNCHRO_ERRNO_MAP(SYNCHRO__ERRNO_ENUM)
#undef SYNCHRO__ERRNO_ENUM
      SYNCHRO_ERRNO_MIN_ = -30099 /* synchro's own codes lie in [-30099, -30001] */
} synchro_errno_t;

/* A human-readable message for any code: synchro's, libuv's or a system errno
 * (negated). Static or thread-local storage: do not free; valid until the next call
 * on the same thread. Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_strerror(int code);

/* The symbolic name ("SYNCHRO_ETIMEDOUT", "ECONNREFUSED", ...) of a code. Same storage
 * rules as synchro_strerror(). Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_err_name(int code);

/* ---- error values -------------------------------------------------------------
 * An error carries a code, a message, the operation it came from (its origin), optional
 * JSON details (e.g. {"retry_after": 2}) and an optional cause (another error). */

/* Creates an error. `origin` is copied (NULL allowed). `details` (NULL allowed) and
 * `cause` (NULL allowed) are stolen: the new error owns them, and on failure they are
 * released. `fmt` NULL means "use synchro_strerror(code)". On success *out is a new
 * error the caller frees with synchro_error_free().
 * Returns 0, SYNCHRO_EINVAL (out NULL or code >= 0) or SYNCHRO_ENOMEM.
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_error_new(synchro_error_t **out, int code, const char *origin,
                                     struct json_t *details, synchro_error_t *cause,
                                     const char *fmt, ...) SYNCHRO_PRINTF(6, 7);

/* Accessors. All are borrowed views valid until the error is freed; each accepts NULL
 * (code 0, message "", origin "", details NULL, cause NULL). Thread-safe: yes for
 * concurrent readers of one error. */
SYNCHRO_EXTERN int synchro_error_code(const synchro_error_t *err);
SYNCHRO_EXTERN const char *synchro_error_message(const synchro_error_t *err);
SYNCHRO_EXTERN const char *synchro_error_origin(const synchro_error_t *err);
SYNCHRO_EXTERN struct json_t *synchro_error_details(const synchro_error_t *err);
SYNCHRO_EXTERN const synchro_error_t *synchro_error_cause(const synchro_error_t *err);

/* Frees an error and its cause chain. NULL is a no-op. The shared, static errors that
 * the runtime hands out for its own outcomes (cancelled, timed out, ...) are not
 * freed; freeing them is harmless. Thread-safe: yes, for distinct errors. */
SYNCHRO_EXTERN void synchro_error_free(synchro_error_t *err);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_ERROR_H */
