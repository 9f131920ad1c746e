#!/usr/bin/env bash
# Pre-job script of a github-runner self-hosted runner (ACTIONS_RUNNER_HOOK_JOB_STARTED).
#
# Before any step of a job runs, it asks the charm's repository policy service whether
# this job may run here. If the answer is not "yes" (204), it logs the reason, stops the
# runner listener and powers the instance off, and exits non-zero: the job's steps never
# run, and the single-use instance is gone.
#
# Placeholders, filled in (shell-quoted) by the charm when it builds the runner:
#   @@POLICY_URL@@      base URL of the policy service, e.g. http://10.216.1.1:8080
#   @@ONE_TIME_TOKEN@@  this runner's one-time token (64 hex characters); the service
#                       accepts it once, so a second job or a replay is refused
#
# The token is kept out of argv (curl reads the header from a pipe), since any process
# in the instance can read command lines.

set -u

POLICY_URL=@@POLICY_URL@@
ONE_TIME_TOKEN=@@ONE_TIME_TOKEN@@

log() {
    echo "policy check: $*" >&2
}

# Refuses the job: the reason goes to the job log, then the runner and the instance stop.
deny() {
    log "job refused: $*"
    pkill -INT -f Runner.Listener || true
    sudo -n systemctl poweroff || sudo -n poweroff || sudo -n shutdown -h now || log "could not power off"
    exit 1
}

event_json() {
    jq -er "$1" "${GITHUB_EVENT_PATH:?GITHUB_EVENT_PATH is not set}"
}

case "${GITHUB_EVENT_NAME:-}" in
    pull_request | pull_request_target)
        endpoint=pull_request
        # The head of a fork's pull request lives in the fork: take it from the event.
        source_repository=$(event_json '.pull_request.head.repo.full_name') || deny "no head repository in the event"
        commit_sha=$(event_json '.pull_request.head.sha') || deny "no head sha in the event"
        target_branch=$(event_json '.pull_request.base.ref') || deny "no base branch in the event"
        source_branch=$(event_json '.pull_request.head.ref') || deny "no head branch in the event"
        body=$(jq -cn \
            --arg repository_name "${GITHUB_REPOSITORY:-}" \
            --arg source_repository_name "$source_repository" \
            --arg target_branch_name "$target_branch" \
            --arg source_branch_name "$source_branch" \
            --arg commit_sha "$commit_sha" \
            '$ARGS.named') || deny "cannot build the request"
        ;;
    workflow_dispatch | push | schedule)
        endpoint=$GITHUB_EVENT_NAME
        body=$(jq -cn --arg repository_name "${GITHUB_REPOSITORY:-}" '$ARGS.named') || deny "cannot build the request"
        ;;
    *)
        endpoint=default
        body=$(jq -cn --arg repository_name "${GITHUB_REPOSITORY:-}" '$ARGS.named') || deny "cannot build the request"
        ;;
esac

# The runner runs hooks under `bash -e`: every failure below is caught, so it ends in deny.
response=$(mktemp) || deny "cannot create a temporary file"
curl_exit=0
status=$(curl --silent --show-error --noproxy '*' \
    --connect-timeout 10 --max-time 60 \
    --fail-with-body \
    --header @<(printf 'Authorization: Bearer %s\n' "$ONE_TIME_TOKEN") \
    --header 'Content-Type: application/json' \
    --data-binary "$body" \
    --output "$response" --write-out '%{http_code}' \
    "$POLICY_URL/$endpoint/check-run") || curl_exit=$?
reason=$(head -c 2000 "$response") || true
rm -f "$response"

if [ "$curl_exit" -ne 0 ] || [ "$status" != "204" ]; then
    deny "$endpoint check-run answered HTTP ${status:-none} (curl exit $curl_exit): ${reason:-no reason given}"
fi
log "$endpoint check passed"
