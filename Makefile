# Confvault: `make run` shows the main job on the Samples, `make test` runs every test.
# Both install what a fresh machine lacks first (`make setup`, as root, with apt-get).

SWIFT        ?= swift
CONFIG       ?= debug
BUILD_FLAGS  ?=
BIN          := .build/$(CONFIG)/confvault
APT_PACKAGES := libarchive-dev libzstd-dev zlib1g-dev liblzma-dev libbz2-dev libarchive-tools pkg-config tar gzip zstd xz-utils bzip2 python3 git curl \
                chromium chromium-driver fonts-dejavu-core wrk
# Python packages the tests drive: a browser through WebDriver, and the API checked against its OpenAPI document.
PIP_PACKAGES := selenium schemathesis
SOURCES      := Package.swift Sources Tests Benchmarks

.PHONY: setup build test run bench format lint clean

setup:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make setup: run as root to apt-get install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@python3 -c "import selenium, schemathesis" 2>/dev/null || { echo "installing: $(PIP_PACKAGES)"; \
	  python3 -m pip install -q --disable-pip-version-check $(PIP_PACKAGES); }

build: setup
	$(SWIFT) build -c $(CONFIG) $(BUILD_FLAGS)

test: setup
	$(SWIFT) build $(BUILD_FLAGS)
	$(SWIFT) test $(BUILD_FLAGS)

run: setup
	$(SWIFT) build $(BUILD_FLAGS)
	@CONFVAULT=$(BIN) ./Samples/tour.sh

bench: setup
	$(SWIFT) build -c release $(BUILD_FLAGS)
	python3 Benchmarks/bench.py --confvault .build/release/confvault

format:
	$(SWIFT) format --in-place --recursive $(SOURCES)

# Warnings in our own code are errors; dependencies' warnings are theirs to fix.
lint: setup
	$(SWIFT) format lint --strict --recursive $(SOURCES)
	@$(SWIFT) build --build-tests $(BUILD_FLAGS) 2>&1 | tee .build-lint.log
	@if grep -E "^$(CURDIR)/(Sources|Tests)/.*(warning|error):" .build-lint.log; then \
	  echo "lint: fix the warnings above" >&2; rm -f .build-lint.log; exit 1; fi; rm -f .build-lint.log

clean:
	rm -rf .build .confvault
