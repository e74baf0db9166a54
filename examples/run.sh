#!/usr/bin/env bash
# The bundled example, offline: make a signing key, index a copy of examples/vendor-tree, verify it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
um() { node "$here/../bin/update-mirror.js" "$@"; }

rm -rf "$out" && mkdir -p "$out"
cp -R "$here/vendor-tree" "$out/mirror"

echo "== keygen"
um keygen --out "$out/keys/mirror"
echo "== index (tags from examples/update-mirror.json, expires in 30 days)"
um index "$out/mirror" --key "$out/keys/mirror.key" --config "$here/update-mirror.json" --expires 30d
echo "== verify"
um verify "$out/mirror" --pubkey "$out/keys/mirror.pub"
echo "== sha256sum -c (standard tools agree)"
(cd "$out/mirror" && sha256sum -c .update-mirror/SHA256SUMS)
if command -v minisign >/dev/null; then
  echo "== minisign -V"
  minisign -Vm "$out/mirror/.update-mirror/manifest.json" -p "$out/keys/mirror.pub"
fi
echo "example OK: the mirror is in $out/mirror"
