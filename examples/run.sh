#!/usr/bin/env bash
# The bundled example, offline: a "vendor" publishes a signed upstream, and update-mirror syncs it into a mirror.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
um() { node "$here/../bin/update-mirror.js" "$@"; }

rm -rf "$out" && mkdir -p "$out"

echo "== keys: one for the vendor, one for our mirror"
um keygen --out "$out/keys/vendor"
um keygen --out "$out/keys/mirror"

echo "== the vendor publishes examples/vendor-tree as a signed upstream (tags from examples/update-mirror.json)"
cp -R "$here/vendor-tree" "$out/upstream"
um index "$out/upstream" --key "$out/keys/vendor.key" --config "$here/update-mirror.json"

echo "== sync: verify the vendor's signature, copy, sign our manifest"
um sync --source "$out/upstream" --dest "$out/mirror" --trust "$out/keys/vendor.pub" --sign-key "$out/keys/mirror.key"

echo "== the next day: the vendor updates one database and drops another"
printf 'KES daily signature database (example payload)\nrecords: 1025\n' > "$out/upstream/kes/win-x64/bases/daily.avc"
rm "$out/upstream/clamav/main.cvd"
um index "$out/upstream" --key "$out/keys/vendor.key" --config "$here/update-mirror.json"
um sync --source "$out/upstream" --dest "$out/mirror" --trust "$out/keys/vendor.pub" --sign-key "$out/keys/mirror.key"

echo "== nothing changed since: one look at the upstream manifest, nothing fetched"
um sync --source "$out/upstream" --dest "$out/mirror" --trust "$out/keys/vendor.pub" --sign-key "$out/keys/mirror.key"

echo "== verify the mirror, with our tool and with standard ones"
um verify "$out/mirror" --pubkey "$out/keys/mirror.pub"
(cd "$out/mirror" && sha256sum -c .update-mirror/SHA256SUMS)
if command -v minisign >/dev/null; then minisign -Vm "$out/mirror/.update-mirror/manifest.json" -p "$out/keys/mirror.pub"; fi

echo "== the previous generation is kept for rollback"
um rollback --dest "$out/mirror" --list

echo "== across the air gap: export to a medium (a folder and a tar), import inside, checked against our key"
um export "$out/mirror" --to "$out/usb"
um export "$out/mirror" --to "$out/usb-full.tar"
um import "$out/usb" --to "$out/inside" --trust "$out/keys/mirror.pub"
um import "$out/usb-full.tar" --to "$out/inside" --trust "$out/keys/mirror.pub"
um verify "$out/inside" --pubkey "$out/keys/mirror.pub"
echo "example OK: the mirror is in $out/mirror, its copy across the air gap in $out/inside"
