#!/bin/bash
# Registers (or removes) this runner with the GitHub simulator. Same flags as the real
# runner's config.sh: --url --token --name --labels --runnergroup --work --ephemeral
# --unattended --replace; `config.sh remove --token T`.
set -euo pipefail
umask 077
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=sim-lib.sh
source "$ROOT/bin/sim-lib.sh"

# --token may come as ACTIONS_RUNNER_INPUT_TOKEN (out of argv), as with the real runner.
token=${ACTIONS_RUNNER_INPUT_TOKEN:-}
unset ACTIONS_RUNNER_INPUT_TOKEN
mode=register url='' name=${HOSTNAME:-$(cat /etc/hostname 2>/dev/null)} labels='' group='' work=_work
ephemeral=false replace=false no_default_labels=false
while [[ $# -gt 0 ]]; do
    case $1 in
        remove) mode=remove; shift ;;
        --url) url=$2; shift 2 ;;
        --token) token=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --labels) labels=$2; shift 2 ;;
        --runnergroup) group=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --ephemeral) ephemeral=true; shift ;;
        --replace) replace=true; shift ;;
        --no-default-labels) no_default_labels=true; shift ;;
        --unattended|--disableupdate) shift ;;
        *) sim_die "unknown option $1" ;;
    esac
done
[[ -n $token ]] || sim_die "--token is required"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SIM_OUT=$TMP/response
body=$TMP/body

if [[ $mode == remove ]]; then
    [[ -f $ROOT/.runner ]] || sim_die "this runner is not configured"
    origin=$(jq -r .origin "$ROOT/.runner")
    url=$(jq -r .url "$ROOT/.runner")
    SIM_AUTH=$(jq -r .credential "$ROOT/.runner")
    TOKEN=$token jq -n --arg url_path "${url#"$origin"}" \
        '{token: env.TOKEN, url_path: $url_path}' >"$body"
    code=$(sim_call POST "$origin/_sim/runner/remove" "$body")
    case $code in
        2*) echo "Runner removed" ;;
        # As the real runner: a registration already gone is skipped, not an error.
        404) echo "Does not exist. Skipping Removing runner from the server" ;;
        *) sim_die "removing the runner failed ($code): $(cat "$SIM_OUT" 2>/dev/null)" ;;
    esac
    rm -f "$ROOT/.runner"
    exit 0
fi

[[ -n $url ]] || sim_die "--url is required"
[[ ! -f $ROOT/.runner || $replace == true ]] || sim_die "the runner is already configured"
origin=$(sim_origin "$url")
url_path=${url#"$origin"}
TOKEN=$token jq -n --arg url_path "$url_path" --arg name "$name" --arg labels "$labels" \
    --arg group "$group" --arg work "$work" --argjson ephemeral "$ephemeral" \
    --argjson replace "$replace" --argjson no_default_labels "$no_default_labels" \
    '{token: env.TOKEN, url_path: $url_path, name: $name, runner_group: $group, work: $work,
      labels: ($labels | split(",") | map(select(length > 0))),
      ephemeral: $ephemeral, replace: $replace, no_default_labels: $no_default_labels}' >"$body"
code=$(sim_call POST "$origin/_sim/runner/register" "$body")
[[ $code == 2* ]] || sim_die "registration failed ($code): $(cat "$SIM_OUT" 2>/dev/null)"
jq --arg origin "$origin" --arg url "$url" --arg work "$work" \
    '{origin: $origin, url: $url, id: .id, name: .name, credential: .credential,
      ephemeral: .ephemeral, work: $work}' "$SIM_OUT" >"$ROOT/.runner"
echo "√ Runner successfully added"
echo "√ Settings Saved."
