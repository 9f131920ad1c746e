#!/bin/bash
# Start script of a single-use runner instance, run by github-runner.service, which the
# charm starts once it has pushed this and the other files.
# It unpacks the runner application, registers (JIT config, or a registration token on
# GitHub servers without JIT), runs the runner for one job as the unprivileged user, then
# powers the instance off: the instance is ephemeral, so LXD deletes it when it stops.
# Credentials reach the runner through ACTIONS_RUNNER_INPUT_* variables, never argv.
# The charm fills in the runner's directory, user, tarball, URL, name, labels and group
# (shell-quoted) when it builds the runner.
set -u
runner_dir=@@RUNNER_DIR@@
runner_user=@@RUNNER_USER@@
tarball=@@APP_TARBALL@@
log=/var/log/github-runner.log
exec >>"$log" 2>&1

power_off() {
    echo "$(date -u +%FT%TZ) runner ended ($1); powering off"
    systemctl poweroff || poweroff -f
}

cd "$runner_dir" || power_off "no runner directory"
# Unpacked as the runner user (so no chown of thousands of files) while DHCP finishes.
runuser -u "$runner_user" -- tar -xzf "$tarball" -C "$runner_dir" &
unpack=$!
# We start while the instance boots: a runner without a route would only waste its
# connection retries. Polled with shell builtins: `ip` and `grep` each time cost more
# CPU than the whole wait, at a moment the host's CPUs boot the other runners.
has_default_route() {
    local destination
    while read -r _ destination _; do
        [ "$destination" = 00000000 ] && return 0
    done </proc/net/route
    return 1
}
for ((i = 0; i < 2400; i++)); do
    has_default_route && break
    sleep 0.05
done
has_default_route || power_off "no network after 120s"
wait "$unpack" || power_off "cannot unpack the runner application"
rm -f "$tarball"
if [ -s .jitconfig ]; then
    ACTIONS_RUNNER_INPUT_JITCONFIG=$(<.jitconfig)
    export ACTIONS_RUNNER_INPUT_JITCONFIG
    rm -f .jitconfig
    runuser -u "$runner_user" -- ./run.sh
    power_off "exit $?"
elif [ -s .registration-token ]; then
    ACTIONS_RUNNER_INPUT_TOKEN=$(<.registration-token)
    export ACTIONS_RUNNER_INPUT_TOKEN
    rm -f .registration-token
    runuser -u "$runner_user" -- ./config.sh --url @@GITHUB_URL@@ \
        --name @@RUNNER_NAME@@ --labels @@LABELS@@ @@GROUP_ARG@@ \
        --ephemeral --unattended --replace || power_off "registration failed"
    unset ACTIONS_RUNNER_INPUT_TOKEN
    runuser -u "$runner_user" -- ./run.sh
    power_off "exit $?"
else
    power_off "no credential"
fi
