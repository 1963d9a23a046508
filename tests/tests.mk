# tests.mk — builds the test binaries, the sanitizer core and the other library
# configurations for scripts/run_tests.sh, incrementally: every object records
# the headers it includes (-MMD -MP), so a second run with nothing changed
# compiles nothing, and touching a header rebuilds exactly what includes it.
#
#   make -f tests/tests.mk [-k] [-j N] [VAR=...] TARGET...   (from the repository root)
#
# Targets, one per test, NAME as scripts/run_tests.sh -l prints it:
#   build-tests/status/NAME   written when NAME's binary is up to date (built
#                             now or before); absent when its build failed
#   build-tests/status/asan-core   the same for the sanitizer core
#   build-tests/status/tsan-core   the same for the ThreadSanitizer core
#   build-tests/NAME          the binary itself
# Build logs: build-tests/logs/NAME.build.log (the compiler's and the
# linker's output), build-tests/logs/build-asan.log (the failed compilations of
# the sanitizer core); make's own output is run_tests.sh's logs/make.log.
#
# Variables: LIBDIR (the libraries tested, default build), OUT (build-tests),
# ASAN_DIR (build-asan), TSAN_DIR (build-tsan), CC, CXX. A change of
# compiler, flags or LIBDIR is noticed (signature files in OUT/sig/) and
# rebuilds what it concerns.
#
# The sanitizer core (ASAN_DIR/libhakmem_core.a) is compiled here from the
# top-level Makefile's CORE_SRC with its CFLAGS_ALL (plus the sanitizer
# flags), both asked with `make print-VAR`: src/ may move files between
# folders without this file knowing. The build.* configurations are built by
# the top-level Makefile into OUT/cfg-NAME; their objects are removed first
# whenever a header anywhere under src/ or include/ is newer than the last
# build, so that they never rest on a header dependency that the top-level
# Makefile does not track.

LIBDIR   ?= build
OUT      ?= build-tests
ASAN_DIR ?= build-asan
CC       ?= cc
CXX      ?= c++

# the variables of this make's command line are not the top-level Makefile's
MAKEOVERRIDES :=
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:
.DELETE_ON_ERROR:
.PHONY: FORCE all
FORCE:

WFLAGS   := -Wall -Wextra -Wno-unknown-warning-option -Wno-use-after-free -Wno-alloc-size-larger-than \
            -Wno-free-nonheap-object -Wno-mismatched-new-delete
# the compiler must not remove or fold the allocations the tests make, nor
# assume that they leave errno alone (clang does, for aligned_alloc)
TCFLAGS  := -std=gnu11 -O2 -g -D_GNU_SOURCE $(WFLAGS) -fno-builtin -Iinclude -Itests
TCXXFLAGS := -std=c++17 -O2 -g -fsized-deallocation -fno-builtin $(WFLAGS) -Iinclude -Itests
UCFLAGS  := -std=gnu11 -O1 -g -D_GNU_SOURCE $(WFLAGS) -Isrc -Iinclude -Itests
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
DEPFLAGS  = -MMD -MP -MF $(@:.o=.d)
LDLIBS   := -pthread -ldl

# ------------------------------------------------------------- the tests
C_TESTS   := $(patsubst tests/test_%.c,%,$(wildcard tests/test_*.c))
CXX_TESTS := $(patsubst tests/test_%.cpp,%,$(wildcard tests/test_*.cpp))
UNIT      := $(patsubst tests/%.c,%,$(wildcard tests/unit_*.c))
CONFIGS   := debug hardened clang

C_LINKED    := $(C_TESTS:%=$(OUT)/%.linked)
C_PRELOAD   := $(C_TESTS:%=$(OUT)/%.preload)
C_ASAN      := $(C_TESTS:%=$(OUT)/%.asan)
CXX_LINKED  := $(CXX_TESTS:%=$(OUT)/%.linked)
CXX_PRELOAD := $(CXX_TESTS:%=$(OUT)/%.preload)
UNIT_CORE   := $(UNIT:%=$(OUT)/%.core)
UNIT_ASAN   := $(UNIT:%=$(OUT)/%.asan)
BINS := $(C_LINKED) $(C_PRELOAD) $(C_ASAN) $(CXX_LINKED) $(CXX_PRELOAD) $(UNIT_CORE) $(UNIT_ASAN)
OBJS := $(BINS:$(OUT)/%=$(OUT)/obj/%.o)

all: $(BINS:$(OUT)/%=$(OUT)/status/%) $(CONFIGS:%=$(OUT)/status/build.%)

