#!/usr/bin/env bash
# Pre-job script of a github-runner self-hosted runner (ACTIONS_RUNNER_HOOK_JOB_STARTED).
#
# Before any step of a job runs, it asks the charm's repository policy service whether
# this job may run here. If the answer is not "yes" (204), it logs the reason, stops the
# runner listener and powers the instance off, and exits non-zero: the job's steps never
# run, and the single-use instance is gone.
#
# Filled in (shell-quoted) by the charm when it builds the runner:
#   POLICY_URL          base URL of the policy service, e.g. http://10.216.1.1:8080
#   ONE_TIME_TOKEN      this runner's one-time token (64 hex characters); the service
#                       accepts it once, so a second job or a replay is refused
#   TOKEN_RUNNER_NAME   the name the token was issued for; the service refuses the
#                       token from any other runner
#
# The token and the name are kept out of argv (curl reads the headers from a pipe),
# since any process in the instance can read command lines.
#
# Which check: what the event's payload carries decides, not only its name. Any event
# that carries a pull request (pull_request, pull_request_target, pull_request_review,
# pull_request_review_comment, and an issue_comment on a pull request) gets the
# pull-request check, because its job may run that pull request's code; the others
# get their repository check, and the rest the default one, which refuses events that
# name or carry a pull request.

set -u

POLICY_URL='http://10.216.1.1:8080'
ONE_TIME_TOKEN='abababababababababababababababababababababababababababababababab'
TOKEN_RUNNER_NAME='github-runner-0-0123abcd'

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

event_name=${GITHUB_EVENT_NAME:-}
event_file=${GITHUB_EVENT_PATH:-/nonexistent}
# Without the payload nobody can tell whether the job runs a pull request's code.
carries=$(jq -r '
    if (.pull_request | type) == "object" then "pull_request"
    elif (.issue.pull_request | type) == "object" then "issue_pull_request"
    else "none" end' "$event_file") || deny "cannot read the event file of this $event_name job"

case "$carries:$event_name" in
    pull_request:*)
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
            ' "$event_file") || deny "cannot read the pull request from the event file"
        ;;
    issue_pull_request:*)
        # A comment on a pull request carries only its number: the service looks the
        # pull request up and checks its head as for the pull request's own events.
        endpoint=pull_request
        body=$(jq -ce --arg repository_name "${GITHUB_REPOSITORY:-}" '
            {repository_name: $repository_name, pull_request_number: .issue.number}
            | if (.pull_request_number | type) != "number" then error("no pull request number") else . end
            ' "$event_file") || deny "cannot read the pull request number from the event file"
        ;;
    none:pull_request*)
        deny "a $event_name event without its pull request in the event file"
        ;;
    none:workflow_dispatch | none:push | none:schedule)
        endpoint=$event_name
        body=$(jq -cn --arg repository_name "${GITHUB_REPOSITORY:-}" '$ARGS.named') || deny "cannot build the request"
        ;;
    *)
        endpoint=default
        body=$(jq -cn --arg repository_name "${GITHUB_REPOSITORY:-}" --arg event_name "$event_name" \
            '$ARGS.named + {carries_pull_request: false}') || deny "cannot build the request"
        ;;
esac

# The runner runs hooks under `bash -e`: every failure below is caught, so it ends in deny.
response=$(mktemp) || deny "cannot create a temporary file"
curl_exit=0
status=$(curl --silent --show-error --noproxy '*' \
    --connect-timeout 10 --max-time 60 \
    --fail-with-body \
    --header @<(printf 'Authorization: Bearer %s\nX-Runner-Name: %s\n' "$ONE_TIME_TOKEN" "$TOKEN_RUNNER_NAME") \
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
