#!/usr/bin/env bash
# Test services on Debian 12 (as root): a throwaway CA + server cert, tinyproxy with Basic auth, vsftpd (FTP + explicit FTPS), pure-ftpd (MLSD) and Samba (.ci/samba.sh), all on 127.0.0.1.
# Usage: services.sh up|down|env   (state lives in $SVC_DIR, default /tmp/update-mirror-ci-services; `env` prints the variables tests read)
set -euo pipefail
# Outside the checkout: a clone may sit below a folder only root can enter (mktemp -d makes 0700), and
# the FTP and SMB servers serve their trees as unprivileged users who must reach them.
SVC_DIR=${SVC_DIR:-/tmp/update-mirror-ci-services}
PROXY_PORT=${PROXY_PORT:-18888}
PROXY_USER=proxyuser
PROXY_PASS='proxy-Secr3t'
FTP_PORT=${FTP_PORT:-12121}
FTP_PASV_MIN=${FTP_PASV_MIN:-31000}
FTP_PASV_MAX=${FTP_PASV_MAX:-31049}
FTP_USER=umftptest
FTP_PASS='ftp-Secr3t!1'
MLSD_PORT=${MLSD_PORT:-12122}
MLSD_PASV_MIN=${MLSD_PASV_MIN:-31100}
MLSD_PASV_MAX=${MLSD_PASV_MAX:-31149}
MLSD_USER=umftpmlsd
MLSD_PASS='mlsd-Secr3t!1'

# shellcheck source=.ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_pkgs() {
  local need=()
  command -v tinyproxy >/dev/null || need+=(tinyproxy)
  command -v openssl >/dev/null || need+=(openssl)
  command -v vsftpd >/dev/null || [ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
  command -v smbd >/dev/null || [ -x /usr/sbin/smbd ] || need+=(samba)
  command -v smbclient >/dev/null || need+=(smbclient)
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
  ftp_up
  SVC_DIR="$SVC_DIR" bash "$(dirname "$0")/samba.sh" up >/dev/null
}

# vsftpd, read-only: a local user (password login, chrooted to $D/ftp/home/USER, where tests write their
# trees as root) and anonymous (chrooted to $D/ftp/anon). Explicit FTPS (AUTH TLS) with the test CA's
# server cert, optional so plain FTP works too. Passive mode only, in a fixed small port range. No MLSD
# (vsftpd has none): the FTP source's LIST + SIZE/MDTM path is what runs here.
# Gotchas (docs: /work/shared/research/stack-services.md §3): seccomp_sandbox=YES breaks logins in
# containers; Debian's PAM service wants a login shell, hence our own; no pid file, so we record $!.
ftp_up() {
  local D=$SVC_DIR
  stop_pidfile "$D/ftp/vsftpd.pid"
  mkdir -p "$D/ftp/anon/pub" "$D/ftp/home/$FTP_USER" /var/run/vsftpd/empty
  # An account left by an earlier run may name another state folder as its home: point it here.
  if id "$FTP_USER" >/dev/null 2>&1; then usermod -d "$D/ftp/home/$FTP_USER" "$FTP_USER"; else useradd -M -d "$D/ftp/home/$FTP_USER" -s /usr/sbin/nologin "$FTP_USER"; fi
  echo "$FTP_USER:$FTP_PASS" | chpasswd
  printf 'auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_unix.so\n' > /etc/pam.d/update-mirror-ftp
  echo "anonymous readme" > "$D/ftp/anon/pub/readme.txt"
  # Chroots that the logged-in user cannot write to (vsftpd refuses a writable one).
  chmod 755 "$D/ftp" "$D/ftp/home" "$D/ftp/home/$FTP_USER"; chmod 555 "$D/ftp/anon"
  cat > "$D/ftp/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
seccomp_sandbox=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$FTP_PASV_MIN
pasv_max_port=$FTP_PASV_MAX
port_enable=NO
connect_from_port_20=NO
local_enable=YES
write_enable=NO
chroot_local_user=YES
pam_service_name=update-mirror-ftp
anonymous_enable=YES
anon_root=$D/ftp/anon
no_anon_password=YES
force_dot_files=YES
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=YES
xferlog_std_format=NO
vsftpd_log_file=$D/ftp/vsftpd.log
utf8_filesystem=YES
ssl_enable=YES
allow_anon_ssl=NO
force_local_logins_ssl=NO
force_local_data_ssl=NO
rsa_cert_file=$D/pki/server.crt
rsa_private_key_file=$D/pki/server.key
ssl_tlsv1=NO
ssl_sslv2=NO
ssl_sslv3=NO
require_ssl_reuse=YES
ssl_ciphers=HIGH
CONF
  chmod 600 "$D/ftp/vsftpd.conf"
  setsid vsftpd "$D/ftp/vsftpd.conf" >"$D/ftp/vsftpd.out" 2>&1 </dev/null &
  echo $! > "$D/ftp/vsftpd.pid"
  wait_port "$FTP_PORT"
  echo "vsftpd up on 127.0.0.1:$FTP_PORT (passive ports $FTP_PASV_MIN-$FTP_PASV_MAX)"
  mlsd_up
}

