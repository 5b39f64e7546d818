#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (mon + memstore OSD + radosgw) on loopback, for tests that
# need a real S3 server with real conditional writes. Everything lives under <dir>.
#
#   scripts/radosgw.sh start <dir> <port> [mon_port]   # S3 on http://127.0.0.1:<port>
#   scripts/radosgw.sh stop <dir>
#
# Credentials of the test user: HEADSTART_S3_ACCESS_KEY / HEADSTART_S3_SECRET_KEY when set,
# otherwise the fixed values below. The mon port defaults to <port>+1 so that several clusters
# (parallel test files) can run side by side.
set -euo pipefail

ACCESS_KEY="${HEADSTART_S3_ACCESS_KEY:-HEADSTARTTESTKEY0001}"
SECRET_KEY="${HEADSTART_S3_SECRET_KEY:-headstart-test-secret-key-0000000000000001}"
STEP_TIMEOUT="${RADOSGW_STEP_TIMEOUT:-90}"
PACKAGES=(radosgw ceph-mon ceph-osd)

die() {
  echo "radosgw.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start <dir> <port> [mon_port] | stop <dir>" >&2
  exit 2
}

# On failure, the daemons' own logs are what explains it.
fail_with_logs() {
  local dir="$1"
  shift
  echo "radosgw.sh: $*" >&2
  local f
  for f in "$dir"/log/*.log "$dir"/log/*.out; do
    [ -s "$f" ] || continue
    echo "---- $f (errors, else its tail) ----" >&2
    # Daemon logs are full of RocksDB statistics; the -1 lines are Ceph's errors.
    if grep -q ' -1 ' "$f"; then
      grep ' -1 ' "$f" | tail -n 15 >&2
    else
      tail -n 10 "$f" >&2
    fi
  done
  stop_cluster "$dir"
  exit 1
}

ensure_installed() {
  local missing=()
  command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
  command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
  command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
  command -v ceph >/dev/null 2>&1 || missing+=(ceph-mon)
  command -v radosgw-admin >/dev/null 2>&1 || missing+=(radosgw)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "Ceph is not installed and installing it needs root; run: sudo apt-get install -y --no-install-recommends ${PACKAGES[*]}"
  fi
  command -v apt-get >/dev/null 2>&1 || die "Ceph is not installed and apt-get is unavailable; install ${PACKAGES[*]} yourself"
  local log
  log="$(mktemp)"
  # Other processes (a parallel test file, unattended upgrades) may hold the apt locks: wait, then retry.
  local attempt apt=(apt-get -qq -o DPkg::Lock::Timeout=300)
  for attempt in 1 2 3; do
    if { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update &&
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${PACKAGES[@]}"; } >"$log" 2>&1; then
      rm -f "$log"
      return 0
    fi
    grep -qi "lock" "$log" || break
    sleep $((attempt * 5))
  done
  tail -n 30 "$log" >&2
  rm -f "$log"
  die "apt-get install ${PACKAGES[*]} failed"
}

# wait_for <dir> <what> <command...>: polls until the command succeeds or STEP_TIMEOUT passes.
wait_for() {
  local dir="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + STEP_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail_with_logs "$dir" "timed out after ${STEP_TIMEOUT}s waiting for $what"
    daemons_alive "$dir" || fail_with_logs "$dir" "a daemon exited while waiting for $what"
    sleep 0.25
  done
}

# A daemon that died (port taken, bad config) should fail the start now, not after the timeout.
daemons_alive() {
  local f
  for f in "$1"/run/*.pid; do
    [ -e "$f" ] || continue
    pid_alive "$f" || return 1
  done
}

ceph_cli() {
  timeout 20 ceph --conf "$CONF" --connect-timeout 15 "$@"
}

osd_up() {
  ceph_cli osd stat 2>/dev/null | grep -Eq '(^| )1 up'
}

# A subshell, so a refused connection cannot take the script down and the descriptor closes itself.
http_up() (
  # Any HTTP answer means the frontend is serving; S3 answers anonymous requests with XML.
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 line <&3 || exit 1
  [[ "$line" == HTTP/* ]]
)

pid_alive() {
  local f="$1"
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

stop_cluster() {
  local dir="$1" f pid
  [ -d "$dir/run" ] || return 0
  # rgw first so it does not log a storm of errors while the OSD and mon go away.
  for f in "$dir/run/client.rgw.pid" "$dir/run/osd.0.pid" "$dir/run/mon.a.pid"; do
    [ -s "$f" ] || continue
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
  done
  # The cluster is throwaway (memstore): no reason to wait long for a clean shutdown.
  local deadline=$((SECONDS + 3))
  for f in "$dir/run/client.rgw.pid" "$dir/run/osd.0.pid" "$dir/run/mon.a.pid"; do
    [ -s "$f" ] || continue
    pid="$(cat "$f")"
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        kill -9 "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
    rm -f "$f"
  done
}

write_conf() {
  local dir="$1" port="$2" mon_port="$3" fsid="$4"
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_port]
public_addr = 127.0.0.1
public_network = 127.0.0.0/8
cluster_network = 127.0.0.0/8
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_service_mode = crc
ms_service_mode = crc
ms_mon_cluster_mode = crc
ms_cluster_mode = crc
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
mon_data = $dir/mon/\$cluster-\$id
osd_data = $dir/osd/\$cluster-\$id
keyring = /dev/null
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_allow_pool_delete = true
crash_dir = $dir/crash
exporter_sock_dir = $dir/run

[mon]
mon_cluster_log_file = $dir/log/cluster.log

[osd]
osd_objectstore = memstore
memstore_device_bytes = 1073741824
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64

[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw_data = $dir/rgw
rgw_dns_name = 127.0.0.1
EOF
}

start_cluster() {
  local dir="$1" port="$2" mon_port="$3"
  ensure_installed
  if pid_alive "$dir/run/client.rgw.pid" && http_up "$port"; then
    return 0
  fi
  stop_cluster "$dir"
  rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/rgw"
  mkdir -p "$dir/run" "$dir/log" "$dir/mon/ceph-a" "$dir/osd/ceph-0" "$dir/rgw" "$dir/crash"
  local fsid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  write_conf "$dir" "$port" "$mon_port" "$fsid"

  monmaptool --create --clobber --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" \
    >"$dir/log/setup.out" 2>&1 || fail_with_logs "$dir" "monmaptool failed"
  ceph-mon --conf "$CONF" --mkfs -i a --monmap "$dir/monmap" >>"$dir/log/setup.out" 2>&1 ||
    fail_with_logs "$dir" "ceph-mon --mkfs failed"
  ceph-mon --conf "$CONF" -i a >>"$dir/log/setup.out" 2>&1 || fail_with_logs "$dir" "ceph-mon did not start"
  wait_for "$dir" "the monitor to answer" ceph_cli mon stat

  local id
  id="$(ceph_cli osd create 2>>"$dir/log/setup.out")" || fail_with_logs "$dir" "ceph osd create failed"
  [ "$id" = "0" ] || fail_with_logs "$dir" "expected OSD id 0, got '$id'"
  ceph-osd --conf "$CONF" -i 0 --mkfs >>"$dir/log/setup.out" 2>&1 || fail_with_logs "$dir" "ceph-osd --mkfs failed"
  ceph-osd --conf "$CONF" -i 0 >>"$dir/log/setup.out" 2>&1 || fail_with_logs "$dir" "ceph-osd did not start"
  wait_for "$dir" "the OSD to be up" osd_up

  radosgw --conf "$CONF" -n client.rgw >>"$dir/log/setup.out" 2>&1 || fail_with_logs "$dir" "radosgw did not start"
  wait_for "$dir" "radosgw on 127.0.0.1:$port" http_up "$port"
  # Something else answering on the port would pass the HTTP probe while radosgw failed to bind.
  sleep 0.2
  pid_alive "$dir/run/client.rgw.pid" || fail_with_logs "$dir" "radosgw exited (is port $port taken?)"

  timeout 60 radosgw-admin --conf "$CONF" user create --uid headstart-test --display-name "headstart test" \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >>"$dir/log/setup.out" 2>&1 ||
    fail_with_logs "$dir" "radosgw-admin user create failed"
}

[ $# -ge 2 ] || usage
cmd="$1"
dir="$2"
case "$cmd" in
  start)
    [ $# -ge 3 ] || usage
    port="$3"
    mon_port="${4:-$((port + 1))}"
    [[ "$port" =~ ^[0-9]+$ && "$mon_port" =~ ^[0-9]+$ ]] || die "ports must be numbers"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    CONF="$dir/ceph.conf"
    start_cluster "$dir" "$port" "$mon_port"
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    dir="$(cd "$dir" && pwd)"
    CONF="$dir/ceph.conf"
    stop_cluster "$dir"
    ;;
  *) usage ;;
esac
