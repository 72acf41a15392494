#!/bin/sh
# Entry point of the distill image (docker/Dockerfile): the first argument names what to run.
#
#   coordinator | teacher-gateway | curator | trainer | inference   a service binary (distill-<name>);
#                                       the other arguments are its flags (--config FILE, --grpc_address, ...)
#   distill | distillctl                the all-in-one CLI and the cluster's client
#   health [distillctl health flags]    the image's HEALTHCHECK: `distillctl health` against the gRPC port
#                                       of the service this container runs (see health() below)
#   help                                this text
#   anything else                       run as a command (e.g. `sh`)
set -eu

usage() {
  cat <<'USAGE'
usage: docker run IMAGE <what> [args]
  coordinator | teacher-gateway | curator | trainer | inference   run that service; args are its flags,
                                     e.g. --config /etc/distill/curator.yaml
  distill | distillctl               the all-in-one CLI, the cluster's client
  health [--service NAME]            gRPC health of the service this container runs (exit 0 = SERVING);
                                     $DISTILL_HEALTH_ADDRESS overrides the address it asks
  help                               this text
Anything else is run as a command.
USAGE
}

# The binary that serves `$1` (a service or tool name); fails for other names.
binary_for() {
  case "$1" in
    coordinator) echo distill-coordinator ;;
    teacher-gateway | teacher_gateway) echo distill-teacher-gateway ;;
    curator) echo distill-curator ;;
    trainer) echo distill-trainer ;;
    inference) echo distill-inference ;;
    distill) echo distill ;;
    distillctl) echo distillctl ;;
    *) return 1 ;;
  esac
}

# The default gRPC port of a service binary (common/rpc: each service's embedded defaults); empty for
# binaries that serve nothing on a fixed port.
grpc_port_for() {
  case "$1" in
    distill-coordinator) echo 50050 ;;
    distill-teacher-gateway) echo 50051 ;;
    distill-curator) echo 50052 ;;
    distill-trainer) echo 50053 ;;
    distill-inference) echo 50054 ;;
    *) echo "" ;;
  esac
}

# Asks the service of this container for its gRPC health. The address is $DISTILL_HEALTH_ADDRESS when
# set; otherwise 127.0.0.1 and the port of a --grpc_address flag on PID 1's command line, else the
# service's default port. PID 1 is the service itself (this script execs it), or an init (docker run
# --init) whose command line still names it. A port set only in a --config file needs
# DISTILL_HEALTH_ADDRESS (or a healthcheck of its own, as deploy/docker-compose.yml has).
health() {
  address="${DISTILL_HEALTH_ADDRESS:-}"
  if [ -z "$address" ]; then
    binary=""
    port=""
    expect_address=0
    # One argument per line; a service's arguments hold no newlines.
    args=$(tr '\0' '\n' </proc/1/cmdline)
    old_ifs=$IFS
    IFS='
'
    for arg in $args; do
      if [ "$expect_address" = 1 ]; then
        port="${arg##*:}"
        expect_address=0
        continue
      fi
      case "$arg" in
        --grpc_address=* | --grpc-address=*) port="${arg##*:}" ;;
        --grpc_address | --grpc-address) expect_address=1 ;;
        *)
          if [ -z "$binary" ]; then
            name="${arg##*/}"
            case "$name" in
              distill-*) [ -n "$(grpc_port_for "$name")" ] && binary="$name" ;;
              *) if b=$(binary_for "$name"); then binary="$b"; fi ;;
            esac
          fi
          ;;
      esac
    done
    IFS=$old_ifs
    if [ -z "$binary" ] || [ -z "$(grpc_port_for "$binary")" ]; then
      # distill, distillctl or a shell: nothing listens on a known port; the container is as healthy as
      # its process.
      echo "health: no distill service in this container (PID 1: $(tr '\0' ' ' </proc/1/cmdline))" >&2
      exit 0
    fi
    [ -n "$port" ] || port=$(grpc_port_for "$binary")
    address="127.0.0.1:$port"
  fi
  exec distillctl health --address "$address" --timeout "${DISTILL_HEALTH_TIMEOUT:-3s}" "$@"
}

if [ $# -eq 0 ]; then
  usage
  exit 0
fi
case "$1" in
  help | -h | --help)
    usage
    exit 0
    ;;
  health)
    shift
    health "$@"
    ;;
esac
if binary=$(binary_for "$1"); then
  shift
  exec "$binary" "$@"
fi
exec "$@"
