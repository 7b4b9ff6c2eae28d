/* bridge/names.h - what a name in the spec may be.
 *
 * Spec names become parts of C identifiers (kv_ + "get" + "_future") and argument
 * names become bare C parameter and struct field names, so they must be identifiers
 * that cannot collide with C, C++, the headers the generated code includes, or the
 * names the generator makes up itself. */
#ifndef BRIDGE_NAMES_H
#define BRIDGE_NAMES_H

#include <stdbool.h>

#include "util.h"

/* Checks a name used inside generated identifiers (module, error, function, object,
 * method, impl). `lower_snake` restricts it to [a-z0-9_]. Returns 0, or -1 with the
 * reason in `why`. */
int bridge_name_check(const char *name, bool lower_snake, bridge_buf_t *why);

/* Checks a C parameter name made from an argument ("key", or "key_len" for bytes)
 * for module `module`. Returns 0, or -1 with the reason in `why`. */
int bridge_param_check(const char *param, const char *module, bridge_buf_t *why);

/* The suffixes bridge appends to a function's or method's name (MOD_<name><suffix>),
 * NULL-terminated; the first is "". */
extern const char *const bridge_function_suffixes[];

/* The same for a stream function or method ("yields"). NULL-terminated. */
extern const char *const bridge_stream_suffixes[];

/* The names, after "MOD_", that bridge makes for the module itself. NULL-terminated. */
extern const char *const bridge_module_names[];

/* The suffixes made for an object (MOD_<object><suffix>) besides its methods, and the
 * lifecycle operations that get a function's full suffix set. NULL-terminated. */
extern const char *const bridge_object_suffixes[];
extern const char *const bridge_object_lifecycle[];

#endif /* BRIDGE_NAMES_H */
