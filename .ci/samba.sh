#!/usr/bin/env bash
# Test SMB servers on Debian 12 (as root): Samba's smbd from a scratch dir on 127.0.0.1, one with default settings, one requiring signing.
# Usage: samba.sh up|down|env   (state in $SVC_DIR/smb, default /tmp/update-mirror-ci-services/smb; `up` and `env` print export lines to eval,
# progress goes to stderr). Installs nothing: needs the Debian packages samba and smbclient.
# Notes (measured, /work/shared/research/stack-services.md §1): smbd -D daemonizes into its own session; never start it with
# --no-process-group from a script (its shutdown SIGTERMs the caller's process group). Listing shares spawns samba-dcerpcd,
# which outlives smbd, so `down` stops it too. The default async I/O stays on: it is what makes the server answer reads
# with STATUS_PENDING first, which the client must survive.
set -euo pipefail
# Outside the checkout: a clone may sit below a folder only root can enter (mktemp -d makes 0700), and
# the FTP and SMB servers serve their trees as unprivileged users who must reach them.
SVC_DIR=${SVC_DIR:-/tmp/update-mirror-ci-services}
SMB_DIR="$SVC_DIR/smb"
SMB_PORT=${SMB_PORT:-14445}
SMB_SIGNING_PORT=${SMB_SIGNING_PORT:-14446}
SMB_USER=umsmbtest
SMB_PASS='smb-Secr3t!1'

log() { echo "$*" >&2; }
# shellcheck source=.ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# One smbd instance: its own config, state and pid dirs under $SMB_DIR/$1, serving the shared share folders.
write_conf() {
  local name=$1 port=$2 extra=$3 I="$SMB_DIR/$1"
  mkdir -p "$I"/{private,lock,state,cache,run,log}
  cat > "$I/smb.conf" <<CONF
[global]
  server role = standalone server
  workgroup = WORKGROUP
  netbios name = UMTEST${name^^}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = $port
  disable netbios = yes
  server min protocol = SMB2_02
  map to guest = Bad User
  guest account = nobody
  passdb backend = tdbsam:$SMB_DIR/passdb.tdb
  private dir = $I/private
  lock directory = $I/lock
  state directory = $I/state
  cache directory = $I/cache
  pid directory = $I/run
  ncalrpc dir = $I/run/ncalrpc
  log file = $I/log/log.%m
  max log size = 0
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
$extra
[data]
  path = $SMB_DIR/shares/data
  read only = no
  valid users = $SMB_USER
  create mask = 0644
  directory mask = 0755
[public]
  path = $SMB_DIR/shares/public
  read only = yes
  guest ok = yes
  guest only = yes
CONF
}

start() {
  local name=$1 port=$2 I="$SMB_DIR/$1"
  stop_pidfile "$I/run/smbd.pid"
  stop_pidfile "$I/run/samba-dcerpcd.pid"
  smbd -D -s "$I/smb.conf"
  wait_port "$port"
  log "smbd ($name) up on 127.0.0.1:$port"
}

up() {
  command -v smbd >/dev/null || [ -x /usr/sbin/smbd ] || { log "smbd missing: apt-get install samba smbclient"; exit 1; }
  mkdir -p "$SMB_DIR/shares/data" "$SMB_DIR/shares/public"
  # The per-connection smbd runs as the user, which must traverse every parent (mktemp -d gives 0700).
  chmod 755 "$SVC_DIR" "$SMB_DIR" "$SMB_DIR/shares" "$SMB_DIR/shares/public"
  id "$SMB_USER" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$SMB_USER"
  chown "$SMB_USER" "$SMB_DIR/shares/data"; chmod 755 "$SMB_DIR/shares/data"
  echo "public readme" > "$SMB_DIR/shares/public/readme.txt"
  write_conf main "$SMB_PORT" ""
  write_conf signing "$SMB_SIGNING_PORT" "  server signing = mandatory"
  printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" | smbpasswd -c "$SMB_DIR/main/smb.conf" -s -a "$SMB_USER" >/dev/null
  start main "$SMB_PORT"
  start signing "$SMB_SIGNING_PORT"
  env_vars
}

down() {
  local name
  for name in main signing; do
    stop_pidfile "$SMB_DIR/$name/run/smbd.pid"
    stop_pidfile "$SMB_DIR/$name/run/samba-dcerpcd.pid"   # only there if an RPC (a share listing) spawned it
  done
}

env_vars() {
  # The URL names the user; the password goes by reference (tests pass UM_SMB_PASSWORD through --smb-password-env).
  echo "export UM_SMB_URL=smb://$SMB_USER@127.0.0.1:$SMB_PORT/data"
  echo "export UM_SMB_USER=$SMB_USER"
  echo "export UM_SMB_PASSWORD='$SMB_PASS'"
  echo "export UM_SMB_ROOT=$SMB_DIR/shares/data"
  echo "export UM_SMB_PUBLIC_URL=smb://127.0.0.1:$SMB_PORT/public"
  echo "export UM_SMB_SIGNING_URL=smb://$SMB_USER@127.0.0.1:$SMB_SIGNING_PORT/data"
}

case "${1:-}" in up) up ;; down) down ;; env) env_vars ;; *) echo "usage: $0 up|down|env" >&2; exit 2 ;; esac
