/* tests/fuzz/fuzz_spec.c - libFuzzer harness for the bridge spec parser, validator and
 * renderer: no input may crash them, leak, or trip a sanitizer.
 *
 * `make fuzz` (FUZZ_SECONDS=60 by default) builds it with clang
 * -fsanitize=fuzzer,address,undefined, seeds build/fuzz-corpus with every spec under
 * tests/, and runs it with tests/fuzz/spec.dict over build/fuzz-corpus and the
 * committed regression inputs in tests/fuzz/corpus/. A crash leaves crash-<sha1> in the
 * current directory; replay it with ./build/fuzz_spec crash-<sha1>, then add the input
 * to tests/fuzz/corpus/: `make check` replays that directory and every test spec
 * through this entry point (tests/check_fuzz_replay.c). */
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