# ------------------------------------------------------------ signatures
# sig FILE,TEXT: FILE holds TEXT, rewritten (and so newer) only when TEXT
# changes; what is built with TEXT depends on FILE
sig = $(shell mkdir -p $(dir $1) && t='$(subst ','\'',$(strip $2))'; \
        [ "$$(cat $1 2>/dev/null)" = "$$t" ] || printf '%s\n' "$$t" >$1)
SIG_CC   := $(OUT)/sig/compile
SIG_LD   := $(OUT)/sig/link
SIG_ASAN := $(OUT)/sig/asan-core
$(call sig,$(SIG_CC),$(CC) $(CXX) | $(TCFLAGS) | $(TCXXFLAGS) | $(UCFLAGS) | $(SANFLAGS))
$(call sig,$(SIG_LD),$(CC) $(CXX) $(LIBDIR) $(ASAN_DIR) $(LDLIBS))

# ------------------------------------------------------- compiling, linking
# NAME's build log: the compiler's output, then the linker's
log_of = $(OUT)/logs/$(notdir $1).build.log
define compile
	@mkdir -p $(@D) $(OUT)/logs
	@echo "  CC    $@"
	@$1 $(DEPFLAGS) -c $< -o $@ >$(call log_of,$(basename $@)) 2>&1
endef
define link
	@echo "  LD    $@"
	@$1 >>$(call log_of,$@) 2>&1
endef

