# Confvault: `make run` shows the main job on the Samples, `make test` runs every test.
# Both install what a fresh machine lacks first (`make setup`, as root, with apt-get).

SWIFT        ?= swift
CONFIG       ?= debug
BUILD_FLAGS  ?=
# The release build links the Swift runtime and Foundation into the binary: it runs on a machine
# without the toolchain, and starts without resolving their symbols (a one-file push of a 20,000-file
# folder took 0.169 s against 0.148 s so). Debug builds, which the tests run, stay dynamic.
RELEASE_FLAGS := --static-swift-stdlib
# `make bench BENCH_FLAGS="--quick"` or `BENCH_FLAGS="--only checkout"`: bench.py's options.
BENCH_FLAGS  ?=
BIN          := .build/$(CONFIG)/confvault
APT_PACKAGES := libarchive-dev libzstd-dev zlib1g-dev liblzma-dev libbz2-dev libarchive-tools pkg-config tar gzip zstd xz-utils bzip2 python3 python3-yaml git curl time postgresql \
                chromium chromium-driver fonts-dejavu-core wrk
# Python packages the tests drive: a browser through WebDriver, and the API checked against its OpenAPI document.
PIP_PACKAGES := selenium schemathesis
SOURCES      := Package.swift Sources Tests Benchmarks

# `make install` puts the binary in $(PREFIX)/bin and the man page in $(MANDIR); DESTDIR stages a package.
PREFIX       ?= /usr/local
MANDIR       ?= $(PREFIX)/share/man/man1

.PHONY: setup build test run bench format lint smoke clean man install uninstall

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
	$(SWIFT) build -c $(CONFIG) $(if $(filter release,$(CONFIG)),$(RELEASE_FLAGS)) $(BUILD_FLAGS)

test: setup
	$(SWIFT) build $(BUILD_FLAGS)
	$(SWIFT) test $(BUILD_FLAGS)

run: setup
	$(SWIFT) build $(BUILD_FLAGS)
	@CONFVAULT=$(BIN) ./Samples/tour.sh

bench: setup
	$(SWIFT) build -c release $(RELEASE_FLAGS) $(BUILD_FLAGS) --product confvault
	python3 Benchmarks/bench.py --confvault .build/release/confvault --write-readme $(BENCH_FLAGS)

# The man page is generated from the command definitions by swift-argument-parser's generate-manual,
# run on the release binary (its GenerateManual plugin would build the release configuration again,
# without RELEASE_FLAGS); it writes into the build folder, not the package.
man:
	$(SWIFT) build -c release $(RELEASE_FLAGS) $(BUILD_FLAGS) --product confvault
	$(SWIFT) build -c release $(RELEASE_FLAGS) $(BUILD_FLAGS) --product generate-manual
	@bin="$$($(SWIFT) build -c release $(RELEASE_FLAGS) $(BUILD_FLAGS) --show-bin-path)" && \
	mkdir -p "$$bin/manual" && "$$bin/generate-manual" "$$bin/confvault" --output-directory "$$bin/manual"

# A release build, then the binary and the man page; `make install` needs only what a build needs.
install: man
	@bin="$$($(SWIFT) build -c release $(RELEASE_FLAGS) $(BUILD_FLAGS) --show-bin-path)" && \
	manual="$$bin/manual/confvault.1" && \
	test -f "$$manual" || { echo "make install: the man page is not at $$manual" >&2; exit 1; }; \
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(MANDIR)" && \
	install -m 0755 "$$bin/confvault" "$(DESTDIR)$(PREFIX)/bin/confvault" && \
	install -m 0644 "$$manual" "$(DESTDIR)$(MANDIR)/confvault.1" && \
	echo "installed $(DESTDIR)$(PREFIX)/bin/confvault and $(DESTDIR)$(MANDIR)/confvault.1"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/confvault" "$(DESTDIR)$(MANDIR)/confvault.1"

format:
	$(SWIFT) format --in-place --recursive $(SOURCES)

# Warnings in our own code are errors; dependencies' warnings are theirs to fix.
# The release build against the debug one that the tests ran (Tests/release-smoke.sh): the tour, and
# the same output for the same reads; code wrong only when optimised shows in release alone.
smoke: setup
	$(SWIFT) build $(BUILD_FLAGS) --product confvault
	$(SWIFT) build -c release $(RELEASE_FLAGS) $(BUILD_FLAGS) --product confvault
	Tests/release-smoke.sh .build/release/confvault .build/debug/confvault

lint: setup
	$(SWIFT) format lint --strict --recursive $(SOURCES)
	@$(SWIFT) build --build-tests $(BUILD_FLAGS) 2>&1 | tee .build-lint.log
	@if grep -E "^$(CURDIR)/(Sources|Tests)/.*(warning|error):" .build-lint.log; then \
	  echo "lint: fix the warnings above" >&2; rm -f .build-lint.log; exit 1; fi; rm -f .build-lint.log

clean:
	rm -rf .build .confvault
