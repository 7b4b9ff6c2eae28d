/* tests/fuzz/fuzz_spec.c - libFuzzer harness for the bridge spec parser, validator and
 * renderer: no input may crash them, leak, or trip a sanitizer.
 *
 * Build, seed with every test spec, and run for 60 seconds (from the project root):
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Iinclude -Ibridge tests/fuzz/fuzz_spec.c bridge/spec.c bridge/types.c \
 *     bridge/names.c bridge/util.c bridge/emit.c bridge/emit_common.c \
 *     bridge/emit_header.c bridge/emit_source.c bridge/emit_impl.c \
 *     -ljansson -o build/fuzz_spec
 *   mkdir -p build/fuzz-corpus
 *   find tests/bridge -name spec.json | while read f; do
 *     cp "$f" "build/fuzz-corpus/$(echo "$f" | tr / _)"; done
 *   ./build/fuzz_spec -max_total_time=60 -max_len=4096 -dict=tests/fuzz/spec.dict \
 *     build/fuzz-corpus
 * A crash leaves crash-<sha1> in the current directory; replay it with
 *   ./build/fuzz_spec crash-<sha1> */
#include <stddef.h>
#include <stdint.h>

#include "emit.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bridge_spec_t *spec = NULL;
  bridge_error_t err;
  bridge_files_t files;

  if (bridge_spec_parse((const char *)data, size, &spec, &err) != 0) {
    /* an error always says something */
    if (err.text[0] == '\0')
      __builtin_trap();
    return 0;
  }
  /* valid specs go through the emitters too (in memory only) */
  if (bridge_render(spec, &files) == 0)
    bridge_files_free(&files);
  bridge_spec_free(spec);
  return 0;
}
