# Sourced by the bench scripts: starts a fresh daemon ($BIN, default the release build) on
# loopback with no destinations, sets DAEMON (its pid), ADDR (host:port) and WORK (a temporary
# directory removed at exit), samples its RSS every second into $WORK/rss, and defines
# daemon_report (its CPU seconds, peak RSS, bytes written and the data directory's size, read
# $SETTLE seconds later so the checkpoint that follows the load is in them).
BIN=${BIN:-target/release/audiencesync}
WORK=$(mktemp -d); trap 'kill $DAEMON 2>/dev/null && wait $DAEMON 2>/dev/null; rm -rf "$WORK"' EXIT
cat > "$WORK/cfg.toml" <<CFG
destinations = []
[server]
listen = "127.0.0.1:0"
[storage]
data_dir = "$WORK/data"
[metrics]
listen = "127.0.0.1:0"
[web]
listen = ""
CFG
"$BIN" serve --config "$WORK/cfg.toml" > "$WORK/daemon.out" 2> "$WORK/daemon.log" & DAEMON=$!
until ADDR=$(grep -o 'listening on [0-9.:]*' "$WORK/daemon.out" | cut -d' ' -f3) && [ -n "$ADDR" ]; do sleep 0.2; done
( while kill -0 $DAEMON 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$DAEMON/status; sleep 1; done ) > "$WORK/rss" &
daemon_report() {
  sleep "${SETTLE:-0}"
  echo "daemon CPU $(awk '{printf "%.1f", ($14+$15)/100}' /proc/$DAEMON/stat) s"
  sort -n "$WORK/rss" | tail -1 | awk '{printf "daemon peak RSS %.0f MiB\n", $1/1024}'
  echo "daemon wrote $(awk '/^write_bytes/{printf "%.0f", $2/1048576}' /proc/$DAEMON/io) MiB; data directory $(du -sm "$WORK/data" | cut -f1) MiB"
  local m; m=$(grep -o 'metrics on [0-9.:]*' "$WORK/daemon.out" | cut -d' ' -f3)
  curl -s "http://$m/metrics" | awk '/^audiencesync_checkpoint_bytes_total /{b=$2} /^audiencesync_events_ingested_total /{e=$2}
    END{if (e > 0) printf "checkpoints wrote %.0f MiB: %.0f bytes per event applied\n", b/1048576, b/e}'
}
