#!/usr/bin/env bash
# Runs Docker Compose on docker/docker-compose.yml under the project name "kvraft" (override:
# COMPOSE_PROJECT_NAME), with whichever Compose is installed: the `docker compose` plugin or
# the standalone `docker-compose`. `up` first builds the image (docker/build-image.sh) if it
# is missing.
#
#   docker/compose.sh up -d      # start the three nodes
#   docker/compose.sh ps         # list them
#   docker/compose.sh logs node1
#   docker/compose.sh down -v    # stop and delete them, with their data
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "compose.sh: neither \`docker compose\` nor \`docker-compose\` is installed" >&2
    exit 1
fi

if [ "${1:-}" = up ] && ! docker image inspect "${KVRAFT_IMAGE:-kvraft:dev}" >/dev/null 2>&1; then
    "$here/build-image.sh" --tag "${KVRAFT_IMAGE:-kvraft:dev}"
fi

exec "${compose[@]}" --project-name "${COMPOSE_PROJECT_NAME:-kvraft}" \
    --file "$here/docker-compose.yml" "$@"
