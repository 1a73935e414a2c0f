#!/usr/bin/env bash
# Host set-up for the deploy tests (run by .ci/run after .ci/apt.d/deploy.txt is installed):
#  1. podman with runc: crun fails on this VM's cgroups; no default ulimits, no pids limit.
#  2. a local JRE base image, localhost/dreamcluster-base:17 (Debian bookworm minbase + OpenJDK 17
#     JRE, made by mmdebstrap from the Debian mirror apt already uses), so image builds in the tests
#     need no registry: they build deploy/docker/Dockerfile with --build-arg BASE=localhost/dreamcluster-base:17.
# Tests that need podman or this image skip with an assumption naming what is missing.
set -euo pipefail
command -v podman >/dev/null || { echo "podman.sh: podman not installed; container tests will skip"; exit 0; }
mkdir -p /etc/containers
conf=/etc/containers/containers.conf
if ! grep -q 'runtime = "runc"' "$conf" 2>/dev/null; then
  cat >> "$conf" <<'CONF'
[containers]
default_ulimits = []
pids_limit = 0

[engine]
runtime = "runc"
CONF
fi
base=localhost/dreamcluster-base:17
if ! podman image exists "$base"; then
  command -v mmdebstrap >/dev/null || { echo "podman.sh: mmdebstrap not installed; no $base"; exit 0; }
  tar=${DREAMCLUSTER_BASE_TAR:-}
  if [ -n "$tar" ] && [ -f "$tar" ]; then
    podman import --change 'CMD ["/bin/bash"]' "$tar" "$base" >/dev/null
    echo "podman.sh: imported $base from $tar"
    exit 0
  fi
  tar=$(mktemp --suffix=.tar)
  trap 'rm -f "$tar"' EXIT
  # (excluding /usr/share/man breaks openjdk's postinst: its alternatives point at the man pages)
  mmdebstrap --quiet --variant=minbase --include=openjdk-17-jre-headless,ca-certificates \
    bookworm "$tar" http://deb.debian.org/debian
  podman import --change 'CMD ["/bin/bash"]' "$tar" "$base" >/dev/null
  echo "podman.sh: built $base"
fi
