/* lib/version.c - run-time version queries. */
#include "internal.h"

#define SYNCHRO__STR2(x) #x
#define SYNCHRO__STR(x) SYNCHRO__STR2(x)

unsigned synchro_version(void) { return SYNCHRO_VERSION_HEX; }

const char *synchro_version_string(void) {
  return SYNCHRO__STR(SYNCHRO_VERSION_MAJOR) "." SYNCHRO__STR(
      SYNCHRO_VERSION_MINOR) "." SYNCHRO__STR(SYNCHRO_VERSION_PATCH) "-" SYNCHRO_VERSION_SUFFIX;
}
