# Build for kuma-cp, kumactl and the test suite.
#   make                 release-ish build into build/
#   make SANITIZE=1      ASan+UBSan build into build-asan/ (what CI tests)
#   make test            unit tests + integration tests
#   make fuzz            libFuzzer harnesses (clang)

# `make` alone builds everything (the generated-proto rules come first below).
.DEFAULT_GOAL := all

CC       ?= cc
PKGS     := jansson yaml-0.1 sqlite3 openssl libmicrohttpd libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lpthread -lm
# xDS: the ADS server's gRPC transport by hand over libnghttp2 + OpenSSL
# (src/xds/transport.c) and protobuf-c (only kuma-cp and the unit tests).
XDS_PKGS   := libnghttp2 libprotobuf-c
XDS_CFLAGS := $(shell pkg-config --cflags $(XDS_PKGS))
XDS_LIBS   := $(shell pkg-config --libs $(XDS_PKGS))
# kuma-dp's ADS client: gRPC framing by hand over libnghttp2 + OpenSSL
# (no gRPC core: its libraries cost a proxy ~11 MB RSS, docs/BENCHMARKS.md).
DP_XDS_PKGS   := libnghttp2 libprotobuf-c
DP_XDS_CFLAGS := $(shell pkg-config --cflags $(DP_XDS_PKGS))
DP_XDS_LIBS   := $(shell pkg-config --libs $(DP_XDS_PKGS))

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wno-unused-parameter -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -fno-omit-frame-pointer -Isrc -Itests/unit $(PKG_CFLAGS)
ifeq ($(WERROR),1)
CFLAGS   += -Werror
endif

ifeq ($(SANITIZE),1)
B        := build-asan
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=undefined -O1
LDFLAGS  += -fsanitize=address,undefined
else
B        := build
CFLAGS   += -D_FORTIFY_SOURCE=2 -fstack-protector-strong
LDFLAGS  += -Wl,-z,relro,-z,now
endif

