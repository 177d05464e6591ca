# metald — bare-metal provisioning daemon
#
#   make            build everything (gcc or clang, -Werror)
#   make check      every test tier: unit, fuzz corpus replay, integration, sanitizers
#   make asan       unit + integration tiers under ASan + UBSan
#   make fuzz       libFuzzer targets (clang)
#   make bench      benchmarks against peers (prints ratios; never part of check)
#   make deps       install the Debian packages the build and the tests need
#   make demo       boot a QEMU machine through metald in a network namespace

O        ?= build
CC       ?= cc
PREFIX   ?= /usr/local
PKGS     := libmicrohttpd libcurl json-c libarchive openssl libsystemd sqlite3 yaml-0.1 libzstd

CFLAGS   ?= -O2 -g
WARNINGS := -std=c17 -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wvla -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CPPFLAGS := -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS   := $(WARNINGS) $(CFLAGS) -MMD -MP
LIBS     := $(PKG_LIBS) -lpthread

# One folder per subsystem (docs/ARCHITECTURE.md). core/ is the foundation of
# both programs; the agent runs on the machine being provisioned and links its
# own archive over core/, never the daemon's.
CORE_SRCS  := $(wildcard src/core/*.c)
AGENT_SRCS := $(wildcard src/agent/*.c)
LIB_SRCS   := $(filter-out src/core/% src/agent/% src/cmd/%,$(wildcard src/*/*.c))
CORE_OBJS  := $(CORE_SRCS:%.c=$(O)/%.o)
AGENT_OBJS := $(AGENT_SRCS:%.c=$(O)/%.o)
LIB_OBJS   := $(LIB_SRCS:%.c=$(O)/%.o)
DAEMON_LIBS := $(O)/libmetald.a $(O)/libmetald-core.a
TEST_LIBS   := $(O)/libmetald.a $(O)/libmetald-agent.a $(O)/libmetald-core.a
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(O)/%.o)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAYERS := $(FUZZ_NAMES:%=$(O)/fuzz-replay-%)
PROGRAMS  := $(O)/metald $(O)/metald-agent

.PHONY: all check layout unit replay integration asan asan-check fuzz bench bench-deps bench-net bench-http bench-image \
        deps demo install clean pxe

all: $(PROGRAMS) $(O)/unit-tests $(REPLAYERS) pxe

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(O)/libmetald.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/libmetald-core.a: $(CORE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/libmetald-agent.a: $(AGENT_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/metald: $(O)/src/cmd/metald.o $(DAEMON_LIBS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(O)/metald-agent: $(O)/src/cmd/metald-agent.o $(O)/libmetald-agent.a $(O)/libmetald-core.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(O)/unit-tests: $(UNIT_OBJS) $(TEST_LIBS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(O)/fuzz-replay-%: $(O)/tests/fuzz/fuzz_%.o $(O)/tests/fuzz/replay.o $(TEST_LIBS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# The TFTP root holds the iPXE binaries from Debian's ipxe package. They are
# copied, not linked: the TFTP server refuses symlinks that leave its root.
IPXE_DIR ?= /usr/lib/ipxe
pxe:
	@for f in undionly.kpxe ipxe.efi snponly.efi; do \
		if [ -f $(IPXE_DIR)/$$f ] && ! cmp -s $(IPXE_DIR)/$$f pxe/$$f; then cp $(IPXE_DIR)/$$f pxe/$$f; fi; \
	done

# The folder map and the dependency rule (docs/ARCHITECTURE.md), from the
# #include lines and from the symbols each object file uses.
layout: $(LIB_OBJS) $(CORE_OBJS) $(AGENT_OBJS)
	tests/check-layout.py --self-test
	tests/check-layout.py --objects $(O) --docs docs/ARCHITECTURE.md docs/LIFECYCLE.md

unit: $(O)/unit-tests
	$(O)/unit-tests

replay: $(REPLAYERS)
	@set -e; for n in $(FUZZ_NAMES); do $(O)/fuzz-replay-$$n tests/fuzz/corpus/$$n; done

integration: $(PROGRAMS) pxe
	METALD_BUILD=$(O) tests/integration/run.sh $(TESTS)

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) O=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all
	$(MAKE) O=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" unit replay
	$(MAKE) O=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" integration

check: deps
	$(MAKE) all
	$(MAKE) layout
	$(MAKE) unit
	$(MAKE) replay
	$(MAKE) integration
	$(MAKE) asan

FUZZ_CC ?= clang
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined
fuzz:
	$(MAKE) O=build/fuzz CC=$(FUZZ_CC) CFLAGS="$(FUZZ_FLAGS)" $(TEST_LIBS:$(O)/%=build/fuzz/%)
	@set -e; for n in $(FUZZ_NAMES); do \
		echo "  FUZZ  build/fuzz/fuzz-$$n"; \
		$(FUZZ_CC) $(ALL_CPPFLAGS) $(WARNINGS) -O1 -g -fsanitize=fuzzer,address,undefined \
			-o build/fuzz/fuzz-$$n tests/fuzz/fuzz_$$n.c $(TEST_LIBS:$(O)/%=build/fuzz/%) $(LIBS); \
	done

bench: bench-net bench-http bench-image
bench-deps:
	tests/deps.sh --bench
bench-net: bench-deps all
	METALD_BUILD=$(O) tests/bench/bench-net.sh
bench-http: bench-deps all
	METALD_BUILD=$(O) tests/bench/bench-http.sh
bench-image: bench-deps all
	METALD_BUILD=$(O) BENCH_CC="$(CC)" BENCH_CFLAGS="$(ALL_CPPFLAGS) $(WARNINGS) $(CFLAGS)" BENCH_LIBS="$(LIBS)" \
		tests/bench/bench-image.sh

deps:
	tests/deps.sh

demo:
	tests/deps.sh
	$(MAKE) all
	METALD_BUILD=$(O) tests/demo.sh

BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/metald
install: $(PROGRAMS) pxe
	install -D -m 0755 $(O)/metald $(DESTDIR)$(BINDIR)/metald
	install -D -m 0755 $(O)/metald-agent $(DESTDIR)$(PREFIX)/lib/metald/metald-agent
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR)/pxe
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' docs/systemd/metald.service.in \
		> $(DESTDIR)$(UNITDIR)/metald.service
	install -m 0644 docs/man/metald.8 $(DESTDIR)$(MANDIR)/man8/metald.8
	install -m 0644 docs/man/metald.yaml.5 $(DESTDIR)$(MANDIR)/man5/metald.yaml.5
	install -m 0644 pxe/* $(DESTDIR)$(DATADIR)/pxe/
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/metald/metald.yaml ]; then \
		install -D -m 0644 docs/metald.yaml.example $(DESTDIR)$(SYSCONFDIR)/metald/metald.yaml; \
		sed -i 's|^  root: pxe|  root: $(DATADIR)/pxe|' $(DESTDIR)$(SYSCONFDIR)/metald/metald.yaml; \
	fi

clean:
	rm -rf build

-include $(shell find $(O) -name '*.d' 2>/dev/null)
