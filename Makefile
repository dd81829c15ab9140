# tickflow - one non-recursive Makefile.
#
#   make            build every binary into build/bin
#   make demo       set up, start everything, run one execution on marketsim
#   make test       set up, start PostgreSQL and Kafka, run every test
#   make SANITIZER=address,undefined test     the same under ASan + UBSan
#   make test-tsan  the same under ThreadSanitizer (build-thread/)
#   make down       stop PostgreSQL, Kafka and any service the demo started

CC       ?= cc
SANITIZER ?=
PKGS     := libmicrohttpd libcurl libcjson libpq rdkafka libcrypto uuid zlib libzstd

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CFLAGS   ?= -O2 -g
# -ffp-contract=off: no fused multiply-add, so gold's sums have the same
# bits on every compiler and processor.
# common/ is in layers (common/README.md); each layer's public headers are
# in common/<layer>/include/tf/. Internal headers sit beside their sources
# and are reached only by the files next to them.
LAYERS   := base codec io control runtime
CFLAGS   += -std=c11 -D_GNU_SOURCE -pthread -ffp-contract=off $(WARN) $(LAYERS:%=-Icommon/%/include) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null || echo -I/usr/include/postgresql)
ifeq ($(CI),true)
CFLAGS   += -Werror
endif
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -lcurl -lcjson -lpq -lrdkafka -lcrypto -luuid -lz -lzstd) -lm -pthread

# Header dependencies come from the compiler.
DEPFLAGS := -MMD -MP

# One build folder per sanitizer set: build/, build-address-undefined/,
# build-thread/. BUILD may be set to keep other builds side by side.
comma    := ,
ifneq ($(SANITIZER),)
BUILD    ?= build-$(subst $(comma),-,$(SANITIZER))
CFLAGS   += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -O1
ifneq ($(SANITIZER),thread)
CFLAGS   += -fno-sanitize-recover=all
else
# librdkafka's C11 threads and locks, through intercepted pthread calls
# (common/base/tsan_threads.c says why).
LDFLAGS  += -Wl,-u,thrd_create
endif
LDFLAGS  += -fsanitize=$(SANITIZER)
else
BUILD    ?= build
endif

