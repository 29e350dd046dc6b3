#!/usr/bin/env bash
# Derives a seccomp profile that allows io_uring from the container runtime's
# default profile, so nothing else is loosened.
#
#   deploy/container/make-seccomp-profile.sh default.json > seccomp-io_uring.json
#
# default.json: moby's profiles/seccomp/default.json for your Docker version,
# or `podman info`'s seccompProfilePath for podman. Needs jq.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DEFAULT_PROFILE.json" >&2; exit 2; }
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)" >&2; exit 2; }
jq '.syscalls += [{"names": ["io_uring_setup", "io_uring_enter", "io_uring_register"], "action": "SCMP_ACT_ALLOW"}]' "$1"
