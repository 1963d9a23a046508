# hakmem — build, test, benchmark, install.
#   make            release build: build/libhakmem.so, build/libhakmem.a, build/libhakmem_core.a
#   make DEBUG=1    assertions + HAKMEM_DEBUG tracing, in build-debug/
#   make HARDENED=1 encoded free-list pointers + guard pages, in build-hardened/
#   make test       builds and runs every test (ends with "N passed, M failed")
#   make bench      builds and runs the allocator comparison, writes docs/BENCHMARKS.md
#   make fuzz       fuzzes the hak_* API (libFuzzer, clang) for FUZZ_SECONDS (default 60)
#   make install PREFIX=/usr/local   (libraries, header, pkg-config file, bin/hakmem)

CC      ?= cc
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
BINDIR  ?= $(PREFIX)/bin
INCDIR  ?= $(PREFIX)/include

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASE    := -std=c11 -D_GNU_SOURCE -fPIC -pthread -Iinclude -Isrc -fvisibility=hidden \
           -fno-plt -ftls-model=initial-exec -fno-semantic-interposition
ifeq ($(DEBUG),1)
  BUILD  ?= build-debug
  OPT    := -O1 -g3 -DHAKMEM_DEBUG=1
else ifeq ($(HARDENED),1)
  BUILD  ?= build-hardened
  OPT    := -O2 -g -DNDEBUG -DHAKMEM_HARDENED=1
else
  BUILD  ?= build
  OPT    := -O2 -g -DNDEBUG
endif
CFLAGS_ALL := $(BASE) $(WARN) $(OPT) $(CFLAGS)

# The layers, bottom to top (docs/ARCHITECTURE.md): a file includes headers
# of its own layer and of the layers before it only (scripts/check_layers.py).
LAYERS   := base os mem backend frontend diag api
CORE_SRC := $(foreach l,$(LAYERS),$(filter-out src/api/override.c,$(wildcard src/$(l)/*.c)))
OVR_SRC  := src/api/override.c
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
OVR_OBJ  := $(OVR_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/api/alloc_override.o
LIB_OBJ  := $(filter-out $(BUILD)/obj/api/alloc.o,$(CORE_OBJ)) $(OVR_OBJ)
HDRS     := $(wildcard src/*/*.h) include/hakmem.h

LIBS := $(BUILD)/libhakmem.so $(BUILD)/libhakmem.a $(BUILD)/libhakmem_core.a

.PHONY: all lib test bench bench-quick fuzz install uninstall clean format
all: $(LIBS) $(BUILD)/hakmem $(BUILD)/hakmem-exec
lib: $(LIBS)

$(BUILD)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/api/alloc_override.o: src/api/alloc.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC    $< (override)"
	@$(CC) $(CFLAGS_ALL) -DHAK_OVERRIDE -c $< -o $@

$(BUILD)/libhakmem.so: $(LIB_OBJ)
	@echo "  LD    $@"
	@$(CC) -shared -pthread -Wl,-z,nodelete -Wl,-soname,libhakmem.so -o $@ $^ $(LDFLAGS)

$(BUILD)/libhakmem.a: $(LIB_OBJ)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/libhakmem_core.a: $(CORE_OBJ)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

# The hakmem command (tools/hakmem.py): build/hakmem finds build/libhakmem.so
# and its launcher build/hakmem-exec next to itself; the installed one has
# the install's LIBDIR written in (launcher in LIBDIR/hakmem/).
$(BUILD)/hakmem: tools/hakmem.py
	@mkdir -p $(BUILD)
	@echo "  GEN   $@"
	@install -m 755 $< $@

$(BUILD)/hakmem-exec: tools/hakmem-exec.c Makefile
	@mkdir -p $(BUILD)
	@echo "  CC    $<"
	@$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 $(CFLAGS) $< -o $@ $(LDFLAGS)

# Written at install time: it records this install's PREFIX.
.PHONY: $(BUILD)/hakmem.pc
$(BUILD)/hakmem.pc:
	@mkdir -p $(BUILD)
	@printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: hakmem\nDescription: hakmem memory allocator\nVersion: 0.1.0\nLibs: -L$${libdir} -lhakmem -pthread\nCflags: -I$${includedir}\n' \
	  "$(PREFIX)" "$(LIBDIR)" "$(INCDIR)" > $@

install: $(LIBS) $(BUILD)/hakmem.pc $(BUILD)/hakmem $(BUILD)/hakmem-exec
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/hakmem
	install -m 755 $(BUILD)/hakmem-exec $(DESTDIR)$(LIBDIR)/hakmem/
	sed 's|^LIBDIR = None .*|LIBDIR = "$(LIBDIR)"|' tools/hakmem.py > $(DESTDIR)$(BINDIR)/hakmem
	chmod 755 $(DESTDIR)$(BINDIR)/hakmem
	install -m 755 $(BUILD)/libhakmem.so $(DESTDIR)$(LIBDIR)/
	install -m 644 $(BUILD)/libhakmem.a $(BUILD)/libhakmem_core.a $(DESTDIR)$(LIBDIR)/
	install -m 644 include/hakmem.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(BUILD)/hakmem.pc $(DESTDIR)$(LIBDIR)/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libhakmem.so $(DESTDIR)$(LIBDIR)/libhakmem.a \
	  $(DESTDIR)$(LIBDIR)/libhakmem_core.a $(DESTDIR)$(INCDIR)/hakmem.h \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/hakmem.pc $(DESTDIR)$(BINDIR)/hakmem \
	  $(DESTDIR)$(LIBDIR)/hakmem/hakmem-exec
	-rmdir $(DESTDIR)$(LIBDIR)/hakmem 2>/dev/null

test: $(LIBS) $(BUILD)/hakmem $(BUILD)/hakmem-exec
	./scripts/run_tests.sh

bench: $(LIBS) $(BUILD)/hakmem $(BUILD)/hakmem-exec
	python3 scripts/bench.py $(BENCH_ARGS)

bench-quick: $(LIBS) $(BUILD)/hakmem $(BUILD)/hakmem-exec
	python3 scripts/bench.py --quick $(BENCH_ARGS)

# libFuzzer on the hak_* API against an ASan/UBSan core: make fuzz FUZZ_SECONDS=600
fuzz:
	./scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

format:
	clang-format -i src/*/*.c src/*/*.h include/*.h tests/*.c bench/*.c

clean:
	rm -rf build build-debug build-hardened build-asan build-tests build-bench build-fuzz

# print-VAR prints the value of VAR, for scripts: tests/tests.mk asks for CORE_SRC
# and CFLAGS_ALL to build the sanitizer core from the same sources and flags
print-%:
	@printf '%s\n' '$($*)'
