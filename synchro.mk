# synchro.mk - make rules that generate synchro wrappers with synchro-bridge and check
# that committed ones are not stale. Installed by synchro's `make install` as
# $(PREFIX)/share/synchro/synchro.mk; needs GNU make. In your Makefile:
#
#   include $(shell pkg-config --variable=synchro_mk synchro)
#   $(eval $(call synchro_module,clock.json,gen))      # gen/clock.{h,c} + gen/clock_impl.h
#
#   CFLAGS += $(SYNCHRO_CFLAGS) -Igen
#   app: main.c clock_impl.c $(SYNCHRO_GEN_SRCS) | $(SYNCHRO_GEN_HDRS)
#   	$(CC) $(CFLAGS) main.c clock_impl.c $(SYNCHRO_GEN_SRCS) -o $@ $(SYNCHRO_LIBS)
#   check: synchro-check                                # fails when gen/ is stale
#
# synchro_module(SPEC, DIR[, MODULE]) adds rules for DIR/MODULE.h, DIR/MODULE.c and
# DIR/MODULE_impl.h, regenerated when SPEC (or the bridge binary, when SYNCHRO_BRIDGE is
# a path) is newer. MODULE is the spec's "module" field; it defaults to SPEC's file name
# without its extension (clock.json -> clock): pass it when they differ.
# See docs/getting-started.md and synchro-bridge(1).

# The generator: the installed one by default. A path (e.g. ../synchro/build/bridge)
# works too.
SYNCHRO_BRIDGE ?= synchro-bridge
SYNCHRO_PKG_CONFIG ?= pkg-config
# Compiler and linker flags for programs using synchro (and their generated modules).
SYNCHRO_CFLAGS ?= $(shell $(SYNCHRO_PKG_CONFIG) --cflags synchro)
SYNCHRO_LIBS ?= $(shell $(SYNCHRO_PKG_CONFIG) --libs synchro)

# Filled by synchro_module: generated sources, headers, and the SPEC:DIR pairs that
# synchro-check and synchro-generate walk.
SYNCHRO_GEN_SRCS ?=
SYNCHRO_GEN_HDRS ?=
SYNCHRO_MODULES ?=

define synchro_module
synchro__default_goal := $$(.DEFAULT_GOAL)
SYNCHRO_GEN_SRCS += $(2)/$(or $(3),$(basename $(notdir $(1)))).c
SYNCHRO_GEN_HDRS += $(2)/$(or $(3),$(basename $(notdir $(1)))).h \
                    $(2)/$(or $(3),$(basename $(notdir $(1))))_impl.h
SYNCHRO_MODULES += $(1):$(2)
$(2)/$(or $(3),$(basename $(notdir $(1)))).c: $(1) $(wildcard $(SYNCHRO_BRIDGE))
	$$(SYNCHRO_BRIDGE) generate $(1) -o $(2)
$(2)/$(or $(3),$(basename $(notdir $(1)))).h $(2)/$(or $(3),$(basename $(notdir $(1))))_impl.h: \
    $(2)/$(or $(3),$(basename $(notdir $(1)))).c
	@test -f $$@ || { echo "synchro.mk: $$@ missing after generating $(1): is the module called $(or $(3),$(basename $(notdir $(1))))? (3rd argument of synchro_module)"; exit 1; }
.DEFAULT_GOAL := $$(synchro__default_goal)
endef

# Including this file does not change your default goal.
synchro__default_goal := $(.DEFAULT_GOAL)

.PHONY: synchro-check synchro-generate
# Fails (exit 1, with a diff) when a DIR does not match what its SPEC generates: run it in
# CI next to your tests. Exit 3 means an invalid spec, 4 an I/O error (synchro-bridge(1)).
synchro-check:
	@set -e; for p in $(SYNCHRO_MODULES); do \
	  spec=$${p%%:*}; dir=$${p#*:}; \
	  echo "$(SYNCHRO_BRIDGE) check $$spec -o $$dir"; \
	  $(SYNCHRO_BRIDGE) check $$spec -o $$dir; \
	done

# Regenerates every module, whatever the timestamps say.
synchro-generate:
	@set -e; for p in $(SYNCHRO_MODULES); do \
	  spec=$${p%%:*}; dir=$${p#*:}; \
	  echo "$(SYNCHRO_BRIDGE) generate $$spec -o $$dir"; \
	  $(SYNCHRO_BRIDGE) generate $$spec -o $$dir; \
	done

.DEFAULT_GOAL := $(synchro__default_goal)
