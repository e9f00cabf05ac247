# Postern: the two commands a new user needs are `make run` and `make test`.
SWIFT ?= swift
CONFIG ?= Config/all-in-one.toml
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

# Every test target is in exactly one of these (PosternHostTests checks it against Package.swift).
UNIT_TARGETS := PosternHostTests MailCoreTests SASLTests SASLMechanismTests StoreTests BackupTests QueueTests IMAPTests POP3Tests SMTPTests DNSTests WebmailTests LDAPTests MilterTests FilterDisclaimerTests FilterDLPTests
INTEROP_TARGETS := PosternInteropTests StoreConformanceTests IMAPInteropTests AccessProxyTests SMTPClientTests ImportTests WebmailBrowserTests AdminTests SASLInteropTests LegacyAuthTests SASLCyrusTests KerberosTests LDAPInteropTests SASLTokenTests MilterInteropTests FilterArchiveTests FilterContentInteropTests FilterRulesTests FilterAttachmentsTests FilterClamAVTests SenderAuthTests
space := $(subst ,, )
bar := |
target_filter = "^($(subst $(space),$(bar),$(strip $(1))))\."

.PHONY: deps test-deps build run check test unit interop screenshots install clean

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

# Screenshots of the webmail (inbox and a message, at 1280 and 360 pixels wide) and of the admin
# console (each page at 1280 and 390) for people to look at, taken by the browser tests in
# headless Chromium.
screenshots:     ## write the webmail's and the admin console's screenshots into ./screenshots
	$(SWIFT) build --build-tests
	mkdir -p screenshots
	POSTERN_SCREENSHOTS=$(CURDIR)/screenshots $(SWIFT) test --skip-build --filter '^(WebmailBrowserTests|AdminBrowserTests|AdminNodesTests)\.' 2>&1 | tee .build/test-screenshots.log
	@ls screenshots/*.png

# `make install` (as root): a release build into $(PREFIX)/lib/postern (the binary, libPluginAPI.so
# and the shipped plugins, which the loader finds in ../lib/postern beside the binary),
# $(PREFIX)/bin/postern on the PATH, the system user `postern` the workers run as, and
# /etc/postern/postern.toml (the all-in-one role, data in /var/lib/postern) unless one exists.
PREFIX ?= /usr/local
SHIPPED_PLUGINS := StoreSQLite Queue POP3 SASLPlain SASLLogin SASLSCRAM SASLCRAMMD5 SASLDigestMD5 SASLCyrus AuthKerberos SASLGSSAPI SASLOAuth SASLAnonymous SASLExternal DNS SMTP TableFile IMAP SMTPClient Webmail Admin LDAP Milter FilterArchive FilterDisclaimer FilterDLP FilterRules FilterAttachments FilterClamAV AccessProxy
install: deps
	$(SWIFT) build -c release
	install -d $(DESTDIR)$(PREFIX)/lib/postern $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/postern
	install -m 755 .build/release/postern .build/release/libPluginAPI.so $(DESTDIR)$(PREFIX)/lib/postern/
	for p in $(SHIPPED_PLUGINS); do install -m 755 .build/release/libPostern$$p.so $(DESTDIR)$(PREFIX)/lib/postern/; done
	# The webmail's templates, strings and static files and the admin console's, found beside the binary.
	cp -r .build/release/Postern_PosternWebmailCore.resources .build/release/Postern_PosternAdminCore.resources $(DESTDIR)$(PREFIX)/lib/postern/
	ln -sf ../lib/postern/postern $(DESTDIR)$(PREFIX)/bin/postern
	id postern >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postern --no-create-home --shell /usr/sbin/nologin postern
	[ -e $(DESTDIR)/etc/postern/postern.toml ] || sed -e 's|^data_dir = .*|data_dir = "/var/lib/postern"|' \
	    -e 's|^# user = "postern".*|user = "postern"|' -e 's|^# group = "postern".*|group = "postern"|' \
	    Config/all-in-one.toml > $(DESTDIR)/etc/postern/postern.toml
	@echo "installed: $(PREFIX)/bin/postern; config /etc/postern/postern.toml; start with: postern serve"

clean:
	rm -rf .build .build-example var
