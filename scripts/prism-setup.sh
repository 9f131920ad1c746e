#!/usr/bin/env bash
# Installs Prism and GitHub's OpenAPI description (pinned) into a cache directory and
# trims the description to the paths the client uses. Idempotent: re-running it only
# redoes the steps whose outputs are missing.
set -euo pipefail

PRISM_VERSION=5.12.0
OPENAPI_VERSION=23.0.2
DIR=${PRISM_DIR:-/var/cache/github-runner/prism}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$DIR"
cd "$DIR"

if [[ ! -x node_modules/.bin/prism ]] || ! node_modules/.bin/prism --version 2>/dev/null | grep -qx "$PRISM_VERSION"; then
    [[ -f package.json ]] || echo '{"private": true}' > package.json
    npm install --no-audit --no-fund --loglevel=error "@stoplight/prism-cli@$PRISM_VERSION"
fi

if [[ ! -f openapi/generated/api.github.com.json ]]; then
    tarball=$(npm pack --silent "@octokit/openapi@$OPENAPI_VERSION")
    rm -rf openapi && mkdir openapi
    tar -xzf "$tarball" -C openapi --strip-components=1 package/generated/api.github.com.json
    rm -f "$tarball"
fi

spec=github-runners.json
if [[ ! -s $spec || $spec -ot "$HERE/trim-openapi.js" ]] ||
    ! node "$HERE/trim-openapi.js" --check "$spec" 2>/dev/null; then
    node "$HERE/trim-openapi.js" openapi/generated/api.github.com.json "$spec.tmp"
    mv "$spec.tmp" "$spec"
fi

echo "prism: $DIR/node_modules/.bin/prism"
echo "spec:  $DIR/$spec"
