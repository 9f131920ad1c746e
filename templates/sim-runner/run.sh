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
    printf '%s' "$jit" | base64 -d \
        | jq '{origin: .url, id: .runner_id, name: .name, credential: .credential,
               ephemeral: true, work: (.work_folder // "_work")}' >"$ROOT/.runner" \
        || sim_die "the JIT config is not valid"
fi
[[ -f $ROOT/.runner ]] || sim_die "not configured: run config.sh or pass --jitconfig"
exec "$ROOT/bin/Runner.Listener" run
