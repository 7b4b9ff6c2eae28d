/* synchro/common.h - export macro and the forward declarations every header shares. */
#ifndef SYNCHRO_COMMON_H
#define SYNCHRO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define SYNCHRO_EXTERN __attribute__((visibility("default")))
#define SYNCHRO_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SYNCHRO_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define SYNCHRO_EXTERN
#define SYNCHRO_PRINTF(fmt, args)
#define SYNCHRO_WARN_UNUSED
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* jansson's value type, declared here so that headers need not include <jansson.h>. */
struct json_t;

/* Opaque handles; their layouts live in lib/ and may change between releases. */
typedef struct synchro_s synchro_t;             /* a synchronizer: one loop, one thread */
typedef struct synchro_call_s synchro_call_t;   /* one invocation, seen by the implementation */
typedef struct synchro_call_s synchro_future_t; /* the caller's handle on the same invocation */
typedef struct synchro_error_s synchro_error_t; /* code, message, origin, details, cause */
typedef struct synchro_cq_s synchro_cq_t;       /* completion queue for batches of futures */
typedef struct synchro_host_s synchro_host_t;   /* where _aio completions are delivered */

/* Timeouts, in milliseconds, for submissions and waits. */
#define SYNCHRO_TIMEOUT_DEFAULT (-1)  /* submission: the op's timeout, else the synchronizer's */
#define SYNCHRO_TIMEOUT_INFINITE (-2) /* no deadline / wait forever */

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_COMMON_H */
