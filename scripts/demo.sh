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

# A staging API that serves whatever @staging is (re-checked every second): the
# release flow deploys each candidate there and smoke-tests it before promoting.
stop_bg staging
staging_port=$(free_port 8081)
RPS_MODEL_ALIAS=staging RPS_MODEL_REFRESH_SECS=1 start_bg staging "$RPS" serve --port "$staging_port"
wait_http "http://127.0.0.1:$staging_port/health" 30 || { tail -20 "$STATE/run/staging.log"; exit 1; }
export RPS_STAGING_URL="http://127.0.0.1:$staging_port"
echo "Staging API: $RPS_STAGING_URL (serves @staging)"

echo
echo "== Release 1: a year of data → train → @staging → gates → promote"
"$RPS" pipeline promote "${range[@]}"
"$RPS" data version --output data.dvc

echo
echo "== Release 2: six summer weeks only; the gates must refuse it"
status=0
"$RPS" pipeline promote --start 2023-06-01 --end 2023-07-15 || status=$?
if [[ $status -ne $RPS_EXIT_PROMOTION_GATE_FAILED ]]; then
  echo "expected the gates to refuse the summer-only model (exit $RPS_EXIT_PROMOTION_GATE_FAILED), got exit $status" >&2
  exit 1
fi
echo "(refused with exit code $RPS_EXIT_PROMOTION_GATE_FAILED, as a CI job would see it; production did not move)"
stop_bg staging
unset RPS_STAGING_URL

echo
echo "== Your own fleet: the three locations of data/locations.json, each its own model, two at a time"
RPS_LOCATIONS="$ROOT/data/locations.json" "$RPS" pipeline promote "${range[@]}"
echo "== The fleet's latest hours: one batched Open-Meteo call for the three, each validated"
RPS_LOCATIONS="$ROOT/data/locations.json" "$RPS" ingest --live
RPS_LOCATIONS="$ROOT/data/locations.json" "$RPS" validate >/dev/null

echo
"$RPS" models list
echo
"$RPS" trace @production

# Fresh observations for the API's /forecast (offline, the replay puts the recorded year
# onto today's calendar), then the API itself, in the background.
echo
"$RPS" ingest --live
"$RPS" validate >/dev/null
stop_bg api
api_port=$(free_port 8080)
RPS_MODEL_ALIAS="${RPS_MODEL_ALIAS:-production}" RPS_MODEL_REFRESH_SECS=5 RPS_FORECAST_LOG_FLUSH_SECS=2 \
  start_bg api "$RPS" serve --port "$api_port"
wait_http "http://127.0.0.1:$api_port/ready" 60 || { tail -20 "$STATE/run/api.log"; exit 1; }
echo "http://127.0.0.1:$api_port" >"$STATE/run/api.uri"
# One API for every location of the fleet: models load on first use.
stop_bg fleet-api
fleet_port=$(free_port 8090)
RPS_LOCATIONS="$ROOT/data/locations.json" RPS_MODEL_ALIAS="${RPS_MODEL_ALIAS:-production}" \
  start_bg fleet-api "$RPS" serve --port "$fleet_port"
wait_http "http://127.0.0.1:$fleet_port/ready" 60 || { tail -20 "$STATE/run/fleet-api.log"; exit 1; }

# The loop: a client asks the API about the last day and a half of observed hours (the
# API samples its answers into the forecast log), and the verification scores them
# against what was observed, issues the scheduled forecast and says whether a retrain
# is needed. The page's "How the forecasts did" shows it.
echo
echo "== Closing the loop: /predict answers scored against what was observed"
"$RPS" sample ask "http://127.0.0.1:$api_port"
sleep 3
"$RPS" verify

cat <<MSG

data.dvc    data version $(awk '/md5:/ {print $NF; exit}' data.dvc): \`dvc pull\` or \`rps data pull data.dvc\` restores it
MLflow UI:  $MLFLOW_TRACKING_URI
Web page:   http://127.0.0.1:$api_port/   (the API: /predict, /forecast, /model, /verification, /metrics, /openapi.json)
Fleet:      http://127.0.0.1:$fleet_port/   (every location of data/locations.json: the page's picker, /locations, "location" in /predict)
Verify:     \`$RPS verify\` hourly (after \`rps ingest --live\` and \`rps validate\`) closes the loop; --retrain acts on it
Both keep running; \`make down\` stops them.
MSG
