#!/bin/bash
# Starts the listener: `run.sh` after config.sh, or `run.sh --jitconfig BASE64`
# (or ACTIONS_RUNNER_INPUT_JITCONFIG=BASE64).
set -euo pipefail
umask 077
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=sim-lib.sh
source "$ROOT/bin/sim-lib.sh"

# Like the real runner, every argument may come as ACTIONS_RUNNER_INPUT_<NAME> instead,
# which keeps secrets out of argv; the variable is gone before the job's processes start.
jit=${ACTIONS_RUNNER_INPUT_JITCONFIG:-}
unset ACTIONS_RUNNER_INPUT_JITCONFIG
if [[ ${1:-} == --jitconfig ]]; then
    [[ -n ${2:-} ]] || sim_die "--jitconfig needs a value"
    jit=$2
fi
if [[ -n $jit ]]; then
    config=$(base64 -d <<<"$jit" 2>/dev/null) || sim_die "the JIT config is not base64"
    sim_json_field url "$config" url && sim_json_field id "$config" runner_id \
        && sim_json_field name "$config" name \
        && sim_json_field credential "$config" credential \
        || sim_die "the JIT config is not valid"
    sim_json_field work "$config" work_folder || work=_work
    printf '{"origin": "%s", "id": %s, "name": "%s", "credential": "%s", "ephemeral": true, "work": "%s"}\n' \
        "$url" "$id" "$name" "$credential" "$work" >"$ROOT/.runner"
fi
[[ -f $ROOT/.runner ]] || sim_die "not configured: run config.sh or pass --jitconfig"
exec "$ROOT/bin/Runner.Listener" run