COMMON_SRC := $(foreach l,$(LAYERS),$(wildcard common/$(l)/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/migrations.o
LIBTF      := $(BUILD)/lib/libtf.a
SERVICES   := extract transform aggregate marketsim
BINS       := $(SERVICES:%=$(BUILD)/bin/tickflow-%)
# Each service is a library (everything but its main.c) that tests link.
SVC_LIBS   := $(SERVICES:%=$(BUILD)/lib/libtf-%.a)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
E2E_SRC    := $(wildcard tests/e2e/test_*.c)
E2E_BINS   := $(E2E_SRC:tests/e2e/%.c=$(BUILD)/tests/%)
INT_SRC    := $(wildcard tests/integration/test_*.c)
INT_BINS   := $(INT_SRC:tests/integration/%.c=$(BUILD)/tests/%)
HARNESS_SRC := $(wildcard tests/harness/*.c)
HARNESS_OBJ := $(HARNESS_SRC:%.c=$(BUILD)/obj/%.o)
# tickflowctl, the command line (cli/tickflowctl/), on the common library.
CTL_SRC    := $(wildcard cli/tickflowctl/*.c)
CTL_BIN    := $(BUILD)/bin/tickflowctl

# Keep objects of test binaries between runs (only those: an object that
# goes missing elsewhere is always rebuilt).
TEST_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRC) $(INT_SRC) $(E2E_SRC) $(wildcard bench/*.c))
.SECONDARY: $(TEST_OBJ)

.PHONY: FORCE fuzz fuzz-bins all deps test-chaos env-up env-down down demo test test-tsan test-unit test-integration test-e2e test-airflow check-deploy bench bench-extract bench-load bench-e2e bench-backfill bench-status bench-console clean lint format format-check
.DEFAULT_GOAL := all

all: $(BINS) $(CTL_BIN)

# Test and benchmark sources also see the harness and the services'
# headers ("transform/transform.h").
$(BUILD)/obj/tests/%.o: CFLAGS += -Itests/harness -Iservices
$(BUILD)/obj/bench/%.o: CFLAGS += -Itests/harness -Iservices

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Regenerated on every run, replaced only when its text changes: a
# migration edited, added or removed is always compiled in.
$(BUILD)/gen/migrations.c: tools/embed-sql.sh FORCE
	@mkdir -p $(dir $@)
	@sh tools/embed-sql.sh $(sort $(wildcard deploy/sql/*.sql)) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "migrations: $@"; fi

FORCE:

$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c common/io/include/tf/migrations.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The web console (services/extract/ui/) and TradingView's lightweight-charts,
# compiled into extract; tools/fetch-ui-deps.sh fetches the library once, at
# a pinned version checked against its sha512, into ~/.cache/tickflow.
# Regenerated on every run, replaced only when its text changes.
$(BUILD)/gen/ui_assets.c: tools/embed-ui.sh tools/fetch-ui-deps.sh FORCE
	@mkdir -p $(dir $@)
	@vendor=$$(sh tools/fetch-ui-deps.sh) && sh tools/embed-ui.sh services/extract/ui "$$vendor" > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "ui assets: $@"; fi

$(BUILD)/obj/gen/ui_assets.o: $(BUILD)/gen/ui_assets.c services/extract/console.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iservices/extract -c -o $@ $<

$(BUILD)/lib/libtf-extract.a: $(BUILD)/obj/gen/ui_assets.o

$(LIBTF): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

define service_rule
$(BUILD)/lib/libtf-$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && $$(AR) rcs $$@ $$^

$(BUILD)/bin/tickflow-$(1): $(BUILD)/obj/services/$(1)/main.o $(BUILD)/lib/libtf-$(1).a $(LIBTF)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

$(CTL_BIN): $(CTL_SRC:%.c=$(BUILD)/obj/%.o) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every test links the services' libraries and the common library; the
# linker takes only the objects a test uses.
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_int_%: $(BUILD)/obj/tests/integration/test_int_%.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_e2e_%: $(BUILD)/obj/tests/e2e/test_e2e_%.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The chaos suite (tests/chaos/test_chaos.c), outside tests/ so that the
# unit loop of tests/run.sh does not take it for one of its own.
CHAOS_BIN := $(BUILD)/chaos/test_chaos
$(CHAOS_BIN): $(BUILD)/obj/tests/chaos/test_chaos.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer harnesses (tests/fuzz/), built by tests/fuzz/run.sh with clang
# into build-fuzz/ (SANITIZER=fuzzer-no-link,address,undefined).
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
fuzz-bins: $(FUZZ_BINS)
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)
# fuzz_parquet reads back what it writes with the test reader.
$(BUILD)/fuzz/fuzz_parquet: $(BUILD)/obj/tests/harness/pq_read.o

# The stack the browser tests drive (tests/browser/stack.c).
BROWSER_STACK := $(BUILD)/tests/browser_stack
$(BROWSER_STACK): $(BUILD)/obj/tests/browser/stack.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The stack the Airflow tests drive (tests/airflow/stack.c).
AIRFLOW_STACK := $(BUILD)/tests/airflow_stack
$(AIRFLOW_STACK): $(BUILD)/obj/tests/airflow/stack.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/bench_%: $(BUILD)/obj/bench/bench_%.o $(HARNESS_OBJ) $(SVC_LIBS) $(LIBTF)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@bash tests/env/deps.sh

env-up: deps
	@bash tests/env/up.sh

env-down down:
	@bash tools/demo.sh stop 2>/dev/null || true
	@bash tests/env/down.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash tests/env/up.sh >/dev/null
	@bash tools/demo.sh run

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(INT_BINS) $(E2E_BINS) $(BROWSER_STACK) $(AIRFLOW_STACK) $(CHAOS_BIN)
	@bash tests/env/up.sh >/dev/null
	@BUILD=$(BUILD) bash tests/run.sh

# The whole suite under ThreadSanitizer: the services' HTTP, worker,
# consumer, sweeper, heartbeat and lake threads, in build-thread/.
test-tsan:
	@$(MAKE) --no-print-directory SANITIZER=thread test

test-unit: $(UNIT_BINS)
	@BUILD=$(BUILD) bash tests/run.sh unit

test-integration: $(INT_BINS)
	@bash tests/env/up.sh >/dev/null
	@BUILD=$(BUILD) bash tests/run.sh integration

test-e2e: all $(E2E_BINS) $(BROWSER_STACK)
	@bash tests/env/up.sh >/dev/null
	@BUILD=$(BUILD) bash tests/run.sh e2e

# schemathesis (pinned, in a venv under ~/.cache/tickflow) against each
# service's /openapi.json on a running stack with a token (tests/contract/run.sh).
.PHONY: test-contract
test-contract: deps
	@$(MAKE) --no-print-directory all $(AIRFLOW_STACK)
	@bash tests/env/up.sh >/dev/null
	@BUILD=$(BUILD) bash tests/run.sh contract

# Apache Airflow 3 (pinned, in a venv under ~/.cache/tickflow) running the
# DAGs of deploy/airflow/dags against a real stack (tests/airflow/run.sh).
test-airflow: deps
	@$(MAKE) --no-print-directory all $(AIRFLOW_STACK)
	@bash tests/env/up.sh >/dev/null
	@BUILD=$(BUILD) bash tests/run.sh airflow

# The chaos suite alone: CHAOS_TRIALS seeded trials (make test runs 30),
# from seed CHAOS_SEED (tests/chaos/test_chaos.c says how to replay one).
test-chaos: deps
	@$(MAKE) --no-print-directory all $(CHAOS_BIN)
	@bash tests/env/up.sh >/dev/null
	@BUILD=$(BUILD) TF_CHAOS_TRIALS=$(or $(CHAOS_TRIALS),200) TF_CHAOS_SEED=$(or $(CHAOS_SEED),1) \
		bash tests/run.sh chaos

# Benchmarks: figures against their limit, measured side by side in one run.
bench: bench-extract bench-load bench-e2e bench-backfill bench-status bench-console

# Each libFuzzer harness for FUZZ_SECONDS (default 600) from its committed
# corpus, under ASan and UBSan; executions and coverage per harness.
fuzz: deps
	@bash tests/fuzz/run.sh --seconds $(or $(FUZZ_SECONDS),600)

# bench_rule(target, program, arguments): builds the program and the
# services, starts PostgreSQL and Kafka, runs it.
define bench_rule
$(1): deps
	@$$(MAKE) --no-print-directory all $$(BUILD)/bench/$(2)
	@bash tests/env/up.sh >/dev/null
	@. .run/env.sh && TF_BIN_DIR=$$(BUILD)/bin $$(BUILD)/bench/$(2) $(3)
endef
$(eval $(call bench_rule,bench-extract,bench_extract,))
$(eval $(call bench_rule,bench-load,bench_load,))
# A whole run as a user meets it (bench/bench_e2e.c says what each measures),
# with the lake in a folder and in a bucket (SeaweedFS, tests/env/seaweedfs.sh).
bench-e2e: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/bench_e2e
	@bash tests/env/up.sh >/dev/null
	@bash tests/env/seaweedfs.sh up >/dev/null
	@. .run/env.sh && . .run/s3.env && TF_BIN_DIR=$(BUILD)/bin $(BUILD)/bench/bench_e2e
$(eval $(call bench_rule,bench-backfill,bench_e2e,backfill))
# The status read of a 500-ticker execution under wrk (bench/bench_status.c).
$(eval $(call bench_rule,bench-status,bench_status,))
# GET /v1/runs and GET /ui/ with 10,000 executions (bench/bench_console.c).
$(eval $(call bench_rule,bench-console,bench_console,))

check-deploy:
	@python3 tests/deploy/check_deploy.py

C_FILES := $(wildcard common/*/*.c common/*/*.h common/*/include/tf/*.h services/*/*.c services/*/*.h \
             cli/*/*.c cli/*/*.h \
             tests/unit/*.c tests/integration/*.c tests/e2e/*.c tests/chaos/*.c tests/fuzz/*.c tests/browser/*.c tests/airflow/*.c bench/*.c \
             tests/harness/*.c tests/harness/*.h)

format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run --Werror $(C_FILES)

lint:
	@! grep -nE '\b(gets|strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol)\s*\(' common/*/*.c common/*/include/tf/*.h services/*/*.c cli/*/*.c || (echo "lint: banned function" && false)

clean:
	rm -rf build build-*/
