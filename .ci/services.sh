#!/usr/bin/env bash
# Test services on Debian 12 (as root): a throwaway CA + server cert, and tinyproxy with Basic auth, all on 127.0.0.1.
# Usage: services.sh up|down|env   (state lives in $SVC_DIR, default ./.ci-services; `env` prints the variables tests read)
set -euo pipefail
SVC_DIR=${SVC_DIR:-"$(pwd)/.ci-services"}
PROXY_PORT=${PROXY_PORT:-18888}
PROXY_USER=proxyuser
PROXY_PASS='proxy-Secr3t'

wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; return 1; }
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $st != Z* ]]; }
stop_pidfile() {
  local f=$1 pid; [ -s "$f" ] || return 0; pid=$(cat "$f")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

install_pkgs() {
  local need=()
  command -v tinyproxy >/dev/null || need+=(tinyproxy)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

up() {
  install_pkgs
  mkdir -p "$SVC_DIR"/{pki,proxy} && chmod 755 "$SVC_DIR"
  local D=$SVC_DIR
  if [ ! -s "$D/pki/server.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/pki/ca.key" -out "$D/pki/ca.crt" -days 3650 \
      -subj "/CN=update-mirror test CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$D/pki/server.key" -out "$D/pki/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$D/pki/server.ext"
    openssl x509 -req -in "$D/pki/server.csr" -CA "$D/pki/ca.crt" -CAkey "$D/pki/ca.key" -CAcreateserial \
      -out "$D/pki/server.crt" -days 825 -extfile "$D/pki/server.ext" 2>/dev/null
  fi
  stop_pidfile "$D/proxy/tinyproxy.pid"
  # No ConnectPort line: CONNECT is allowed to any port, so HTTPS origins on ephemeral ports work.
  cat > "$D/proxy/tinyproxy.conf" <<CONF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 60
MaxClients 50
LogLevel Connect
LogFile "$D/proxy/tinyproxy.log"
PidFile "$D/proxy/tinyproxy.pid"
Allow 127.0.0.1
BasicAuth $PROXY_USER $PROXY_PASS
CONF
  tinyproxy -c "$D/proxy/tinyproxy.conf"
  wait_port "$PROXY_PORT"
  echo "tinyproxy up on 127.0.0.1:$PROXY_PORT"
}

down() {
  stop_pidfile "$SVC_DIR/proxy/tinyproxy.pid"
}

env_vars() {
  echo "export UM_TEST_PROXY_URL=http://127.0.0.1:$PROXY_PORT"
  echo "export UM_TEST_PROXY_USER=$PROXY_USER"
  echo "export UM_TEST_PROXY_PASS='$PROXY_PASS'"
  echo "export UM_TEST_CA=$SVC_DIR/pki/ca.crt"
  echo "export UM_TEST_CERT=$SVC_DIR/pki/server.crt"
  echo "export UM_TEST_KEY=$SVC_DIR/pki/server.key"
}

case "${1:-}" in up) up ;; down) down ;; env) env_vars ;; *) echo "usage: $0 up|down|env" >&2; exit 2 ;; esac
