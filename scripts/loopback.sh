# Shared by the scripts that drive a real `quiver serve` on loopback
# (bench-access-token.sh, order-code.sh); sourced, not run. The caller
# sets LIMIT (seconds before everything it starts stops by itself), TMP (a
# scratch folder) and the array PIDS (what its cleanup stops).

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_authserver REDIRECT_URI [server.js options…]: the test authorization
# server (end2end/authserver) on a free port, in the background; sets AUTH
# to what it announces (issuer, endpoints, client secrets as JSON).
start_authserver() {
  local redirect=$1
  shift
  timeout "$LIMIT" node end2end/authserver/server.js --port 0 --no-stdin-watch \
    --redirect-uri "$redirect" "$@" < /dev/null > "$TMP/auth.out" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 300); do grep -q '^AUTHSERVER_READY ' "$TMP/auth.out" 2>/dev/null && break; sleep 0.1; done
  AUTH=$(sed -n 's/^AUTHSERVER_READY //p' "$TMP/auth.out")
  [ -n "$AUTH" ] || { echo "$0: the authorization server did not start" >&2; exit 1; }
}

# client_credentials_provider NAME: the provider input (POST
# /api/v1/providers) for the authorization server's `cc-basic` client.
client_credentials_provider() {
  jq -c --arg name "$1" '{
    name: $name, issuer: .issuer,
    authorization_endpoint: .endpoints.authorization, token_endpoint: .endpoints.token,
    revocation_endpoint: .endpoints.revocation, jwks_uri: .endpoints.jwks,
    client_id: "cc-basic", client_secret: .clientSecrets["cc-basic"],
    client_auth_method: "client_secret_basic" }' <<<"$AUTH"
}
