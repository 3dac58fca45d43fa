# Portico: `make run` (quick start) and `make test` (every test) on a fresh Debian 12 machine.
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
BUILD_TYPE ?= release
# (Re)configures build/release when it is missing or predates the profile-guided preset.
configure_release = @grep -qs '^PORTICO_PGO:STRING=use' build/release/CMakeCache.txt || cmake --preset release

.PHONY: all deps build pgo run test unit e2e test-ha test-asan bench micro-bench fuzz format clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps build/pgo/trained
	$(configure_release)
	cmake --build build/release -j$(JOBS)

# The release build is profile-guided (ADR 0021): its profile is trained once per build tree,
# before the first release build; `make pgo` trains it again (after changes to the request path).
build/pgo/trained: | deps
	JOBS=$(JOBS) ./scripts/pgo-train.sh

# Ninja does not see the profile as an input of each object: the new counts need a clean build.
pgo: deps
	JOBS=$(JOBS) ./scripts/pgo-train.sh
	$(configure_release)
	cmake --build build/release -j$(JOBS) --clean-first

run: build
	./scripts/run-quickstart.sh

unit: build
	ctest --test-dir build/release --output-on-failure --timeout 300 -j$(JOBS)

# Each test is bounded (conftest.py); the whole run too, well past its ~5 minutes, so that a
# stuck run ends with pytest's summary (SIGINT) long before CI's limit.
e2e: build test/oidc/node_modules test/dashboard/node_modules
	PORTICO_BIN=$(CURDIR)/build/release/portico timeout -s INT -k 60 40m \
		$(PYTHON) -m pytest -q -p no:cacheprovider test/e2e

test: unit e2e

# The cluster tests alone (real etcd members, several nodes, faults under load, config
# releases, the deploy/ files); `e2e` runs them too.
test-ha: build
	PORTICO_BIN=$(CURDIR)/build/release/portico $(PYTHON) -m pytest -q -p no:cacheprovider \
		test/e2e/test_cluster.py test/e2e/test_releases.py test/e2e/test_deploy.py

# The OpenID Connect provider the jwt tests run (npm oidc-provider, pinned in package-lock.json).
test/oidc/node_modules: test/oidc/package-lock.json
	cd test/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Drives the dashboard in Debian's chromium (npm playwright-core, no browser download).
test/dashboard/node_modules: test/dashboard/package-lock.json
	cd test/dashboard && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-asan: deps test/oidc/node_modules test/dashboard/node_modules
	@test -f build/asan/build.ninja || cmake --preset asan
	cmake --build build/asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/asan --output-on-failure -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 PORTICO_BIN=$(CURDIR)/build/asan/portico PORTICO_SLOW=1 \
		$(PYTHON) -m pytest -q -p no:cacheprovider test/e2e -m "not heavy"

bench: build
	./bench/run.sh

micro-bench: build
	./build/release/bench/micro/portico_micro_bench

fuzz: deps
	@test -f build/fuzz/build.ninja || cmake --preset fuzz
	cmake --build build/fuzz -j$(JOBS)
	mkdir -p build/fuzz/corpus && cp -n test/fuzz/corpus/* build/fuzz/corpus/
	./build/fuzz/test/fuzz/http_request_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus
	mkdir -p build/fuzz/corpus-h2
	./build/fuzz/test/fuzz/http2_server_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-h2
	mkdir -p build/fuzz/corpus-h2c
	./build/fuzz/test/fuzz/http2_client_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-h2c
	mkdir -p build/fuzz/corpus-json
	./build/fuzz/test/fuzz/json_transform_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-json
	mkdir -p build/fuzz/corpus-xml
	./build/fuzz/test/fuzz/xml_form_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-xml
	mkdir -p build/fuzz/corpus-cache
	./build/fuzz/test/fuzz/cache_paths_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-cache
	mkdir -p build/fuzz/corpus-schema && cp -n test/fuzz/corpus/schema-* build/fuzz/corpus-schema/
	./build/fuzz/test/fuzz/fast_schema_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-schema
	mkdir -p build/fuzz/corpus-config && cp -n test/fuzz/corpus-config/* build/fuzz/corpus-config/
	./build/fuzz/test/fuzz/config_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-config
	mkdir -p build/fuzz/corpus-openapi && cp -n test/fuzz/corpus-openapi/* build/fuzz/corpus-openapi/
	./build/fuzz/test/fuzz/openapi_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-openapi
	mkdir -p build/fuzz/corpus-jwt && cp -n test/fuzz/corpus-jwt/* build/fuzz/corpus-jwt/
	./build/fuzz/test/fuzz/jwt_fuzz -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus-jwt

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
