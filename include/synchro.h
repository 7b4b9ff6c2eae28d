/* synchro.h - one async implementation on a libuv loop, three ways to call it.
 *
 * The umbrella header: includes every public header of the library. */
#ifndef SYNCHRO_H
#define SYNCHRO_H

#include "synchro/common.h"
#include "synchro/version.h"
#include "synchro/error.h"
#include "synchro/alloc.h"
#include "synchro/synchronizer.h"
#include "synchro/dump.h"
#include "synchro/call.h"
#include "synchro/future.h"
#include "synchro/cq.h"
#include "synchro/host.h"
#include "synchro/stream.h"
#include "synchro/object.h"
#include "synchro/module.h"
#include "synchro/diag.h"
#include "synchro/context.h"

#endif /* SYNCHRO_H */
