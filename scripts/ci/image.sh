#!/usr/bin/env bash
# The API's container image (Dockerfile): build it, run it and check it, push it.
# The same script on a laptop (podman or docker) and in the workflows.
#
#   scripts/ci/image.sh build [TAG]    # IMAGE_MODEL=baked (default) | registry
#   scripts/ci/image.sh check [TAG]    # run it; /health, /ready, a /predict, non-root, size
#   scripts/ci/image.sh push TAG REPO  # push TAG as REPO:v<version> and REPO:<commit>
#
# Settings (environment): CONTAINER_ENGINE (podman, else docker), IMAGE_MODEL,
# RPS_IMAGE_ALIAS (the alias baked in, default production), RPS_API_BINARY (default: a
# release build of rps-api), and for a baked image what `rps models pull` needs
# (RPS_STORE or MLFLOW_TRACKING_URI, RPS_MODEL_NAME). `check` prints one JSON line.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

engine=${CONTAINER_ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
# An image repository must be lower case (ghcr.io/<owner>/<repo> from github.repository
# is not); a tag after the last ':' keeps its case.
lower_repo() {
  local ref=$1 repo=$1 tag=""
  if [[ ${ref##*/} == *:* ]]; then repo=${ref%:*} tag=:${ref##*:}; fi
  echo "${repo,,}$tag"
}
tag=$(lower_repo "${2:-rps-api:dev}")
# podman here: runc, and ulimits the default runtime cannot set on this kernel.
run_flags=()
build_flags=()
if [[ $engine == podman ]]; then
  # No systemd here for podman's health timers: `check` runs the HEALTHCHECK itself.
  run_flags=(--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --health-interval disable)
  build_flags=(--format docker --runtime runc)  # docker format keeps HEALTHCHECK
fi

build() {
  local model=${IMAGE_MODEL:-baked}
  local binary=${RPS_API_BINARY:-}
  if [[ -z $binary ]]; then
    # As `sam build` builds it (the workspace's features): the same binary, no compile.
    cargo build --release --locked --bin rps-api
    binary="$BIN_DIR/rps-api"
  fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  local root="$ctx/rootfs"
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/model"
  chmod 1777 "$root/tmp"
  # Where `rps-api alert-log` writes in compose.yaml (a volume): owned by the image's user.
  mkdir -p "$root/var/lib/rps"
  if [[ $(id -u) -eq 0 ]]; then chown 65532:65532 "$root/var/lib/rps"; else chmod 1777 "$root/var/lib/rps"; fi
  install -m 0755 "$binary" "$root/usr/local/bin/rps-api"
  # The shared libraries the binary links (no musl target here), at their own paths.
  ldd "$binary" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/:/sbin/nologin\nrps:x:65532:65532:rps:/:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nrps:x:65532:\n' >"$root/etc/group"
  local path_arg=/model/model.rpsb
  case $model in
    baked)
      # By alias from the registry, verified against the version's sha256 tag.
      [[ -x $RPS ]] || cargo build --release --locked -p rps-cli
      "$RPS" models pull "@${RPS_IMAGE_ALIAS:-production}" --output "$root/model/model.rpsb" --json \
        >"$ctx/pulled.json"
      echo "baked: $(cat "$ctx/pulled.json")"
      ;;
    registry) path_arg= ;;
    *) echo "IMAGE_MODEL must be baked or registry, not '$model'" >&2; return 2 ;;
  esac
  cp Dockerfile "$ctx/"
  "$engine" build "${build_flags[@]}" --build-arg "RPS_MODEL_PATH=$path_arg" \
    --build-arg "RPS_VERSION=$(git describe --tags --always 2>/dev/null || echo dev)" \
    -t "$tag" "$ctx"
}

check() {
  local port; port=$(free_port 0)
  name="rps-api-check-$$"
  # Host networking: no CNI needed, the same on docker and podman.
  "$engine" run -d --rm --name "$name" --network host -e "PORT=$port" "${run_flags[@]}" "$tag" >/dev/null
  trap '"$engine" rm -f "$name" >/dev/null 2>&1 || true' EXIT
  local base="http://127.0.0.1:$port" smoke
  smoke=$(SMOKE_WAIT=30 bash scripts/ci/smoke.sh "$base") || { "$engine" logs "$name" >&2; return 1; }
  local pid uid health size
  pid=$("$engine" inspect --format '{{.State.Pid}}' "$name")
  uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
  [[ $uid != 0 ]] || { echo "the container runs as root" >&2; return 1; }
  # The image's own HEALTHCHECK command, run in the container.
  if [[ $engine == podman ]]; then
    podman healthcheck run "$name" || { echo "the image's HEALTHCHECK failed" >&2; return 1; }
  else
    "$engine" exec "$name" /usr/local/bin/rps-api health || { echo "the image's HEALTHCHECK failed" >&2; return 1; }
  fi
  size=$("$engine" image inspect --format '{{.Size}}' "$tag")
  if [[ $engine == podman ]]; then
    health=$(podman image inspect --format '{{json .HealthCheck}}' "$tag")
  else
    health=$("$engine" image inspect --format '{{json .Config.Healthcheck}}' "$tag")
  fi
  # One JSON line, put together from values the tools printed: nothing here parses JSON.
  printf '{"image":"%s","uid":%s,"size_bytes":%s,"healthcheck":%s,"smoke":%s}\n' \
    "$tag" "$uid" "$size" "$health" "$smoke"
}

push() {
  # TAG → REPO:v<version> and REPO:<commit>. IMAGE_PUSH_TRANSPORT (e.g. dir:/tmp/out)
  # sends each to <transport>/<tag> instead of REPO's registry.
  local from=${1:?usage: image.sh push TAG REPO} repo=${2:?usage: image.sh push TAG REPO}
  from=$(lower_repo "$from") repo=$(lower_repo "$repo")
  local version sha
  version=v$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
  sha=$(git rev-parse HEAD)
  for t in "$version" "$sha"; do
    "$engine" tag "$from" "$repo:$t"
    if [[ -n ${IMAGE_PUSH_TRANSPORT:-} ]]; then
      "$engine" push "$repo:$t" "$IMAGE_PUSH_TRANSPORT/$t"
    else
      "$engine" push "$repo:$t"
    fi
    echo "pushed $repo:$t"
  done
}

case ${1:-} in
  build) build ;;
  check) check ;;
  push) push "${2:-}" "${3:-}" ;;
  *) echo "usage: scripts/ci/image.sh build|check [TAG] | push TAG REPO" >&2; exit 2 ;;
esac
