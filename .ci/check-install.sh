#!/usr/bin/env bash
# CI: what a production install gets. A fresh copy with `npm ci --omit=dev` must `npm start` (sources via tsx, no
# TypeScript toolchain), and the `npm pack` tarball (dist/ built by prepack) must install and serve from dist/ alone.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export VEIL_MASTER_KEY
VEIL_MASTER_KEY=$(node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64"))')
npm_flags=(--no-audit --no-fund --prefer-offline)

free_port() { node -e 's=require("node:net").createServer().listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})'; }

# Starts "$@" in the background, waits for its listening line, checks gRPC health over the Connect protocol
# (plain curl) and /healthz when the server has it, then SIGTERMs it and expects a clean drain and exit 0.
serve_and_check() {
  local log=$1 port=$2
  shift 2
  "$@" >"$log.out" 2>"$log" &
  server_pid=$!
  for _ in $(seq 1 300); do
    grep -q '"msg":"listening"' "$log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$log"; echo "server exited before listening" >&2; exit 1; }
    sleep 0.2
  done
  grep -q '"msg":"listening"' "$log" || { cat "$log"; echo "server did not start" >&2; exit 1; }
  curl -fsS -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$port/grpc.health.v1.Health/Check" | grep -q '"SERVING"'
  if [ "${CHECK_CONSOLE:-}" = 1 ]; then curl -fsS "http://127.0.0.1:$port/" | grep -q "Veil console"; fi
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
  if [ "$code" != "404" ]; then [ "$code" = "200" ] || { echo "/healthz answered $code" >&2; exit 1; }; fi
  kill -TERM "$server_pid"
  wait "$server_pid"
  server_pid=""
  grep -q '"msg":"stopped"' "$log"
}

echo "== fresh copy: npm ci --omit=dev && npm start"
mkdir "$work/clone"
git ls-files -co --exclude-standard | grep -v '^node_modules$' | tar -cf - -T - | tar -xf - -C "$work/clone"
(cd "$work/clone" && npm ci --omit=dev "${npm_flags[@]}" >/dev/null)
[ ! -e "$work/clone/node_modules/typescript" ] || { echo "typescript was installed with --omit=dev" >&2; exit 1; }
port=$(free_port)
(cd "$work/clone" && VEIL_PORT=$port VEIL_DATA_DIR="$work/data-clone" serve_and_check "$work/clone.log" "$port" npm start --silent)
grep -q "Operator token" "$work/clone.log.out"

echo "== npm pack: the tarball serves from dist/ with production dependencies only"
(cd "$work" && npm pack "$repo" >/dev/null 2>"$work/pack.log") || { cat "$work/pack.log"; exit 1; }
tarball=$(cd "$work" && ls veil-*.tgz)
# Listed to a file first: `tar | grep -q` under pipefail fails with SIGPIPE when grep stops early.
tar -tzf "$work/$tarball" >"$work/contents"
grep -q '^package/dist/.built$' "$work/contents" || { echo "the tarball has no built dist/" >&2; exit 1; }
grep -q '^package/dist/console/index.html$' "$work/contents" || { echo "the tarball has no built console" >&2; exit 1; }
if grep -q '^package/server/' "$work/contents"; then echo "the tarball ships TypeScript sources" >&2; exit 1; fi
mkdir "$work/installed"
(cd "$work/installed" && npm init -y >/dev/null && npm install --omit=dev "${npm_flags[@]}" "$work/$tarball" >/dev/null)
bin="$work/installed/node_modules/.bin/veil"
[ "$("$bin" --version)" = "$(node -p 'require("./package.json").version')" ]
port=$(free_port)
# VEIL_FROM_SOURCE unset and no sources next to dist/: the bin must run dist/ (a tsx fallback would fail to find client/cli/main.ts).
# The console's assets are built into dist/console by prepack: GET / serves them.
CHECK_CONSOLE=1 serve_and_check "$work/installed.log" "$port" "$bin" serve --port "$port" --data-dir "$work/data-installed"
echo "install checks passed"
