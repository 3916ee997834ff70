#!/usr/bin/env bash
# Build the image with podman and run three worker containers against one Azurite task hub:
# partitions spread over the three, orchestrations complete with activities on every container,
# `podman stop` of one (SIGTERM) exits 0 and hands its partitions to the others.
#
#   sudo apt-get install podman runc            # Debian's packages
#   infra/podman-smoke.sh                        # run from anywhere; uses the repo's .venv for Azurite
#
# BASE_IMAGE (default python:3.11-slim-bookworm) must be pullable. Where no container registry is
# reachable (as on the project's build machines), set BASE_IMAGE=localhost/python:3.11-slim-bookworm
# and LOCAL_BASE=1: the script then makes that image from Debian's packages with debootstrap
# (bookworm's python3 is 3.11, as in the official image). Not part of `./dev.sh test`: the base
# image alone takes minutes to make. docs/deploy.md shows a run.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
IMAGE="${IMAGE:-localhost/durable-azstorage:smoke}"
HUB="${HUB:-PodmanHub}"
RUNTIME="${RUNTIME:-runc}"   # crun 1.8 (bookworm) refuses hosts with cgroup v1/hybrid mounts
PODMAN=(podman --runtime "$RUNTIME")
# Podman raises RLIMIT_NOFILE/NPROC to 1048576 by default; without CAP_SYS_RESOURCE (as in the
# project's sandboxed machines) that fails with "setrlimit ... operation not permitted". Lowering works.
ULIMITS=(--ulimit nofile=16384:16384 --ulimit nproc=4096:4096)
WORK="$(mktemp -d)"

cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    for n in 1 2 3; do echo "--- durable-w$n" >&2; "${PODMAN[@]}" logs --tail 20 "durable-w$n" >&2 || true; done
  fi
  for n in 1 2 3; do "${PODMAN[@]}" rm -f "durable-w$n" >/dev/null 2>&1 || true; done
  [ -n "${AZURITE_PID:-}" ] && kill "$AZURITE_PID" 2>/dev/null && wait "$AZURITE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${LOCAL_BASE:-0}" = 1 ] && ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  echo "making $BASE_IMAGE with debootstrap (a few minutes)" >&2
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log"
  # The host's extra CAs (a TLS-inspecting egress proxy, if any) so pip inside the build reaches PyPI.
  cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$WORK/rootfs" update-ca-certificates >/dev/null
  rm -f "$WORK"/rootfs/usr/lib/python3*/EXTERNALLY-MANAGED   # pip installs system-wide, as in python:slim
  rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/archives/*.deb
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
fi

echo "building $IMAGE" >&2
"${PODMAN[@]}" build --format docker --network host --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" . >"$WORK/build.log" \
  || { tail -20 "$WORK/build.log"; exit 1; }

.venv/bin/durable-azstorage azurite --in-memory >"$WORK/azurite.out" 2>&1 &
AZURITE_PID=$!
for _ in $(seq 1 120); do grep -q "^DefaultEndpointsProtocol" "$WORK/azurite.out" && break; sleep 0.5; done
CONN="$(grep "^DefaultEndpointsProtocol" "$WORK/azurite.out")"

for n in 1 2 3; do
  # Host networking: Azurite listens on the host's loopback; each container gets its own probe port.
  "${PODMAN[@]}" run -d --name "durable-w$n" --network host --read-only "${ULIMITS[@]}" \
    -v "$PWD/examples/worker_app:/app:ro" \
    -e AzureWebJobsStorage="$CONN" -e WORKER_NAME="durable-w$n" -e DURABLE_AZSTORAGE_HEALTH_PORT="1808$n" \
    "$IMAGE" worker --app app:register --task-hub-name "$HUB" --worker-id "durable-w$n" \
    --max-polling-interval 1 --lease-interval 10 >/dev/null
done

.venv/bin/python tests/deploy/podman_smoke.py "$CONN" "$HUB" "${PODMAN[*]}"
