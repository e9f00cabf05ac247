# Postern: the two commands a new user needs are `make run` and `make test`.
SWIFT ?= swift
CONFIG ?= Config/all-in-one.toml
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

# Every test target is in exactly one of these (PosternHostTests checks it against Package.swift).
UNIT_TARGETS := PosternHostTests MailCoreTests SASLTests StoreTests BackupTests QueueTests IMAPTests POP3Tests SMTPTests DNSTests
INTEROP_TARGETS := PosternInteropTests IMAPInteropTests SMTPClientTests ImportTests
space := $(subst ,, )
bar := |
target_filter = "^($(subst $(space),$(bar),$(strip $(1))))\."

.PHONY: deps test-deps build run check test unit interop clean

deps:            ## install the Debian packages needed to build and run (no mail servers)
	./scripts/install-deps.sh build

test-deps:       ## and the peers and clients the tests use (their system services left disabled)
	./scripts/install-deps.sh test

build: deps      ## build the host, PluginAPI and every plugin (debug)
	$(SWIFT) build

run: build       ## run the all-in-one role on the embedded default, data under ./var
	.build/debug/postern check-config -c $(CONFIG)
	.build/debug/postern serve -c $(CONFIG)

check: build     ## check the config without starting anything
	.build/debug/postern check-config -c $(CONFIG)

# Each run keeps its output in .build/test-*.log; scripts/check-skips.py then prints how many tests
# were skipped and fails on any skip not in Tests/optional-tests.txt.
test: test-deps  ## the whole suite: unit tests, then the interop tests on real sockets and peers
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build 2>&1 | tee .build/test-all.log
	python3 scripts/check-skips.py .build/test-all.log Tests/optional-tests.txt

unit:            ## unit tests only (seconds to a minute)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter $(call target_filter,$(UNIT_TARGETS)) 2>&1 | tee .build/test-unit.log
	python3 scripts/check-skips.py .build/test-unit.log Tests/optional-tests.txt

interop:         ## interop tests only (minutes): real sockets, real peers and clients
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter $(call target_filter,$(INTEROP_TARGETS)) 2>&1 | tee .build/test-interop.log
	python3 scripts/check-skips.py .build/test-interop.log Tests/optional-tests.txt

clean:
	rm -rf .build .build-example var
