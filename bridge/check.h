/* bridge/check.h - `bridge check`: are the committed generated files up to date? */
#ifndef BRIDGE_CHECK_H
#define BRIDGE_CHECK_H

#include "spec.h"

/* Regenerates `spec` into a temporary directory and compares each file byte for byte
 * with the one in `dir`, printing a unified diff (or which files differ, when diff(1)
 * cannot run) on stdout and missing files on stderr. The temporary directory is
 * always removed. Returns 0 (up to date), 1 (drift), -ENOTSUP (see
 * bridge_check_supported) or another -errno (I/O). */
int bridge_check(const bridge_spec_t *spec, const char *dir);

#endif /* BRIDGE_CHECK_H */
