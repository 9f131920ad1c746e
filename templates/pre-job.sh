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

case "${GITHUB_EVENT_NAME:-}" in
    pull_request | pull_request_target)
        endpoint=pull_request
        # The head of a fork's pull request lives in the fork: take it from the event.
        # One jq run builds the body; a missing value fails it rather than sending "null".
        body=$(jq -ce --arg repository_name "${GITHUB_REPOSITORY:-}" '
            .pull_request as $pr
            | {repository_name: $repository_name,
               source_repository_name: $pr.head.repo.full_name,
               target_branch_name: $pr.base.ref,
               source_branch_name: $pr.head.ref,
               commit_sha: $pr.head.sha}
            | if any(.[]; . == null) then error("the event has no pull request head or base") else . end
            ' "${GITHUB_EVENT_PATH:-/nonexistent}") || deny "cannot read the pull request from the event file"
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
