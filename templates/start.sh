#!/bin/bash
# Start script of a single-use runner instance; the charm pushes it to
# /opt/github-runner/start.sh and starts it as a transient systemd unit.
# It registers (JIT config, or a registration token on GitHub servers without JIT),
# runs the runner for one job as the unprivileged user, then powers the instance off:
# the instance is ephemeral, so LXD deletes it when it stops.
# Placeholders filled by the charm: @@RUNNER_DIR@@ @@RUNNER_USER@@ @@GITHUB_URL@@
# @@RUNNER_NAME@@ @@LABELS@@ @@GROUP_ARG@@
set -u
runner_dir=@@RUNNER_DIR@@
runner_user=@@RUNNER_USER@@
log=/var/log/github-runner.log
exec >>"$log" 2>&1

power_off() {
    echo "$(date -u +%FT%TZ) runner ended ($1); powering off"
    systemctl poweroff || poweroff -f
}

cd "$runner_dir" || power_off "no runner directory"
# The charm starts us before DHCP may be done: a runner without a route would only waste
# its connection retries.
for _ in $(seq 1200); do
    ip -4 route show default | grep -q . && break
    sleep 0.1
done
ip -4 route show default | grep -q . || power_off "no network after 120s"
if [ -s .jitconfig ]; then
    config=$(cat .jitconfig)
    rm -f .jitconfig
    runuser -u "$runner_user" -- ./run.sh --jitconfig "$config"
    power_off "exit $?"
elif [ -s .registration-token ]; then
    token=$(cat .registration-token)
    rm -f .registration-token
    runuser -u "$runner_user" -- ./config.sh --url @@GITHUB_URL@@ --token "$token" \
        --name @@RUNNER_NAME@@ --labels @@LABELS@@ @@GROUP_ARG@@ \
        --ephemeral --unattended --replace || power_off "registration failed"
    unset token
    runuser -u "$runner_user" -- ./run.sh
    power_off "exit $?"
else
    power_off "no credential"
fi
