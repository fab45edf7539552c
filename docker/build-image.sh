#!/usr/bin/env bash
# Builds the kvraft container image FROM scratch: the `kvraft` binary plus the shared libraries
# it loads (as `ldd` lists them, the dynamic loader included, each at the path it is loaded
# from). Nothing is pulled, so this works on a machine with no registry access.
#
# Usage: docker/build-image.sh [--binary PATH] [--tag TAG] [--skip-build]
#   --binary PATH   put this binary in the image instead of target/release/kvraft (no cargo
#                   build); e.g. the test binary's CARGO_BIN_EXE_kvraft
#   --skip-build    use target/release/kvraft as it is (no cargo build)
#   --tag TAG       image tag [default: $KVRAFT_IMAGE, else kvraft:dev]
#   --quiet         print only the image id (docker build -q)
#
# The image: ENTRYPOINT ["/kvraft"], CMD ["server"], KVRAFT_DATA_DIR=/data (a VOLUME), NO_COLOR=1
# (plain logs for `docker logs`), and
# EXPOSE 7000. So `docker run kvraft:dev` starts a server configured by KVRAFT_ID and
# KVRAFT_CLUSTER, and `docker run --rm kvraft:dev --help` prints the usage.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
binary=""
skip_build=0
quiet=0
tag="${KVRAFT_IMAGE:-kvraft:dev}"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --binary=*) binary=${1#--binary=}; shift ;;
        --tag) tag=${2:?--tag needs a value}; shift 2 ;;
        --tag=*) tag=${1#--tag=}; shift ;;
        --skip-build) skip_build=1; shift ;;
        --quiet|-q) quiet=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

log() { if [ "$quiet" = 0 ]; then echo "build-image.sh: $*" >&2; fi; }

if ! command -v docker >/dev/null 2>&1; then
    echo "build-image.sh: the docker command is not installed" >&2
    exit 1
fi

if [ -z "$binary" ]; then
    binary="$repo/target/release/kvraft"
    if [ "$skip_build" = 0 ]; then
        log "cargo build --release -p kvraft"
        quiet_flag=()
        if [ "$quiet" = 1 ]; then quiet_flag=(--quiet); fi
        (cd "$repo" && cargo build --release -p kvraft "${quiet_flag[@]}") >&2
    fi
fi
if [ ! -x "$binary" ]; then
    echo "build-image.sh: no executable at $binary (build it, or pass --binary)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kvraft-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
context="$work/context"
rootfs="$context/rootfs"
mkdir -p "$rootfs"

# The binary at /kvraft. A hard link when possible (same file system), else a copy.
ln "$binary" "$rootfs/kvraft" 2>/dev/null || cp "$binary" "$rootfs/kvraft"

# Every library ldd names, and the loader, at the path the binary will look for it
# (symbolic links followed: the image gets the real file under the link's name).
# ldd lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
# "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)" (in the kernel: skipped).
if ! deps=$(ldd "$binary" 2>&1); then
    case "$deps" in
        *"not a dynamic executable"*|*"statically linked"*) deps="" ;;
        *) echo "build-image.sh: ldd $binary failed: $deps" >&2; exit 1 ;;
    esac
fi
libraries=()
while read -r line; do
    case "$line" in
        *"=> not found"*) echo "build-image.sh: missing library: $line" >&2; exit 1 ;;
        *"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
        /*) path=${line%% (*} ;;
        *) continue ;;
    esac
    libraries+=("$path")
done <<<"$deps"
for path in "${libraries[@]}"; do
    mkdir -p "$rootfs$(dirname "$path")"
    cp -L "$path" "$rootfs$path"
    log "library $path"
done

# Name resolution without surprises: the hosts file (which Docker writes) before DNS.
mkdir -p "$rootfs/etc" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"

cat >"$context/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV KVRAFT_DATA_DIR=/data NO_COLOR=1
VOLUME /data
EXPOSE 7000
ENTRYPOINT ["/kvraft"]
CMD ["server"]
EOF

# Without the buildx plugin, BuildKit cannot run: use the classic builder (scratch needs no
# pull either way).
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
fi

# The image the tag names now, to delete once the tag moves (else every rebuild with a new
# binary leaves an untagged image behind).
previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)

log "docker build -t $tag ($(du -sh "$rootfs" | cut -f1) of files)"
build=(docker build --pull=false --tag "$tag"
    --label "org.opencontainers.image.title=kvraft")
if [ "$quiet" = 1 ]; then
    # The classic builder prints a deprecation notice on stderr even with -q.
    "${build[@]}" --quiet "$context" 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
else
    "${build[@]}" "$context" >&2
    log "built $tag; try: docker run --rm $tag --help"
fi

current=$(docker image inspect --format '{{.Id}}' "$tag")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    # Fails harmlessly if another tag or a container still uses it.
    if docker image rm "$previous" >/dev/null 2>&1; then
        log "removed the previous $tag image ${previous#sha256:}"
    fi
fi
