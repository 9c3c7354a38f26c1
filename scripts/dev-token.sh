#!/usr/bin/env bash
# Mints an ID token from the local test OpenID Provider (tests/oidc/op.mjs) through its real
# authorization-code flow, for trying brevis by hand.
#
#   (cd tests/oidc && npm ci && PORT=9500 node op.mjs) &
#   TOKEN=$(scripts/dev-token.sh)                       # alice@example.com, verified
#   SUB=bob CLAIMS='{"email":"bob@example.com","email_verified":true}' scripts/dev-token.sh
set -euo pipefail
ISS=${ISS:-http://127.0.0.1:9500}
SUB=${SUB:-alice}
CLAIMS=${CLAIMS:-'{"email":"alice@example.com","email_verified":true}'}
CLIENT=${CLIENT:-sigstore}
REDIRECT=http://127.0.0.1:1/cb
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
curl -sf -X PUT "$ISS/__test/users/$(urlenc "$SUB")" -H 'content-type: application/json' -d "$CLAIMS"
next=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' \
  "$ISS/auth?client_id=$CLIENT&response_type=code&scope=openid%20email%20ci&redirect_uri=$(urlenc "$REDIRECT")&state=s&nonce=n")
next=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' -X POST "$next" \
  --data-urlencode prompt=login --data-urlencode "login=$SUB" --data-urlencode password=x)
back=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$next")
code=$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)["code"][0])' "$back")
curl -sf -u "$CLIENT:test-secret" "$ISS/token" -d grant_type=authorization_code -d "code=$code" \
  --data-urlencode "redirect_uri=$REDIRECT" |
  python3 -c 'import sys, json; print(json.load(sys.stdin)["id_token"])'
