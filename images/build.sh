#!/usr/bin/env bash
# make images-build: build the three step images with buildah (`buildah bud --isolation chroot`:
# no daemon, no cgroups), labelled with the git commit and the lock's sha256.
#
# Registry bases (python:3.11.14-slim-bookworm, vllm/vllm-openai:v0.32.0) cannot be pulled on
# machines without registry access. STANDIN=1 (the default) builds a local stand-in and passes it
# with `--from` (which replaces the Dockerfile's FROM; every other instruction runs as written):
#   * python: Debian bookworm from debootstrap (Python 3.11) with pip; it stands in for the
#     official python image (whose pip also installs system-wide);
#   * vllm: that python stand-in plus CPU torch 2.13.0 (vLLM 0.32.0's torch pin) and the part of
#     vLLM's pins (images/generate/base-pins.txt) that the generate lock and xdetox need, so the
#     Dockerfile's `pip check` checks the same pins it will meet on vLLM's image. vLLM itself and
#     its CUDA libraries are not in the stand-in.
# torch's CUDA wheel (several GB) is replaced by the CPU wheel from PIP_FIND_LINKS (a pip.conf
# mounted into the build); every other package is what the lock pins, from the index.
# STANDIN=0 builds the Dockerfiles over their real bases (a machine that can pull them).
#
# Usage: images/build.sh [train|score|generate ...]   (default: all three)   TAG=dev
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="${TAG:-dev}"
STANDIN="${STANDIN:-1}"
WORK="${WORK:-${TMPDIR:-/tmp}/xdetox-images-build}"
WHEELS="${PIP_FIND_LINKS:-/opt/wheels}"
PY_STANDIN=localhost/xdetox-standin-python:bookworm
VLLM_STANDIN=localhost/xdetox-standin-vllm:0.32.0
IMAGES=("$@")
[[ ${#IMAGES[@]} -gt 0 ]] || IMAGES=(train score generate)

command -v buildah >/dev/null || { echo "images-build: buildah not found (apt-get install buildah)" >&2; exit 2; }
mkdir -p "$WORK"
commit="$(git -C "$ROOT" rev-parse HEAD)"
git -C "$ROOT" diff --quiet HEAD -- images xdetox pyproject.toml || commit="$commit-dirty"

# pip inside the build: the host's CA bundle and the local wheel directory (CPU torch)
cat > "$WORK/pip.conf" <<EOF
[global]
cert = /etc/ssl/certs/ca-certificates.crt
find-links = $WHEELS
EOF
VOLS=(--volume "$WORK/pip.conf:/etc/pip.conf:ro" --volume /etc/ssl/certs:/etc/ssl/certs:ro)
[[ -d "$WHEELS" ]] && VOLS+=(--volume "$WHEELS:$WHEELS:ro")

have() { buildah inspect --type image "$1" >/dev/null 2>&1; }

python_standin() {
  have "$PY_STANDIN" && return
  local rootfs="$WORK/rootfs"
  if [[ ! -x "$rootfs/usr/bin/python3" ]]; then
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates,passwd \
      bookworm "$rootfs" http://deb.debian.org/debian
  fi
  rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED  # as in the python image: pip installs system-wide
  ln -sf python3 "$rootfs/usr/bin/python"
  local ctr
  ctr="$(buildah from scratch)"
  buildah add --quiet "$ctr" "$rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet "$ctr" "$PY_STANDIN" >/dev/null
  buildah rm "$ctr" >/dev/null
}

vllm_standin() {
  have "$VLLM_STANDIN" && return
  "${PYTHON:-python3}" "$ROOT/images/standin_pins.py" > "$WORK/vllm-standin-pins.txt"
  cat > "$WORK/Containerfile.vllm-standin" <<EOF
FROM $PY_STANDIN
COPY vllm-standin-pins.txt /tmp/pins.txt
RUN python3 -m pip install --no-cache-dir --no-deps -r /tmp/pins.txt
EOF
  buildah bud --isolation chroot --pull=never "${VOLS[@]}" -f "$WORK/Containerfile.vllm-standin" \
    -t "$VLLM_STANDIN" "$WORK"
}

for name in "${IMAGES[@]}"; do
  t0=$SECONDS
  lock_digest="sha256:$(sha256sum "$ROOT/images/$name/requirements.lock" | cut -c1-64)"
  args=(--isolation chroot -f "$ROOT/images/$name/Dockerfile" -t "localhost/xdetox-$name:$TAG"
        --build-arg "GIT_COMMIT=$commit" --build-arg "LOCK_DIGEST=$lock_digest" "${VOLS[@]}")
  if [[ "$STANDIN" == 1 ]]; then
    python_standin
    if [[ "$name" == generate ]]; then vllm_standin; base="$VLLM_STANDIN"; else base="$PY_STANDIN"; fi
    args+=(--pull=never --from "$base")
  fi
  buildah bud "${args[@]}" "$ROOT"
  labels="$(buildah inspect --type image --format '{{.OCIv1.Config.Labels}}' "localhost/xdetox-$name:$TAG")"
  echo "images-build: xdetox-$name:$TAG in $((SECONDS - t0))s; labels $labels"
  [[ "$labels" == *"$commit"* && "$labels" == *"$lock_digest"* ]] || {
    echo "images-build: xdetox-$name lacks its commit/lock-digest labels" >&2; exit 1; }
  # Run in the built image (buildah run, chroot: no cgroups needed) what its templates import,
  # as the image's user. vLLM is not in the stand-in: the generate image imports everything else.
  modules="$(PYTHONPATH="$ROOT" "${PYTHON:-python3}" "$ROOT/images/check.py" --modules "$name")"
  [[ "$STANDIN" == 1 && "$name" == generate ]] && modules="${modules//vllm/}"
  ctr="$(buildah from --pull=never "localhost/xdetox-$name:$TAG")"
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  # shellcheck disable=SC2086  # one module per word
  buildah run --isolation chroot "$ctr" -- python3 -c \
    'import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; print("imports ok:", len(sys.argv) - 1)' $modules
  buildah run --isolation chroot "$ctr" -- xdetox step --help >/dev/null
  buildah rm "$ctr" >/dev/null
  trap - EXIT
  echo "images-build: xdetox-$name: every template's modules import in the image ($((SECONDS - t0))s)"
done
