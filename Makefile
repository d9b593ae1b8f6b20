# shortener: URL shortener server (bin/shortener), key generation service (bin/kgs) and admin
# CLI (bin/shortenerctl). `make help` lists the targets.

CC ?= cc
PKGS := libmicrohttpd hiredis libpq libsodium jansson libcurl libsystemd libqrencode libpng

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

LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -lhiredis -lpq -lsodium -ljansson -lcurl -lsystemd -lqrencode -lpng16) -lmaxminddb -lpthread -lm

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
	check-units fuzz-bins fuzz-long dr-drill soak web-test cluster-up cluster-down cluster-test \
	clean help bench bench-bins openapi-lint
all: $(PROGRAMS) $(TEST_HELPERS)

help:
	@echo "make            build bin/shortener, bin/kgs, bin/shortenerctl"
	@echo "make run        install what is missing, build, run the whole local stack in the foreground"
	@echo "make up / down  the same stack in the background under var/ / stopped again"
	@echo "make test       every check: format, cppcheck, unit and integration tests, plain and ASan+UBSan"
	@echo "make openapi-lint  lint openapi/openapi.json (Redocly CLI from npm)"
	@echo "make web-test   the web page in headless chromium (tests/web/)"
	@echo "make bench      load benchmarks against their references (wrk, nginx, pgbench; ~12 min)"
	@echo "make fuzz-long  every fuzz target for FUZZ_SECONDS (3600) in all, findings listed"
	@echo "make dr-drill   back up, destroy and restore PostgreSQL to a point in time, check every link"
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

# The web page (web/) is compiled into shortener too, gzip copies made here (src/server/web.c).
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js))
$(BUILD)/gen/web_data.c: $(WEB_FILES) deploy/embed-web.sh
	@mkdir -p $(dir $@)
	deploy/embed-web.sh $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_data.o: $(BUILD)/gen/web_data.c
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -c -o $@ $<

# The bot table of analytics: the crawler-user-agents list from npm (package-lock.json pins
# it), turned into C; the sample User-Agents it carries become a unit test's table.
CRAWLERS_JSON := node_modules/crawler-user-agents/crawler-user-agents.json
GEN_CRAWLERS := $(BUILD)/gen/crawlers_data.c $(BUILD)/gen/crawler_instances.c

$(BUILD)/gen/crawlers_data.c: node_modules/.installed deploy/gen-crawlers.py
	@mkdir -p $(dir $@)
	deploy/gen-crawlers.py patterns $(CRAWLERS_JSON) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/crawler_instances.c: node_modules/.installed deploy/gen-crawlers.py
	@mkdir -p $(dir $@)
	deploy/gen-crawlers.py instances $(CRAWLERS_JSON) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/crawlers_data.o: $(BUILD)/gen/crawlers_data.c
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BINDIR)/shortener: $(BUILD)/src/server/main.o $(SERVER_OBJS) $(BUILD)/gen/openapi_data.o \
		$(BUILD)/gen/web_data.o $(BUILD)/gen/crawlers_data.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BINDIR)/shortenerctl: $(CTL_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BINDIR)/kgs: $(BUILD)/kgs/main.o $(KGS_OBJS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# A unit test links its own module (which it #includes) and the common library only.
$(BUILD)/tests/unit/test_%: tests/unit/test_%.c $(LIBCOMMON) $(GEN_CRAWLERS)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -Ilib -Isrc/server -Isrc/ctl -Ikgs -I$(BUILD)/gen \
		$(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIBCOMMON) -lcmocka $(LIBS)

$(BUILD)/tests/integration/%: tests/integration/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(PROJECT_CFLAGS) $(CFLAGS) -Ilib -Isrc/server $(PROJECT_LDFLAGS) $(LDFLAGS) -o $@ $< \
		$(LIBCOMMON) $(LIBS)

# The benchmark's own programs: the libmicrohttpd ceiling, the kgs load generator and the SSE
# watchers of the live counter.
BENCH_BINS := $(BUILD)/bench/ceiling $(BUILD)/bench/kgsload $(BUILD)/bench/sseload

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

# The suite spends most of its time waiting (flush intervals, timeouts, restarts): run by
# TEST_WORKERS pytest-xdist workers, each with its own stack, it takes 8 minutes instead of 12
# on two CPUs. Test files stay whole (--dist loadfile), as their fixtures and order assume;
# TEST_WORKERS=0 runs it in this process, one test after another.
TEST_WORKERS ?= 2
integration: all
	SHORTENER_BIN_DIR=$(abspath $(BINDIR)) \
		SHORTENER_TEST_HELPER_DIR=$(abspath $(BUILD)/tests/integration) \
		$(PYTEST) -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests/integration

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

# systemd-analyze verify and security (offline) on deploy/*.service, against the built programs.
check-units: all
	BIN_DIR=$(abspath $(BINDIR)) deploy/check-units.sh

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --std=c11 -D__GNUC__ -Iinclude lib src kgs tests/bench \
		tests/integration

test: deps
	@echo "== format and static checks"
	$(MAKE) check-format banned cppcheck openapi-lint
	$(MAKE) all check-units
	@echo "== plain build: unit tests"
	$(MAKE) all unit bench-bins
	@echo "== ASan+UBSan build: unit tests"
	$(MAKE) SANITIZE=1 all unit
	$(MAKE) fuzz
	@echo "== integration tests, plain build"
	$(MAKE) integration
	@echo "== the web page in a real browser, plain build"
	$(MAKE) web-test
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

# The web page in a real browser (tests/web/): Debian's chromium driven by playwright-core
# (pinned in package-lock.json; no browser is downloaded), against the real stack.
# Screenshots and the QR images it decodes go to $(BUILD)/web-tests/.
web-test: all node_modules/.installed
	SHORTENER_BIN_DIR=$(abspath $(BINDIR)) WEB_TEST_OUT=$(abspath $(BUILD)/web-tests) \
		$(PYTEST) -q -p no:cacheprovider tests/web

# libFuzzer drivers (tests/fuzz/fuzz_NAME.c), each run briefly over its checked-in corpus
# (tests/fuzz/corpus/NAME) plus fresh inputs: FUZZ_TIME seconds each in make fuzz (part of
# make test). make fuzz-long runs each for FUZZ_SECONDS / (number of targets) seconds
# (FUZZ_SECONDS, default 3600, is the whole run's budget; FUZZ_TARGET_SECONDS sets one target's
# time instead) and lists every finding in build/fuzz/findings.txt.
FUZZ_TARGETS := request urlcheck kgs_proto clientip csv bodies idemkey rates cursor linkkey \
	linkentry import config stats uaclass xff6 peernet selfhost
FUZZ_TIME ?= 5
FUZZ_SECONDS ?= 3600
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Iinclude -Ilib -Isrc/server -Isrc/ctl \
	-Ibuild/release/gen -I/usr/include/postgresql -MMD -MP
FUZZ_SAN := address,undefined
# lib/ is compiled once for every target (instrumented, without libFuzzer's main).
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=build/fuzz/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

build/fuzz/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS)