$(C_LINKED:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.linked.o: tests/test_%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(TCFLAGS) -DHK_MODE_LINKED)
$(C_PRELOAD:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.preload.o: tests/test_%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(TCFLAGS) -DHK_MODE_PRELOAD)
$(C_ASAN:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.asan.o: tests/test_%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(TCFLAGS) $(SANFLAGS) -DHK_MODE_HAKAPI)
$(CXX_LINKED:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.linked.o: tests/test_%.cpp $(SIG_CC) tests/tests.mk
	$(call compile,$(CXX) $(TCXXFLAGS) -DHK_MODE_LINKED)
$(CXX_PRELOAD:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.preload.o: tests/test_%.cpp $(SIG_CC) tests/tests.mk
	$(call compile,$(CXX) $(TCXXFLAGS) -DHK_MODE_PRELOAD)
$(UNIT_CORE:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.core.o: tests/%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(UCFLAGS))
$(UNIT_ASAN:$(OUT)/%=$(OUT)/obj/%.o): $(OUT)/obj/%.asan.o: tests/%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(UCFLAGS) $(SANFLAGS))

WHOLE = -Wl,--whole-archive $(LIBDIR)/libhakmem.a -Wl,--no-whole-archive
$(C_LINKED): $(OUT)/%: $(OUT)/obj/%.o $(LIBDIR)/libhakmem.a $(SIG_LD)
	$(call link,$(CC) $< -o $@ $(WHOLE) $(LDLIBS))
$(C_PRELOAD): $(OUT)/%: $(OUT)/obj/%.o $(SIG_LD)
	$(call link,$(CC) $< -o $@ $(LDLIBS))
$(CXX_LINKED): $(OUT)/%: $(OUT)/obj/%.o $(LIBDIR)/libhakmem.a $(SIG_LD)
	$(call link,$(CXX) $< -o $@ $(WHOLE) $(LDLIBS))
$(CXX_PRELOAD): $(OUT)/%: $(OUT)/obj/%.o $(SIG_LD)
	$(call link,$(CXX) $< -o $@ $(LDLIBS))
$(UNIT_CORE): $(OUT)/%: $(OUT)/obj/%.o $(LIBDIR)/libhakmem_core.a $(SIG_LD)
	$(call link,$(CC) $< -o $@ $(LIBDIR)/libhakmem_core.a $(LDLIBS))
$(C_ASAN) $(UNIT_ASAN): $(OUT)/%: $(OUT)/obj/%.o $(ASAN_DIR)/libhakmem_core.a $(SIG_LD)
	$(call link,$(CC) $(SANFLAGS) $< -o $@ $(ASAN_DIR)/libhakmem_core.a $(LDLIBS))

# NAME's status: its binary is up to date
$(BINS:$(OUT)/%=$(OUT)/status/%): $(OUT)/status/%: $(OUT)/% FORCE
	@mkdir -p $(@D) && touch $@

# Tests that also run against the debug and hardened libraries (NAME.CFG.linked
# here; NAME.CFG.preload is NAME.preload under LD_PRELOAD=OUT/cfg-CFG/libhakmem.so),
# as scripts/run_tests.sh lists them: safety checks must hold in every build.
CFG_TESTS  := doublefree guard purge
CFG_LINKED := $(foreach c,debug hardened,$(CFG_TESTS:%=$(OUT)/%.$(c).linked))
WHOLE_debug    = -Wl,--whole-archive $(OUT)/cfg-debug/libhakmem.a -Wl,--no-whole-archive
WHOLE_hardened = -Wl,--whole-archive $(OUT)/cfg-hardened/libhakmem.a -Wl,--no-whole-archive
$(OUT)/%.debug.linked: $(OUT)/obj/%.linked.o $(OUT)/status/build.debug $(SIG_LD)
	$(call link,$(CC) $< -o $@ $(WHOLE_debug) $(LDLIBS))
$(OUT)/%.hardened.linked: $(OUT)/obj/%.linked.o $(OUT)/status/build.hardened $(SIG_LD)
	$(call link,$(CC) $< -o $@ $(WHOLE_hardened) $(LDLIBS))
$(CFG_LINKED:$(OUT)/%=$(OUT)/status/%): $(OUT)/status/%: $(OUT)/% FORCE
	@mkdir -p $(@D) && touch $@

# ----------------------------------------------------- the sanitizer core
# asked only when a target needs it (the top-level Makefile may be broken
# while src/ is being edited; the tests that do not need the core still run)
NEED_CORE := $(if $(MAKECMDGOALS),$(filter all %.asan $(OUT)/status/asan-core $(ASAN_DIR)/%,$(MAKECMDGOALS)),yes)
ifneq ($(NEED_CORE),)
TOP := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(firstword $(MAKE)) -s --no-print-directory -f Makefile
CORE_SRC    := $(shell $(TOP) print-CORE_SRC 2>/dev/null)
CORE_CFLAGS := $(shell $(TOP) print-CFLAGS_ALL DEBUG= HARDENED= CFLAGS='$(SANFLAGS)' 2>/dev/null)
ifneq ($(strip $(CORE_SRC)),)
$(call sig,$(SIG_ASAN),$(CC) | $(CORE_CFLAGS))
$(call sig,$(SIG_ASAN)-src,$(CORE_SRC))
endif
endif
CORE_OBJ := $(CORE_SRC:src/%.c=$(ASAN_DIR)/obj/%.o)
ASAN_LOG := $(OUT)/logs/build-asan.log
# (absent only when the top-level Makefile gave no CORE_SRC: the archive's
# recipe says so)
$(SIG_ASAN) $(SIG_ASAN)-src:

$(CORE_OBJ): $(ASAN_DIR)/obj/%.o: src/%.c $(SIG_ASAN)
	@mkdir -p $(@D) $(OUT)/logs
	@echo "  CC    $@"
	@$(CC) $(CORE_CFLAGS) $(DEPFLAGS) -c $< -o $@ >$@.log 2>&1 || { cat $@.log >>$(ASAN_LOG); exit 1; }

# (a source added or removed changes the archive, not the other objects)
$(ASAN_DIR)/libhakmem_core.a: $(CORE_OBJ) $(SIG_ASAN) $(SIG_ASAN)-src
	@mkdir -p $(@D) $(OUT)/logs
	@if [ -z "$(strip $(CORE_SRC))" ] || [ -z "$(strip $(CORE_CFLAGS))" ]; then \
	  echo "error: \`make print-CORE_SRC\` and \`make print-CFLAGS_ALL\` of the top-level Makefile gave nothing" >>$(ASAN_LOG); exit 1; fi
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $(CORE_OBJ)

$(OUT)/status/asan-core: $(ASAN_DIR)/libhakmem_core.a FORCE
	@mkdir -p $(@D) && touch $@

# ------------------------------------------------------- ThreadSanitizer
# tsan.NAME: the threaded tests in the hak_* API mode (tests/test_NAME.c) or
# as unit tests (tests/unit_NAME.c), against a core built with
# -fsanitize=thread into TSAN_DIR, from the same sources and flags as the
# ASan core. scripts/run_tests.sh runs them with tests/tsan.supp.
TSAN_DIR   ?= build-tsan
TSANFLAGS  := -fsanitize=thread -fno-omit-frame-pointer
TSAN_C     := threads fork oversub introspect purge
TSAN_UNIT  := unit_trim_race
TSAN_BINS  := $(TSAN_C:%=$(OUT)/tsan.%) $(TSAN_UNIT:%=$(OUT)/tsan.%)
SIG_TSAN   := $(OUT)/sig/tsan-core
TSAN_LOG   := $(OUT)/logs/build-tsan.log
all: $(TSAN_BINS:$(OUT)/%=$(OUT)/status/%)

NEED_TSAN := $(if $(MAKECMDGOALS),$(filter all $(OUT)/tsan.% $(OUT)/status/tsan% $(TSAN_DIR)/%,$(MAKECMDGOALS)),yes)
ifneq ($(NEED_TSAN),)
TOP := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(firstword $(MAKE)) -s --no-print-directory -f Makefile
TSAN_SRC    := $(shell $(TOP) print-CORE_SRC 2>/dev/null)
TSAN_CFLAGS := $(shell $(TOP) print-CFLAGS_ALL DEBUG= HARDENED= CFLAGS='$(TSANFLAGS)' 2>/dev/null)
ifneq ($(strip $(TSAN_SRC)),)
$(call sig,$(SIG_TSAN),$(CC) | $(TSAN_CFLAGS))
$(call sig,$(SIG_TSAN)-src,$(TSAN_SRC))
endif
endif
TSAN_OBJ := $(TSAN_SRC:src/%.c=$(TSAN_DIR)/obj/%.o)
$(SIG_TSAN) $(SIG_TSAN)-src:

$(TSAN_OBJ): $(TSAN_DIR)/obj/%.o: src/%.c $(SIG_TSAN)
	@mkdir -p $(@D) $(OUT)/logs
	@echo "  CC    $@"
	@$(CC) $(TSAN_CFLAGS) $(DEPFLAGS) -c $< -o $@ >$@.log 2>&1 || { cat $@.log >>$(TSAN_LOG); exit 1; }

$(TSAN_DIR)/libhakmem_core.a: $(TSAN_OBJ) $(SIG_TSAN) $(SIG_TSAN)-src
	@mkdir -p $(@D) $(OUT)/logs
	@if [ -z "$(strip $(TSAN_SRC))" ] || [ -z "$(strip $(TSAN_CFLAGS))" ]; then \
	  echo "error: \`make print-CORE_SRC\` and \`make print-CFLAGS_ALL\` of the top-level Makefile gave nothing" >>$(TSAN_LOG); exit 1; fi
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $(TSAN_OBJ)

$(OUT)/status/tsan-core: $(TSAN_DIR)/libhakmem_core.a FORCE
	@mkdir -p $(@D) && touch $@

$(TSAN_C:%=$(OUT)/obj/tsan.%.o): $(OUT)/obj/tsan.%.o: tests/test_%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(TCFLAGS) $(TSANFLAGS) -DHK_MODE_HAKAPI)
$(TSAN_UNIT:%=$(OUT)/obj/tsan.%.o): $(OUT)/obj/tsan.%.o: tests/%.c $(SIG_CC) tests/tests.mk
	$(call compile,$(CC) $(UCFLAGS) $(TSANFLAGS))
