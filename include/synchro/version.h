/* synchro/version.h - compile-time and run-time version of the library.
 *
 * ABI rule: within one MAJOR version, the ABI only grows (new functions, new error
 * codes); a release that removes or changes anything bumps MAJOR and the SONAME. */
#ifndef SYNCHRO_VERSION_H
#define SYNCHRO_VERSION_H

#include "common.h"

#define SYNCHRO_VERSION_MAJOR 0
#define SYNCHRO_VERSION_MINOR 1
#define SYNCHRO_VERSION_PATCH 0
#define SYNCHRO_VERSION_IS_RELEASE 0
#define SYNCHRO_VERSION_SUFFIX "dev"

/* 0xMMmmpp: one byte each, so versions compare as integers. */
#define SYNCHRO_VERSION_HEX                                                                        \
  ((SYNCHRO_VERSION_MAJOR << 16) | (SYNCHRO_VERSION_MINOR << 8) | (SYNCHRO_VERSION_PATCH))

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library the program runs with, as SYNCHRO_VERSION_HEX.
 * Thread-safe: yes. */
SYNCHRO_EXTERN unsigned synchro_version(void);

/* The same as a string, e.g. "0.1.0-dev". Static storage; do not free.
 * Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_VERSION_H */
