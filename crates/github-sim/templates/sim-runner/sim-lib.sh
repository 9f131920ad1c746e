# shellcheck shell=bash
# Shared helpers of the simulator's runner app (sourced; bash, curl and jq only).
# Secrets never go on a command line: curl reads its Authorization header from a config
# on stdin and request bodies from files only the runner user can read.

# sim_call METHOD URL [BODY_FILE]: response body to $SIM_OUT, prints the HTTP status
# ("000" when the server could not be reached). Credential from $SIM_AUTH.
sim_call() {
    local method=$1 url=$2 body=${3:-}
    local -a args=(-sS -o "$SIM_OUT" -w '%{http_code}' -X "$method"
        --connect-timeout 5 --max-time "${SIM_MAX_TIME:-30}")
    if [[ -n $body ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "@$body")
    fi
    printf 'header = "Authorization: Bearer %s"\n' "${SIM_AUTH:-none}" \
        | curl -K - "${args[@]}" "$url" 2>/dev/null || true
}

# The scheme://host[:port] of a URL.
sim_origin() {
    sed -E 's#^(https?://[^/]+).*#\1#' <<<"$1"
}

# sim_json_field VAR JSON KEY: sets VAR to KEY's value (a string without escapes, a
# number or a boolean) in JSON, a flat object written by the simulator or by this app;
# fails when KEY is absent or its value is anything else. It stands in for jq where a
# runner starts: each jq start costs ~35 ms of CPU, paid by every runner of a batch at
# the moment the host's CPUs boot the others.
sim_json_field() {
    local re="\"$3\"[[:space:]]*:[[:space:]]*(\"([^\"\\\\]*)\"|(-?[0-9]+|true|false))[[:space:]]*[,}]"
    [[ $2 =~ $re ]] || return 1
    printf -v "$1" '%s' "${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
}

sim_die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}