# stats and uaclass #include the generated bot table (build/release/gen), so it is made first.
ifneq ($(BUILD),build/release)
build/release/gen/crawlers_data.c: node_modules/.installed deploy/gen-crawlers.py
	@mkdir -p $(dir $@)
	deploy/gen-crawlers.py patterns $(CRAWLERS_JSON) > $@.tmp && mv $@.tmp $@
endif
build/fuzz/fuzz_stats build/fuzz/fuzz_uaclass: build/release/gen/crawlers_data.c

fuzz-bins: $(FUZZ_BINS)

.SECONDARY: $(FUZZ_LIB_OBJS)

fuzz: fuzz-bins
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus_$$t; \
		if ! build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -max_len=4096 \
			-artifact_prefix=build/fuzz/crash_$$t- build/fuzz/corpus_$$t \
			tests/fuzz/corpus/$$t >build/fuzz/$$t.log 2>&1; then \
			tail -n 40 build/fuzz/$$t.log; echo "fuzz_$$t failed: see build/fuzz/$$t.log"; \
			exit 1; \
		fi; \
		echo "fuzz_$$t: $$(tail -n 1 build/fuzz/$$t.log)"; \
	done

# Runs every target even after one finds something (-fork keeps going past a crash), then
# lists the findings and fails when there are any.
fuzz-long: fuzz-bins
	@n=$(words $(FUZZ_TARGETS)); secs=$${FUZZ_TARGET_SECONDS:-$$(( $(FUZZ_SECONDS) / n ))}; \
	echo "fuzz-long: $$n targets, $$secs s each"; : > build/fuzz/findings.txt; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus_$$t build/fuzz/long_$$t; \
		build/fuzz/fuzz_$$t -max_total_time=$$secs -max_len=4096 -fork=1 -ignore_crashes=1 \
			-ignore_timeouts=1 -ignore_ooms=1 -artifact_prefix=build/fuzz/long_$$t/ \
			build/fuzz/corpus_$$t tests/fuzz/corpus/$$t >build/fuzz/long_$$t.log 2>&1; \
		found=$$(ls build/fuzz/long_$$t | wc -l); \
		echo "fuzz_$$t: $$found finding(s); $$(grep '^#' build/fuzz/long_$$t.log | tail -n 1)"; \
		for f in build/fuzz/long_$$t/*; do [ -e "$$f" ] && echo "$$t $$f" >> build/fuzz/findings.txt; done; \
	done; \
	if [ -s build/fuzz/findings.txt ]; then echo "findings:"; cat build/fuzz/findings.txt; exit 1; fi; \
	echo "fuzz-long: nothing found"

# The restore drill (deploy/backup/dr-drill.py; not part of make test): backups while links are
# created, the data directory destroyed, a restore to a noted time, every link checked.
# DRILL_LINKS (default 1000000), DRILL_PHASE_SECONDS (default 5).
dr-drill: all
	SHORTENER_BIN_DIR=$(abspath $(BINDIR)) /usr/bin/python3 deploy/backup/dr-drill.py

# Mixed traffic for SOAK_MINUTES (30) over SOAK_LINKS (1000000) links through two servers while
# a fault script restarts Redis, PostgreSQL and kgs and kills servers (tests/soak/soak.py; not
# part of make test). Reports availability, latency percentiles and lost or resurrected links.
soak: all
	SHORTENER_BIN_DIR=$(abspath $(BINDIR)) /usr/bin/python3 tests/soak/soak.py

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
