#!/usr/bin/env bash
# Tools the simulator's runner app and its tests need on this machine: bash, curl, jq.
# Idempotent: installs only what is missing.
set -euo pipefail
missing=()
for tool in curl jq; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
echo "curl and jq present"
