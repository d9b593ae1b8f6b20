# shortener: URL shortener server (bin/shortener), key generation service (bin/kgs) and admin
# CLI (bin/shortenerctl). `make help` lists the targets.

CC ?= cc
PKGS := libmicrohttpd hiredis libpq libsodium jansson libcurl

# Project flags are kept apart from the user's CFLAGS, which still apply on top.
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
	-fno-common -Werror
PROJECT_CFLAGS := -std=c17 -D_GNU_SOURCE -O2 -g $(WARN) -Iinclude -I/usr/include/postgresql \
	-MMD -MP
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# SANITIZE=1 builds the same programs with ASan+UBSan into build/asan.
ifeq ($(SANITIZE),1)
BUILD ?= build/asan
BINDIR ?= $(BUILD)/bin
PROJECT_CFLAGS += $(SAN_FLAGS)
PROJECT_LDFLAGS += $(SAN_FLAGS)
else
BUILD ?= build/release
BINDIR ?= bin
endif

LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -lhiredis -lpq -lsodium -ljansson -lcurl) -lpthread -lm

# The tree says which program a file belongs to: lib/ is linked by all three, src/server/ is
# bin/shortener, src/ctl/ is bin/shortenerctl, kgs/ is bin/kgs. Each main.c is an entry point.
LIB_SRCS := $(wildcard lib/*.c)
SERVER_SRCS := $(filter-out src/server/main.c,$(wildcard src/server/*.c))
CTL_SRCS := $(filter-out src/ctl/main.c,$(wildcard src/ctl/*.c))
KGS_SRCS := $(filter-out kgs/main.c,$(wildcard kgs/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
SERVER_OBJS := $(SERVER_SRCS:%.c=$(BUILD)/%.o)
CTL_OBJS := $(BUILD)/src/ctl/main.o $(CTL_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations_data.o
KGS_OBJS := $(KGS_SRCS:%.c=$(BUILD)/%.o)
LIBCOMMON := $(BUILD)/libcommon.a

PROGRAMS := $(BINDIR)/shortener $(BINDIR)/kgs $(BINDIR)/shortenerctl

# Every tests/unit/test_X.c is a unit test binary.
UNIT_TESTS := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/unit/test_%)

# Helpers the integration tests run beside the programs. Like a unit test, each may #include
# the module it exposes (gcra_twin: the rate limit's Lua script and its C twin).
TEST_HELPERS := $(BUILD)/tests/integration/gcra_twin

PYTEST := /usr/bin/python3 -m pytest

.PHONY: all deps asan unit integration test check-format format banned cppcheck fuzz run up down \
	clean help bench bench-bins openapi-lint cluster-up cluster-down cluster-test
all: $(PROGRAMS) $(TEST_HELPERS)

help:
	@echo "make            build bin/shortener, bin/kgs, bin/shortenerctl"
	@echo "make run        install what is missing, build, run the whole local stack in the foreground"
	@echo "make up / down  the same stack in the background under var/ / stopped again"
	@echo "make test       every check: format, cppcheck, unit and integration tests, plain and ASan+UBSan"
	@echo "make openapi-lint  lint openapi/openapi.json (Redocly CLI from npm)"
	@echo "make bench      load benchmarks against their references (wrk, nginx, pgbench; ~12 min)"
	@echo "make cluster-up / cluster-down  HAProxy, 3 shorteners, 2 kgs, Patroni + etcd, Redis + Sentinel under var/cluster"
	@echo "make cluster-test  the cluster's fault tests (kill -9 one part at a time under load)"

# Installs the Debian packages the build, the local stack and the tests need (apt-get, as
# root or through sudo); does nothing when they are all there.
deps:
	@deploy/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Migrations are compiled into shortenerctl so a deployment needs only the binary.
$(BUILD)/gen/migrations_data.c: $(sort $(wildcard migrations/*.sql)) deploy/embed-migrations.sh
	@mkdir -p $(dir $@)
	deploy/embed-migrations.sh $(sort $(wildcard migrations/*.sql)) > $@

$(BUILD)/gen/migrations_data.o: $(BUILD)/gen/migrations_data.c
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -c -o $@ $<

# The OpenAPI description is compiled into shortener, which serves it (GET /api/v1/openapi.json).
$(BUILD)/gen/openapi_data.c: openapi/openapi.json deploy/embed-openapi.sh
	@mkdir -p $(dir $@)
	deploy/embed-openapi.sh openapi/openapi.json > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/openapi_data.o: $(BUILD)/gen/openapi_data.c
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BINDIR)/shortener: $(BUILD)/src/server/main.o $(SERVER_OBJS) $(BUILD)/gen/openapi_data.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BINDIR)/shortenerctl: $(CTL_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BINDIR)/kgs: $(BUILD)/kgs/main.o $(KGS_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# A unit test links its own module (which it #includes) and the common library only.
$(BUILD)/tests/unit/test_%: tests/unit/test_%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -Ilib -Isrc/server -Isrc/ctl -Ikgs $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $< \
		$(LIBCOMMON) -lcmocka $(LIBS)

$(BUILD)/tests/integration/%: tests/integration/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -Ilib -Isrc/server $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $< \
		$(LIBCOMMON) $(LIBS)

# The benchmark's own programs: the libmicrohttpd ceiling and the kgs load generator.
BENCH_BINS := $(BUILD)/bench/ceiling $(BUILD)/bench/kgsload

$(BUILD)/bench/%: tests/bench/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIBCOMMON) $(LIBS)

bench-bins: $(BENCH_BINS)

# Loopback only, every load bounded in time; settings BENCH_LINKS, BENCH_SECONDS, BENCH_RUNS,
# BENCH_CONNS, BENCH_THREADS (tests/bench/README.md). Always the plain (unsanitized) build.
bench:
	@deploy/install-deps.sh --bench
	$(MAKE) SANITIZE= all bench-bins
	SHORTENER_BIN_DIR=$(abspath bin) BENCH_BIN_DIR=$(abspath build/release/bench) \
		/usr/bin/python3 tests/bench/bench.py

asan:
	$(MAKE) SANITIZE=1 all unit-bins

unit-bins: $(UNIT_BINS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all
	SHORTENER_BIN_DIR=$(abspath $(BINDIR)) \
		SHORTENER_TEST_HELPER_DIR=$(abspath $(BUILD)/tests/integration) \
		$(PYTEST) -q -p no:cacheprovider tests/integration

C_FILES = $(wildcard include/*.h lib/*.c src/*/*.c src/*/*.h kgs/*.c kgs/*.h tests/unit/*.c \
	tests/unit/*.h tests/fuzz/*.c tests/bench/*.c tests/integration/*.c)

check-format:
	clang-format --dry-run -Werror $(C_FILES)

format:
	clang-format -i $(C_FILES)

# Functions that invite overflows or hidden state (git's banned.h list, enforced by grep).
BANNED := strcpy|strcat|strncpy|sprintf|vsprintf|strtok|gets|asctime|ctime|gmtime|localtime
banned:
	@! grep -nE '\b($(BANNED))\s*\(' $(C_FILES) || \
		{ echo "banned functions above: use snprintf, memcpy, strtok_r, gmtime_r"; exit 1; }

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --std=c11 -D__GNUC__ -Iinclude lib src kgs tests/bench \
		tests/integration

test: deps
	@echo "== format and static checks"
	$(MAKE) check-format banned cppcheck openapi-lint
	@echo "== plain build: unit tests"
	$(MAKE) all unit bench-bins
	@echo "== ASan+UBSan build: unit tests"
	$(MAKE) SANITIZE=1 all unit
	$(MAKE) fuzz
	@echo "== integration tests, plain build"
	$(MAKE) integration
	@echo "== integration tests, ASan+UBSan build"
	$(MAKE) SANITIZE=1 integration
	@echo "== cluster fault tests, plain build"
	$(MAKE) cluster-test

# The OpenAPI description, linted by Redocly CLI (redocly.yaml) from the npm registry, pinned in
# package-lock.json; npm ci runs again only when the lock file is newer than node_modules.
node_modules/.installed: package-lock.json package.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

openapi-lint: node_modules/.installed
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --no-install redocly lint --config redocly.yaml openapi/openapi.json

# libFuzzer drivers, each run briefly over its checked-in corpus plus fresh inputs.
FUZZ_TARGETS := request urlcheck kgs_proto clientip csv
fuzz:
	@mkdir -p build/fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
		clang -std=c17 -D_GNU_SOURCE -g -O1 -Iinclude -Ilib -Isrc/server -Isrc/ctl -I/usr/include/postgresql \
			-fsanitize=fuzzer,address,undefined \
			-o build/fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c lib/*.c $(LIBS); \
		mkdir -p build/fuzz/corpus_$$t; \
		if ! build/fuzz/fuzz_$$t -max_total_time=10 -max_len=4096 \
			-artifact_prefix=build/fuzz/crash_$$t- build/fuzz/corpus_$$t \
			tests/fuzz/corpus/$$t >build/fuzz/$$t.log 2>&1; then \
			tail -n 40 build/fuzz/$$t.log; echo "fuzz_$$t failed: see build/fuzz/$$t.log"; \
			exit 1; \
		fi; \
		tail -n 1 build/fuzz/$$t.log; \
	done

run: deps all
	deploy/devstack.sh run

up: deps all
	deploy/devstack.sh up

down:
	deploy/devstack.sh down

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# Several shorteners and kgs behind HAProxy, PostgreSQL under Patroni + etcd with a synchronous
# standby, Redis under Sentinel, all on loopback under var/cluster (deploy/cluster/cluster.py).
cluster-up: deps all
	deploy/cluster/cluster.py up

cluster-down:
	deploy/cluster/cluster.py down

# The fault tests (tests/cluster/): their own cluster in a temporary directory on free ports.
# What they measured is printed and kept in build/cluster-results.json.
cluster-test: all
	SHORTENER_BIN_DIR=$(abspath $(BINDIR)) \
		$(PYTEST) -q -s -p no:cacheprovider tests/cluster
