# Countersign -- one GNU Makefile for the C core, its tests and its docs.
#
#   make                 build every binary into build/
#   make run             start Postgres, Kafka and every process locally
#   make test            every test (style, docs, unit under ASan/UBSan and
#                        valgrind, integration on real Postgres and Kafka, SDKs,
#                        the concurrency tests under TSan)
#   make tsan            ThreadSanitizer build (build/thread) and its tests
#   make SANITIZER=address,undefined   build into build/address-undefined/
#   make help            list the targets
#
# Sources are listed explicitly; unit tests are discovered (tests/unit/test_*.c).

CC ?= cc
SANITIZER ?=
TEST_SANITIZER ?= address,undefined
PYTHON ?= python3

comma := ,
ifeq ($(V),1)
Q :=
else
Q := @
endif
ifeq ($(SANITIZER),)
BUILD ?= build
SAN_FLAGS :=
else
BUILD ?= build/$(subst $(comma),-,$(SANITIZER))
SAN_FLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKGS := rdkafka libcurl json-c libpq libcrypto libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's libpq-dev puts libpq-fe.h in /usr/include/postgresql.
PG_INC := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes -Wshadow -Wvla \
        -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) -MMD -MP \
              -Iinclude -I$(BUILD)/gen -I$(PG_INC) $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) -lpthread -lm
ALL_LDFLAGS := $(SAN_FLAGS) $(LDFLAGS)

# ---- sources ---------------------------------------------------------------

LIB_SRCS := \
	lib/cs_err.c lib/cs_mem.c lib/cs_buf.c lib/cs_log.c lib/cs_config.c \
	lib/cs_crypto.c lib/cs_json.c lib/cs_map.c lib/cs_db.c lib/cs_link.c lib/cs_url.c \
	lib/cs_ident.c lib/cs_request.c lib/cs_policy.c lib/cs_catalog.c lib/cs_approval.c lib/cs_approval_read.c \
	lib/cs_batch.c \
	lib/cs_audit.c lib/cs_admin.c lib/cs_kafka.c lib/cs_process.c lib/cs_time.c lib/cs_metrics.c \
	lib/cs_idtoken.c lib/cs_oidc.c \
	lib/cs_session.c lib/cs_webauthn.c lib/cs_passkey.c lib/cs_leader.c lib/cs_envsig.c lib/cs_msgfit.c \
	lib/cs_events.c lib/cs_wal.c lib/cs_eventrec.c
GEN_SRCS := $(BUILD)/gen/cs_sql_gen.c
WORKER_SRCS := worker/main.c worker/ingest.c worker/signature.c worker/dead_letters.c worker/executor.c worker/call.c worker/verdict.c worker/notifier.c worker/relay.c \
	worker/metrics.c
SCHEDULER_SRCS := scheduler/main.c scheduler/duty.c scheduler/expirer.c \
	scheduler/rescuer.c scheduler/reminder.c scheduler/escalator.c scheduler/finisher.c \
	scheduler/sealer.c scheduler/retention.c
CLI_SRCS := cli/main.c cli/args.c cli/admin.c cli/approvals.c
API_SRCS := api/main.c api/router.c api/reply.c api/pool.c api/waiters.c api/agent.c api/pages.c api/session.c api/signin.c \
	api/passkeys.c \
	api/batch_pages.c api/html.c api/csrf.c api/form.c api/admin.c api/metrics.c \
	api/console.c api/console_overview.c api/console_approvals.c api/console_catalog.c \
	api/console_audit.c

# ThreadSanitizer here (GCC 12, LLVM 14) does not intercept C11 threads, which
# librdkafka starts and locks with: the TSan binaries link a shim that runs them
# on the pthread calls TSan sees (see the file).
ifneq ($(filter thread,$(subst $(comma), ,$(SANITIZER))),)
WORKER_SRCS += tests/tsan_c11threads.c
SCHEDULER_SRCS += tests/tsan_c11threads.c
CLI_SRCS += tests/tsan_c11threads.c
API_SRCS += tests/tsan_c11threads.c
endif

