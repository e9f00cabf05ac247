#!/usr/bin/env bash
# Installs the Debian 12 packages Postern needs to build, run and test. The Swift toolchain itself
# must already be installed. Safe to run again: apt-get skips what is present.
set -euo pipefail

packages=(
  libsqlite3-dev   # the embedded store (GRDB links the system SQLite)
  zlib1g-dev       # IMAP COMPRESS=DEFLATE (the imap plugin links the system zlib)
  openssl          # test certificates
  python3          # test clients (ssl, smtplib, imaplib, poplib)
  ca-certificates
  dovecot-imapd    # import tests: a real Dovecot writes the Maildir that is imported
  dovecot-lmtpd
  dovecot-pop3d    # benchmarks: POP3 beside Dovecot
  unbound          # DNS tests: a throw-away unbound on a free port serves the test zones
  fetchmail        # POP3 interop tests: a real POP3 client with UIDL, keep and no keep
  isync            # IMAP interop tests: mbsync syncing both ways
  mutt             # IMAP interop tests: a real MUA, driven in tmux
  tmux
  swaks              # SMTP interop tests: a real SMTP client (STARTTLS, implicit TLS, AUTH, pipelining)
  libnet-ssleay-perl # swaks's TLS support (without it swaks cannot do STARTTLS or --tls-on-connect)
  postfix          # SMTP client tests: a throw-away Postfix as the remote MX, and its smtp-sink
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure the system's own mail; the tests run private instances only.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