$(TSAN_BINS): $(OUT)/%: $(OUT)/obj/%.o $(TSAN_DIR)/libhakmem_core.a $(SIG_LD)
	$(call link,$(CC) $(TSANFLAGS) $< -o $@ $(TSAN_DIR)/libhakmem_core.a $(LDLIBS))
$(TSAN_BINS:$(OUT)/%=$(OUT)/status/%): $(OUT)/status/%: $(OUT)/% FORCE
	@mkdir -p $(@D) && touch $@

# ------------------------------------------------- the other configurations
cfg_vars_debug    := DEBUG=1 CC='$(CC)'
cfg_vars_hardened := HARDENED=1 CC='$(CC)'
cfg_vars_clang    := CC=clang
HEADERS := $(shell find src include -name '*.h' 2>/dev/null)

# the headers' stamp of a configuration: when one is newer, its objects go
# (not an intermediate file, which make would remove after the build)
STAMPS := $(CONFIGS:%=$(OUT)/cfg-%/headers.stamp)
.SECONDARY: $(STAMPS)
$(STAMPS): $(OUT)/cfg-%/headers.stamp: $(HEADERS)
	@rm -rf $(@D)/obj && mkdir -p $(@D) && touch $@

$(OUT)/status/build.%: $(OUT)/cfg-%/headers.stamp FORCE
	@mkdir -p $(@D) $(OUT)/logs
	@echo "  MAKE  $(OUT)/cfg-$* ($(cfg_vars_$*))"
	@log=$(OUT)/logs/build.$*.build.log; \
	if [ "$*" = clang ] && ! command -v clang >/dev/null 2>&1; then \
	  echo "error: clang is not installed (Debian: clang; scripts/install_test_deps.sh installs it)" >$$log; exit 1; fi; \
	$(MAKE) -s -f Makefile BUILD=$(OUT)/cfg-$* DEBUG= HARDENED= CFLAGS= $(cfg_vars_$*) \
	  $(OUT)/cfg-$*/libhakmem.so $(OUT)/cfg-$*/libhakmem.a >$$log 2>&1 && touch $@

-include $(OBJS:.o=.d) $(CORE_OBJ:.o=.d) $(TSAN_BINS:$(OUT)/%=$(OUT)/obj/%.d) $(TSAN_OBJ:.o=.d)