CORE_SRC := $(wildcard src/core/*.c src/store/*.c src/mesh/*.c)
CORE_SRC += $(wildcard src/ca/*.c)
API_SRC  := $(wildcard src/api/*.c)
CTL_SRC  := $(wildcard src/ctl/*.c)
DP_SRC   := $(wildcard src/dp/*.c)
TEST_SRC := $(wildcard tests/unit/*.c tests/unit/*/*.c)
XDS_SRC  := $(wildcard src/xds/*.c)

# Envoy v3 message types: C code generated at build time by protoc-c from the
# subset protos in src/proto (same packages, names and field numbers as
# Envoy's; see docs/xds.md) into $(B)/gen.
PROTO_FILES := $(sort $(patsubst src/proto/%,%,$(shell find src/proto -name '*.proto')))
PROTO_C     := $(patsubst %.proto,$(B)/gen/%.pb-c.c,$(PROTO_FILES))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

$(B)/gen/.stamp: $(addprefix src/proto/,$(PROTO_FILES))
	@rm -rf $(B)/gen; mkdir -p $(B)/gen
	cd src/proto && protoc-c --c_out=$(CURDIR)/$(B)/gen $(PROTO_FILES)
	@touch $@
$(PROTO_C): $(B)/gen/.stamp ;
# Everything that includes generated headers is rebuilt when they are (a normal,
# not order-only, prerequisite: make may have looked at the old headers already).
$(call obj,$(XDS_SRC) $(TEST_SRC) src/cmd/kuma-cp.c): $(B)/gen/.stamp
$(call obj,$(XDS_SRC) $(TEST_SRC) src/cmd/kuma-cp.c $(PROTO_C)): CFLAGS += -I$(B)/gen $(XDS_CFLAGS)

all: $(B)/kuma-cp $(B)/kumactl $(B)/kuma-dp $(B)/dptool $(B)/bench-xds-fleet

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/libcore.a: $(call obj,$(CORE_SRC))
	@rm -f $@; ar rcs $@ $^
$(B)/libapi.a: $(call obj,$(API_SRC))
	@rm -f $@; ar rcs $@ $^
$(B)/libctl.a: $(call obj,$(CTL_SRC))
	@rm -f $@; ar rcs $@ $^
$(B)/libxds.a: $(call obj,$(XDS_SRC) $(PROTO_C))
	@rm -f $@; ar rcs $@ $^

# kuma-dp: the proxy engine (src/dp) as libdp.a.
$(B)/libdp.a: $(call obj,$(DP_SRC))
	@rm -f $@; ar rcs $@ $^
# dpxds: kuma-dp's xDS client (src/dp/xds_*.c) decodes with the generated
# Envoy types (libproto.a) over HTTP/2 (libnghttp2) + OpenSSL, without gRPC
# core; it reuses kumactl's mustache renderer for --dataplane-var.
DP_XDS_SRC := $(wildcard src/dp/xds_*.c)
$(call obj,$(DP_XDS_SRC)): $(B)/gen/.stamp
$(call obj,$(DP_XDS_SRC)): CFLAGS += -I$(B)/gen $(DP_XDS_CFLAGS)
$(B)/libproto.a: $(call obj,$(PROTO_C))
	@rm -f $@; ar rcs $@ $^
# kuma-dp links only what it uses (no libmicrohttpd, libcurl, SQLite or libpq:
# every library mapped costs each proxy resident pages, docs/BENCHMARKS.md).
# The sanitizer build links them dynamically. The release build links them
# statically, with lld, and places the code a running proxy executes
# together (src/cmd/kuma-dp.order, made by bench/dp/order.sh): the kernel
# maps file pages 64 KB at a time around each one touched, so scattered hot
# functions made nearly all of libcrypto resident in every proxy. Unused
# sections are dropped (--gc-sections). glibc stays dynamic (NSS, and it is
# shared with every other process anyway).
DP_PKGS := jansson yaml-0.1 openssl
DP_LIBS := $(shell pkg-config --libs $(DP_PKGS)) -lhttp_parser -lpthread -lm $(DP_XDS_LIBS)
DP_ORDER := src/cmd/kuma-dp.order
ifeq ($(SANITIZE),1)
DP_LINK := -Wl,--as-needed $(DP_LIBS)
else
CFLAGS  += -ffunction-sections -fdata-sections
DP_LINK := -fuse-ld=lld -Wl,--gc-sections -Wl,--symbol-ordering-file=$(DP_ORDER) \
           -Wl,--no-warn-symbol-ordering \
           -Wl,-Bstatic -ljansson -lyaml -lssl -lcrypto -lhttp_parser -lnghttp2 -lprotobuf-c \
           -Wl,-Bdynamic -lpthread -lm -ldl
endif
$(B)/kuma-dp: $(call obj,src/cmd/kuma-dp.c src/ctl/mustache.c) $(B)/libdp.a $(B)/libproto.a $(B)/libcore.a $(DP_ORDER)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(DP_ORDER),$^) $(DP_LINK)
# The proxy benchmarks (bench/dp/run.sh) link as kuma-dp does.
$(B)/dp_bench $(B)/tls_bench: $(B)/%: $(call obj,bench/dp/%.c) $(B)/libdp.a $(B)/libcore.a $(DP_ORDER)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(DP_ORDER),$^) $(DP_LINK)
# dptool: echo/identity workloads and load clients for tests/integration/test_dp_*.sh.
$(B)/dptool: $(call obj,tests/tools/dptool.c) $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/kuma-cp: $(call obj,src/cmd/kuma-cp.c) $(B)/libapi.a $(B)/libxds.a $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(XDS_LIBS)
$(B)/kumactl: $(call obj,src/cmd/kumactl.c) $(B)/libctl.a $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(B)/unit-tests: $(call obj,$(TEST_SRC)) $(B)/libapi.a $(B)/libctl.a $(B)/libxds.a $(B)/libdp.a $(B)/libproto.a $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(XDS_LIBS) $(DP_XDS_LIBS)

unit: $(B)/unit-tests
	$(B)/unit-tests

integration: all
	BIN=$(CURDIR)/$(B) bash tests/integration/run.sh

test: unit integration

# The proxy engine's tests: unit tests and the kuma-dp CLI scenario.
dp-test: $(B)/unit-tests $(B)/kuma-dp
	$(B)/unit-tests dp
	BIN=$(CURDIR)/$(B) bash tests/dp/test_kuma_dp_cli.sh

FUZZ_FLAGS := -std=gnu11 -g -O1 -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined
build-fuzz/%: tests/fuzz/%.c $(CORE_SRC)
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)
# The HTTP request path (src/dp/http.c and the model builders it uses).
build-fuzz/fuzz_http: tests/fuzz/fuzz_http.c src/dp/http.c src/dp/model.c $(CORE_SRC)
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)
# kuma-dp's tls_inspector needs only its own file.
build-fuzz/fuzz_sniff: tests/fuzz/fuzz_sniff.c src/dp/sniff.c
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $^
# kuma-dp's gRPC message deframer (the ADS response stream).
build-fuzz/fuzz_grpcframe: tests/fuzz/fuzz_grpcframe.c src/core/grpcframe.c src/core/util.c
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)
# The admin endpoint's request-target decoding (path escapes, query arguments).
build-fuzz/fuzz_admin_query: tests/fuzz/fuzz_admin_query.c src/dp/admin_query.c src/core/util.c
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)
fuzz: build-fuzz/fuzz_resource build-fuzz/fuzz_http build-fuzz/fuzz_sniff build-fuzz/fuzz_grpcframe \
      build-fuzz/fuzz_admin_query

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all unit integration test dp-test fuzz format clean
-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Benchmarks (see docs/BENCHMARKS.md).
build/bench-store: bench/bench_store.c build/libcore.a
	$(CC) -std=gnu11 -O2 -Isrc $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS)
bench-store: build/bench-store
	build/bench-store /var/tmp/bench-store.db 5000 4
.PHONY: bench-store

# Workload-certificate issuance benchmark (bench/ca/); results in docs/BENCHMARKS.md.
$(B)/bench-ca: $(call obj,bench/ca/bench_ca.c) $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
bench-ca: $(B)/bench-ca
	bash bench/ca/run.sh $(B)/bench-ca
.PHONY: bench-ca

# xDS generation benchmark (bench/xds/gen_bench.c): snapshot + generation of a fleet, no network.
$(B)/bench-xds-gen: $(call obj,bench/xds/gen_bench.c) $(B)/libxds.a $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(XDS_LIBS)
$(call obj,bench/xds/gen_bench.c): CFLAGS += -I$(B)/gen $(XDS_CFLAGS)
$(call obj,bench/xds/gen_bench.c): $(B)/gen/.stamp
.PHONY: bench-xds-gen
bench-xds-gen: $(B)/bench-xds-gen
	$(B)/bench-xds-gen 10000 1000 1

# xDS fleet benchmark client in C (bench/xds/fleet.c): one TLS connection per
# simulated dataplane, gRPC by hand over libnghttp2 + OpenSSL + epoll (no gRPC
# core, as kuma-dp); `make bench-xds` runs the whole benchmark with it.
$(B)/bench-xds-fleet: $(call obj,bench/xds/fleet.c bench/xds/fleet_tls.c) $(B)/libproto.a $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(DP_XDS_LIBS)
$(call obj,bench/xds/fleet.c): CFLAGS += -I$(B)/gen $(DP_XDS_CFLAGS)
$(call obj,bench/xds/fleet.c): $(B)/gen/.stamp
bench-xds-fleet: $(B)/bench-xds-fleet
# One TLS handshake's CPU on each side of the xDS cold start (kuma-cp's
# DP-server context against the fleet's client), no sockets.
$(B)/bench-xds-hs: $(call obj,bench/xds/hs_bench.c bench/xds/fleet_tls.c) $(B)/libxds.a $(B)/libcore.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(XDS_LIBS)
bench-xds-hs: $(B)/bench-xds-hs
	$(B)/bench-xds-hs 2000 5
bench-xds: all $(B)/bench-xds-fleet
	N=$${N:-10000} FLEET=c BIN=$(CURDIR)/$(B) bash bench/xds/run.sh
.PHONY: bench-xds-fleet bench-xds bench-xds-hs
