#!/usr/bin/env bash
# make demo: the whole pipeline on the embedded local default: offline (a replay of
# Open-Meteo from the shipped sample) unless OPEN_METEO_ARCHIVE_URL points elsewhere,
# tracked in a local MLflow server unless MLFLOW_TRACKING_URI points elsewhere.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export RPS_STORE="${RPS_STORE:-$STATE/store}"
export RPS_MODEL_CACHE="${RPS_MODEL_CACHE:-$STATE/model-cache}"
trap 'stop_bg replay' EXIT

ensure_mlflow

if [[ -z "${OPEN_METEO_ARCHIVE_URL:-}" ]]; then
  rm -f "$STATE/run/replay.port"
  start_bg replay "$RPS" sample serve --port 0 --port-file "$STATE/run/replay.port"
  wait_for_file "$STATE/run/replay.port" 10
  port=$(cat "$STATE/run/replay.port")
  export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$port/v1/archive"
  export OPEN_METEO_FORECAST_URL="http://127.0.0.1:$port/v1/forecast"
  echo "Open-Meteo: offline replay of the shipped sample year on http://127.0.0.1:$port"
  range=(--start "${RPS_DEMO_START:-2023-01-01}" --end "${RPS_DEMO_END:-2023-12-31}")
else
  echo "Open-Meteo: $OPEN_METEO_ARCHIVE_URL"
  range=()
  [[ -n "${RPS_DEMO_START:-}" ]] && range=(--start "$RPS_DEMO_START" --end "${RPS_DEMO_END:?set RPS_DEMO_END too}")
fi
echo "Store: $RPS_STORE"

# Point the project's DVC remote at the local one, unless the user configured their own.
if [[ $RPS_STORE != s3://* && -z "${RPS_DVC_REMOTE:-}" ]]; then
  marker="# written by make demo"
  if [[ ! -f .dvc/config.local ]] || grep -q "$marker" .dvc/config.local; then
    printf '%s\n[\x27remote "storage"\x27]\n    url = %s\n' "$marker" "$RPS_STORE/dvc" >.dvc/config.local
    echo "DVC: remote 'storage' → $RPS_STORE/dvc (in .dvc/config.local)"
  fi
fi
echo

"$RPS" pipeline run "${range[@]}" --dvc-file data.dvc
echo
"$RPS" models list
echo
"$RPS" trace @candidate

cat <<MSG

data.dvc    data version $(awk '/md5:/ {print $NF; exit}' data.dvc): \`dvc pull\` or \`rps data pull data.dvc\` restores it
MLflow UI:  $MLFLOW_TRACKING_URI  (still running; \`make down\` stops it)
MSG