QUERY_FILES := $(sort $(wildcard sql/queries/*.sql))
MIGRATION_FILES := $(sort $(wildcard sql/migrations/*.sql))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJS := $(call obj,$(LIB_SRCS)) $(BUILD)/obj/gen/cs_sql_gen.o

BINS := $(BUILD)/countersign $(BUILD)/countersign-worker $(BUILD)/countersign-scheduler \
	$(BUILD)/countersign-api

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: deps fuzz bench bench-quick all run test check unit valgrind integration tsan check-style format docs docs-check help clean \
        sdk-python sdk-typescript sdk-lint fuzz bench

all: $(BINS) client ## Build every binary, the C client library and the examples into $(BUILD)/

# ---- generated SQL ---------------------------------------------------------

# The header (query names) is rewritten only when it changes, so editing a
# statement's text recompiles cs_sql_gen.c alone, not every file that names a query.
$(BUILD)/gen/cs_sql_gen.h: tools/sqlgen.awk $(QUERY_FILES)
	@mkdir -p $(@D)
	$(Q)awk -v mode=header -f tools/sqlgen.awk $(QUERY_FILES) > $@.tmp && \
	  { cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@; }

$(BUILD)/gen/cs_sql_gen.c: tools/sqlgen.awk $(QUERY_FILES) $(MIGRATION_FILES) $(BUILD)/gen/cs_sql_gen.h
	@mkdir -p $(@D)
	$(Q)awk -v mode=source -f tools/sqlgen.awk $(QUERY_FILES) $(MIGRATION_FILES) > $@.tmp && mv $@.tmp $@

# ---- compile and link ------------------------------------------------------

$(BUILD)/obj/%.o: %.c $(BUILD)/gen/cs_sql_gen.h
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libcountersign.a: $(LIB_OBJS)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(BUILD)/countersign-worker: $(call obj,$(WORKER_SRCS)) $(BUILD)/libcountersign.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/countersign-scheduler: $(call obj,$(SCHEDULER_SRCS)) $(BUILD)/libcountersign.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gen/api_openapi.c: api/openapi.json tools/embed.awk
	@mkdir -p $(@D)
	$(Q)awk -v name=api_openapi_json -f tools/embed.awk api/openapi.json > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/api_passkey.c: api/passkey.js tools/embed.awk
	@mkdir -p $(@D)
	$(Q)awk -v name=api_passkey_js -f tools/embed.awk api/passkey.js > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/api_console.c: api/console.js tools/embed.awk
	@mkdir -p $(@D)
	$(Q)awk -v name=api_console_js -f tools/embed.awk api/console.js > $@.tmp && mv $@.tmp $@

$(BUILD)/countersign-api: $(call obj,$(API_SRCS)) $(BUILD)/obj/gen/api_openapi.o $(BUILD)/obj/gen/api_passkey.o $(BUILD)/obj/gen/api_console.o $(BUILD)/libcountersign.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/countersign: $(call obj,$(CLI_SRCS)) $(BUILD)/libcountersign.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/cs_test.h $(BUILD)/libcountersign.a
	@mkdir -p $(@D)
	@echo "  CC LD   $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libcountersign.a $(LDLIBS)

include client/client.mk

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)

# ---- run and test ----------------------------------------------------------

deps: ## Install what is missing (Debian packages, Python test packages, Kafka jars); idempotent
	bash .ci/install-deps.sh

run: deps ## Install what is missing, start Postgres, Kafka, api, worker and scheduler; prints where to go
	$(MAKE) all
	tools/run-local.sh $(BUILD)

unit: $(UNIT_BINS) ## Run the unit tests (with SANITIZER=... for sanitizers)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

valgrind: ## Run the unit tests under valgrind (leaks are errors)
	$(MAKE) SANITIZER= BUILD=build/valgrind CFLAGS="-O0 -g" $(patsubst $(BUILD)/%,build/valgrind/%,$(UNIT_BINS))
	@set -e; for t in $(patsubst $(BUILD)/%,build/valgrind/%,$(UNIT_BINS)); do \
	  echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    --suppressions=tests/valgrind.supp $$t >/dev/null; done

# The suites run in TEST_JOBS pytest-xdist workers sharing one Postgres and one Kafka
# (tests/conftest.py says how tests are spread); TEST_JOBS=0 runs them in one process.
# Most of a test's time is spent waiting on its processes, so more workers than cores help.
TEST_JOBS ?= 4

integration: all ## Integration, security and fault suites: real binaries, Postgres, Kafka (TEST_JOBS workers)
	CS_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	  -n $(TEST_JOBS) --dist loadfile \
	  tests/integration $(wildcard tests/security) $(wildcard tests/fault)

# The tests with the most threads at once: many workers, kills, SIGTERM, broker and
# Postgres outages (every worker thread reconnects), and the api's HTTP threads
# with its long-poll waiter thread. Reports fail the test (harness.py), with
# library-only suppressions in tests/tsan.supp.
TSAN_TESTS ?= tests/integration/test_concurrency.py \
	tests/integration/test_api.py::test_many_waiters_are_woken \
	tests/integration/test_api.py::test_no_approval_needed_returns_result_inline \
	tests/integration/test_api.py::test_idempotency_key_returns_the_first_answer \
	tests/integration/test_api.py::test_health_ready_metrics

tsan: ## ThreadSanitizer: build into build/thread, run the concurrency tests on its worker and api
	$(MAKE) SANITIZER=thread BUILD=build/thread all
	CS_BUILD_DIR=$(abspath build/thread) $(PYTHON) -m pytest -q -p no:cacheprovider $(TSAN_TESTS)

sdk-python: ## Python SDK: unit tests and strict type check
	$(PYTHON) -m pytest -q sdk/python/tests
	cd sdk/python && $(PYTHON) -m mypy

sdk-typescript: ## TypeScript SDK: install (lockfile), build, unit and README tests
	cd sdk/typescript && npm ci --no-audit --no-fund && npm run build && npm test

sdk-lint: ## SDK linters: ruff (sdk/python); tsc --strict --noEmit and ESLint (sdk/typescript, after its npm ci)
	cd sdk/python && $(PYTHON) -m ruff check .
	cd sdk/typescript && npm run lint

test: ## Install what is missing, then every test: style, docs, unit (ASan/UBSan + valgrind), fuzz smoke, SDKs, integration under ASan/UBSan, concurrency under TSan
	$(MAKE) deps
	$(MAKE) check-style
	tools/test-sqlgen.sh
	$(MAKE) docs-check
	$(MAKE) SANITIZER=$(TEST_SANITIZER) unit
	$(MAKE) valgrind
	$(MAKE) fuzz
	$(MAKE) sdk-python
	$(MAKE) sdk-typescript
	$(MAKE) sdk-lint
	$(MAKE) SANITIZER=$(TEST_SANITIZER) integration
	$(MAKE) tsan

fuzz: ## libFuzzer smoke run of every parser target, with the regression inputs (tests/fuzz)
	$(MAKE) -C tests/fuzz smoke

bench: ## Benchmark table with River and pgbench beside ours (bench/run; ~30 min)
	bench/run

bench-quick: ## The benchmark scaled down (~3 min): proves the harness end to end
	bench/run --quick

check: ## The fast inner loop: style, generated docs, ruff on the Python SDK, the unit tests (no installs, no services)
	$(MAKE) check-style
	tools/test-sqlgen.sh
	$(MAKE) docs-check
	python3 tests/integration/test_sdk_retries.py
	cd sdk/python && $(PYTHON) -m ruff check .
	$(MAKE) unit

check-style: ## Banned functions, file headers, sizes, clang-format (.clang-format)
	tools/check-style.sh
	tools/format.sh --check

format: ## Format the C sources with clang-format (.clang-format); tools/format.sh --check only checks
	tools/format.sh

docs: $(BUILD)/countersign ## Regenerate docs/CONFIGURATION.md and docs/ERRORS.md
	$(BUILD)/countersign docs config > docs/CONFIGURATION.md
	$(BUILD)/countersign docs errors > docs/ERRORS.md

docs-check: $(BUILD)/countersign ## Fail when generated docs are stale
	@$(BUILD)/countersign docs config | diff -u docs/CONFIGURATION.md - \
	  || { echo "docs/CONFIGURATION.md is stale: run make docs"; exit 1; }
	@$(BUILD)/countersign docs errors | diff -u docs/ERRORS.md - \
	  || { echo "docs/ERRORS.md is stale: run make docs"; exit 1; }

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

clean: ## Remove build/
	rm -rf build
