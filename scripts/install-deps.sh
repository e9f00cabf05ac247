#!/usr/bin/env bash
# Installs the Debian 12 packages Postern needs, by purpose. The Swift toolchain itself must
# already be installed. Safe to run again: nothing is done when everything is present.
#
#   scripts/install-deps.sh build   what building and running Postern need (make build, make run)
#   scripts/install-deps.sh test    that, plus the peers and clients the test suite talks to
#
# Test peers (Dovecot, Postfix, unbound, PostgreSQL) are never left running as system services:
# the tests start private instances on 127.0.0.1 and high ports. Debian starts a package's service
# when it is installed, so installs run under a policy-rc.d that forbids it, and afterwards the
# services are disabled and stopped (systemctl when systemd runs, update-rc.d and the init script
# when not).
set -euo pipefail

purpose="${1:-build}"

build_packages=(
  libsqlite3-dev   # the embedded store (GRDB links the system SQLite)
  libcrypt-dev     # legacy password hashes: crypt(3) through libxcrypt's crypt_r (libPluginAPI.so)
  zlib1g-dev       # IMAP COMPRESS=DEFLATE (the imap plugin links the system zlib)
  libssl-dev       # CRAM-MD5 stored secrets (the sasl-cram-md5 plugin links libcrypto for MD5 chaining state)
  ca-certificates  # outbound STARTTLS verification
  libldap-dev      # the ldap plugin (OpenLDAP's libldap)
  libkrb5-dev      # authproxyd's Kerberos/GSSAPI backend (libgssapi_krb5, libkrb5)
  libsasl2-dev     # the Cyrus SASL bridge (libsasl2)
  publicsuffix     # DMARC's Organizational Domains: sender-auth reads /usr/share/publicsuffix/public_suffix_list.dat at run time
)

test_packages=(
  openssl          # test certificates
  python3          # test clients (ssl, smtplib, imaplib, poplib)
  curl             # the README's quick start (scripts/first-run-from-clone.sh): SMTP and IMAP with TLS
  iproute2         # ss: the first-run check that no other mail server listens
  dovecot-imapd    # import tests: a real Dovecot writes the Maildir that is imported
  dovecot-lmtpd
  dovecot-pop3d    # benchmarks: POP3 beside Dovecot
  unbound          # DNS tests: a throw-away unbound on a free port serves the test zones
  postgresql       # store conformance tests: a throw-away cluster (initdb, postgres as the postgres user) for store-postgres
  fetchmail        # POP3 interop tests: a real POP3 client with UIDL, keep and no keep
  isync            # IMAP interop tests: mbsync syncing both ways
  mutt             # IMAP interop tests: a real MUA, driven in tmux
  tmux
  msmtp            # first-run tests: a client that insists on TLS before AUTH
  swaks              # SMTP interop tests: a real SMTP client (STARTTLS, implicit TLS, AUTH, pipelining)
  libnet-ssleay-perl # swaks's TLS support (without it swaks cannot do STARTTLS or --tls-on-connect)
  postfix          # SMTP client tests: a throw-away Postfix as the remote MX, and its smtp-sink
  chromium         # webmail tests: a real browser, headless, driven through WebDriver
  chromium-driver
  python3-selenium # (Debian's /usr/bin/python3 drives it)
  slapd            # auth tests: a throw-away slapd with its own config and data
  ldap-utils       # ldapadd/ldapsearch, to load and check the test directory
  krb5-kdc         # auth tests: a real MIT KDC for a realm the tests create (kdb5_util)
  krb5-admin-server # kadmin.local, to add the test principals and export the keytab
  krb5-user        # kinit, for the client's ticket
  sasl2-bin        # saslpasswd2 (sasldb2 users for the libsasl2 bridge)
  libsasl2-modules # the client side of CRAM-MD5, DIGEST-MD5, SCRAM for imtest/smtptest
  libsasl2-modules-gssapi-mit
  cyrus-clients    # imtest, smtptest, pop3test: independent SASL clients
  opendkim         # milter tests: a real OpenDKIM signing on the submission listener; SenderAuthTests:
                   # `opendkim -t` signs for and verifies against Postern's DKIM
  opendkim-tools   # opendkim-genkey, the test's signing key (milter and SenderAuth DKIM tests)
  python3-dkim     # dkimverify's library: the test verifies OpenDKIM's signature; SenderAuthTests
                   # sign and verify with it against Postern's DKIM (Ed25519 through python3-nacl)
  python3-nacl     # dkimpy's Ed25519 (RFC 8463)
  python3-authres  # dkimpy's ARC (arc_sign reads the Authentication-Results it seals): ARC interop tests
  rspamd           # milter tests: rspamd's proxy in milter mode (GTUBE)
  clamav-daemon    # milter tests: clamd with a signature database the test writes (EICAR)
  clamav-milter
  libxml2-utils    # xmllint: DMARC aggregate reports are validated against the RFC 7489 schema
  python3-spf      # SPF tests: pyspf (over python3-dnspython) checks every case beside Postern
)

# The system services the test packages bring, none of which may stay running.
test_services=(dovecot postfix unbound postgresql slapd krb5-kdc krb5-admin-server saslauthd opendkim rspamd clamav-daemon clamav-milter clamav-freshclam)

case "$purpose" in
  build) packages=("${build_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how to configure the system's own mail; the tests run private instances only.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  # No service starts during the install (policy-rc.d exit 101: "action forbidden"), unless the
  # machine already has a policy of its own, which is left alone.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The admin API's schema fuzzer (AdminAPITests): schemathesis from PyPI, pinned, for the python3
# on PATH (the one the tests find `st` beside).
if [ "$purpose" = test ] && ! command -v st >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi

if [ "$purpose" = test ]; then
  systemd=false
  [ -d /run/systemd/system ] && systemd=true
  for s in "${test_services[@]}"; do
    [ -e "/etc/init.d/$s" ] || [ -e "/lib/systemd/system/$s.service" ] || continue
    if $systemd; then
      $sudo systemctl disable --now "$s" >/dev/null 2>&1 || true
    else
      $sudo update-rc.d -f "$s" disable >/dev/null 2>&1 || true
      [ -x "/etc/init.d/$s" ] && $sudo "/etc/init.d/$s" stop >/dev/null 2>&1 || true
    fi
  done
fi
