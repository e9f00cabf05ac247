#!/usr/bin/env bash
# The first run as a new user meets it, from a clean clone: `make run` in the background, then the
# README's quick-start block exactly as written, which sends a message and reads it back. Fails
# unless the message comes back, and unless no Dovecot, Postfix or unbound is left listening.
#
#   scripts/first-run-from-clone.sh [REPOSITORY]   (default: this checkout's committed HEAD)
set -euo pipefail
repo="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
work="$(mktemp -d /tmp/postern-first-run.XXXXXX)"
# As root the workers run as postern or nobody, and must reach the data directory (mktemp makes 0700).
chmod 755 "$work"
server=""
cleanup() {
  if [ -n "$server" ]; then
    (cd "$work/postern" && .build/debug/postern ctl stop -c Config/all-in-one.toml >/dev/null 2>&1) || true
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone -q "$repo" "$work/postern"
cd "$work/postern"
echo "first-run: make run in $work/postern (a fresh build)"
make run > "$work/run.log" 2>&1 &
server=$!
for _ in $(seq 1 1800); do
  grep -q "postern started" "$work/run.log" && break
  if ! kill -0 "$server" 2>/dev/null; then echo "first-run: make run stopped:"; tail -40 "$work/run.log"; exit 1; fi
  sleep 1
done
grep -q "postern started" "$work/run.log" || { echo "first-run: postern did not start"; tail -40 "$work/run.log"; exit 1; }
grep "first run:" "$work/run.log" | sed 's/^/  /'

# The README's block, as a user would paste it.
sed -n '/<!-- quick-start/,/<!-- \/quick-start -->/p' README.md | sed '1,/^```sh$/d; /^```$/,$d' > "$work/quick-start.sh"
[ -s "$work/quick-start.sh" ] || { echo "first-run: no quick-start block in README.md"; exit 1; }
echo "first-run: running the README's quick start:"; sed 's/^/  | /' "$work/quick-start.sh"
output="$(bash -e "$work/quick-start.sh" 2>&1)" || { echo "$output"; echo "first-run: the quick start failed"; exit 1; }
echo "$output" | sed 's/^/  > /'
echo "$output" | grep -q "Hello from Postern." || { echo "first-run: the message did not come back"; exit 1; }

# The webmail of the same first start: log in as the first account and see that message listed.
login=$(sed -n 1p var/first-account.txt); password=$(sed -n 2p var/first-account.txt)
page="$(curl -fsS -c "$work/jar" http://localhost:8080/login)" || { echo "first-run: the webmail login page did not answer"; exit 1; }
csrf="$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1)"
where="$(curl -fsS -b "$work/jar" -c "$work/jar" -o /dev/null -w '%{redirect_url}' --data-urlencode "csrf=$csrf" \
  --data-urlencode "user=$login" --data-urlencode "password=$password" http://localhost:8080/login)"
case "$where" in */mail\?f=INBOX) ;; *) echo "first-run: the webmail login did not go to the inbox ($where)"; exit 1 ;; esac
curl -fsS -b "$work/jar" 'http://localhost:8080/mail?f=INBOX' | grep -q '>first mail<' ||
  { echo "first-run: the webmail inbox does not list the message"; exit 1; }
echo "first-run: the webmail at http://localhost:8080/ logs in and lists the message"

# The admin console of the same first start: its page, and the API's login as the first account
# (the first account is a site administrator).
curl -fsS http://localhost:9080/ | grep -q 'Postern administration' || { echo "first-run: the admin console did not answer"; exit 1; }
me="$(curl -fsS -X POST -H 'Content-Type: application/json' \
  --data "{\"user\": \"$login\", \"password\": \"$password\"}" http://localhost:9080/api/v1/session)" ||
  { echo "first-run: the admin API login failed"; exit 1; }
printf '%s' "$me" | grep -q '"role":"site-admin"' || { echo "first-run: the admin API login answered $me"; exit 1; }
echo "first-run: the admin console at http://localhost:9080/ answers and logs the first account in"

# No other mail server may be listening: make run installs none, and test installs leave them off.
if ss -ltnp | grep -E '"(dovecot|master|postfix|smtpd|unbound)"'; then
  echo "first-run: a Dovecot, Postfix or unbound is listening (above)"; exit 1
fi
echo "first-run: OK (sent and read back, seen in the webmail, the admin console answers; no other mail server listening)"
