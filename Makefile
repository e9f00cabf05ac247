# Postern: the two commands a new user needs are `make run` and `make test`.
SWIFT ?= swift
CONFIG ?= Config/all-in-one.toml

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

test: test-deps  ## the whole suite: unit tests, then the interop tests on real sockets and peers
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

unit:            ## unit tests only (seconds)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter "PosternHostTests|SASLTests|MailCoreTests|StoreTests|IMAPTests|POP3Tests|DNSTests|QueueTests"

interop:         ## interop tests only (minutes)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter "PosternInteropTests|IMAPInteropTests"

clean:
	rm -rf .build .build-example var