# pure-ftpd, for the MLSD listing path vsftpd lacks: a virtual user (no system account) chrooted to
# $D/pure-ftpd/home, optional explicit FTPS. It conflicts with vsftpd in apt (both provide ftp-server),
# so it runs from its unpacked package. The password hash is SHA-512 crypt written by hand: pure-pw's
# default argon2id makes every login take seconds.
mlsd_up() {
  local P=$SVC_DIR/pure-ftpd
  stop_pidfile "$P/pure-ftpd.pid"
  mkdir -p "$P/home"
  if [ ! -x "$P/x/usr/sbin/pure-ftpd" ]; then
    dpkg -s libsodium23 >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libsodium23 >/dev/null
    (cd "$P" && { apt-get download -qq pure-ftpd 2>/dev/null || { apt-get update -qq && apt-get download -qq pure-ftpd 2>/dev/null; }; } \
      && dpkg-deb -x pure-ftpd_*.deb x && rm -f pure-ftpd_*.deb)
  fi
  echo "$MLSD_USER:$(openssl passwd -6 "$MLSD_PASS"):65534:65534::$P/home/./::::::::::::" > "$P/passwd"
  "$P/x/usr/bin/pure-pw" mkdb "$P/passwd.pdb" -f "$P/passwd" >/dev/null
  cat "$SVC_DIR/pki/server.key" "$SVC_DIR/pki/server.crt" > "$P/pure-ftpd.pem" && chmod 600 "$P/pure-ftpd.pem"
  chmod 755 "$P" "$P/home"
  # -E no anonymous, -A chroot, -B daemon, -H no DNS, -Y 1 TLS optional, -2 cert; -g pid file.
  "$P/x/usr/sbin/pure-ftpd" -S "127.0.0.1,$MLSD_PORT" -p "$MLSD_PASV_MIN:$MLSD_PASV_MAX" -P 127.0.0.1 -l "puredb:$P/passwd.pdb" \
    -E -A -B -H -Y 1 -2 "$P/pure-ftpd.pem" -g "$P/pure-ftpd.pid"
  wait_port "$MLSD_PORT"
  echo "pure-ftpd up on 127.0.0.1:$MLSD_PORT (MLSD; passive ports $MLSD_PASV_MIN-$MLSD_PASV_MAX)"
}

down() {
  SVC_DIR="$SVC_DIR" bash "$(dirname "$0")/samba.sh" down
  stop_pidfile "$SVC_DIR/proxy/tinyproxy.pid"
  stop_pidfile "$SVC_DIR/ftp/vsftpd.pid"
  stop_pidfile "$SVC_DIR/pure-ftpd/pure-ftpd.pid"
}

env_vars() {
  echo "export UM_TEST_PROXY_URL=http://127.0.0.1:$PROXY_PORT"
  echo "export UM_TEST_PROXY_USER=$PROXY_USER"
  echo "export UM_TEST_PROXY_PASS='$PROXY_PASS'"
  echo "export UM_TEST_CA=$SVC_DIR/pki/ca.crt"
  echo "export UM_TEST_CERT=$SVC_DIR/pki/server.crt"
  echo "export UM_TEST_KEY=$SVC_DIR/pki/server.key"
  # FTP: the URL carries no user; tests add UM_FTP_USER (password by reference) and a folder under UM_FTP_ROOT.
  echo "export UM_FTP_URL=ftp://127.0.0.1:$FTP_PORT/"
  echo "export UM_FTP_USER=$FTP_USER"
  echo "export UM_FTP_PASSWORD='$FTP_PASS'"
  echo "export UM_FTP_ROOT=$SVC_DIR/ftp/home/$FTP_USER"
  echo "export UM_FTP_ANON_ROOT=$SVC_DIR/ftp/anon"
  echo "export UM_FTP_LOG=$SVC_DIR/ftp/vsftpd.log"
  echo "export UM_FTP_MLSD_URL=ftp://127.0.0.1:$MLSD_PORT/"
  echo "export UM_FTP_MLSD_USER=$MLSD_USER"
  echo "export UM_FTP_MLSD_PASSWORD='$MLSD_PASS'"
  echo "export UM_FTP_MLSD_ROOT=$SVC_DIR/pure-ftpd/home"
  SVC_DIR="$SVC_DIR" bash "$(dirname "$0")/samba.sh" env
}

case "${1:-}" in up) up ;; down) down ;; env) env_vars ;; *) echo "usage: $0 up|down|env" >&2; exit 2 ;; esac
