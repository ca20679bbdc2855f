#!/usr/bin/env bash
# Launch cde under Open MPI with one rank per group of cores:
# ranks x threads = cores, each rank bound to its own cores.
#
#   cluster/cde-mpirun.sh -n 4 -- train --config configs/d3-vit-tiny.yaml --out runs/d3 --resume auto
#   cluster/cde-mpirun.sh -n 8 --hostfile cluster/hostfile.example -- train ...
#
# Options (before --):
#   -n, --ranks N          total ranks (default 1)
#   --ranks-per-node R     ranks per node (default: N on one node, else slots of the hostfile)
#   --threads T            compute threads per rank (default: cores per node / R)
#   --cores-per-node C     cores of each node (default: this machine's, nproc --all)
#   --hostfile FILE        Open MPI hostfile ("node slots=R" lines); not needed under Slurm
#   --tcp-if LIST          network interfaces or subnets for MPI's TCP traffic, both the
#                          ranks' messages and the launch channel (e.g. ib0 or 10.1.0.0/16;
#                          comma-separated); default: Open MPI's choice (all of them)
#   --dry-run              print the mpirun command instead of running it
# Environment: CDE (path of the cde binary; default .build/release/cde or cde on PATH),
# MPIRUN_ARGS (extra mpirun arguments).
# Signals: SIGTERM, SIGINT and SIGUSR1 sent to this wrapper are passed to mpirun
# as SIGUSR1, which Open MPI forwards to every rank without ending the job; the
# trainer then checkpoints the current step and every rank exits 0, and so does
# the wrapper. (Open MPI 4's mpirun answers a SIGTERM of its own by killing the
# ranks a few seconds later and exiting 1, whatever the ranks did.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ranks=1; rpn=""; threads=""; cores=""; hostfile=""; tcpif=""; dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--ranks) ranks=$2; shift 2 ;;
    --ranks-per-node) rpn=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --cores-per-node) cores=$2; shift 2 ;;
    --hostfile) hostfile=$2; shift 2 ;;
    --tcp-if) tcpif=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "cde-mpirun.sh: unknown option $1 (put cde's arguments after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "cde-mpirun.sh: no cde command given (e.g. -- train --config ...)" >&2; exit 2; }
for v in ranks rpn threads cores; do
  val=${!v}
  if [ -n "$val" ] && ! [[ "$val" =~ ^[1-9][0-9]*$ ]]; then echo "cde-mpirun.sh: --$v must be a positive integer, got '$val'" >&2; exit 2; fi
done

cde=${CDE:-}
if [ -z "$cde" ]; then
  if [ -x "$here/../.build/release/cde" ]; then cde="$here/../.build/release/cde"; else cde=$(command -v cde || true); fi
fi
[ -n "$cde" ] && [ -x "$cde" ] || { echo "cde-mpirun.sh: cde binary not found (build with 'make build' or set CDE=...)" >&2; exit 2; }

cores=${cores:-$(nproc --all)}
if [ -z "$rpn" ]; then
  if [ -n "$hostfile" ]; then
    [ -r "$hostfile" ] || { echo "cde-mpirun.sh: $hostfile: cannot read the hostfile" >&2; exit 2; }
    rpn=$(awk '!/^[[:space:]]*(#|$)/ { for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); print a[2]; exit } }' "$hostfile")
    rpn=${rpn:-$ranks}
  else
    rpn=$ranks
  fi
fi
[ "$rpn" -le "$ranks" ] || rpn=$ranks
threads=${threads:-$(( cores / rpn ))}
[ "$threads" -ge 1 ] || threads=1

args=(-np "$ranks")
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
# The same interfaces for the ranks' TCP messages (btl) and the daemons' channel (oob).
[ -n "$tcpif" ] && args+=(--mca btl_tcp_if_include "$tcpif" --mca oob_tcp_if_include "$tcpif")
if [ $(( rpn * threads )) -le "$cores" ]; then
  # Each rank gets `threads` cores of its own (PE = processing elements per rank).
  args+=(--map-by "ppr:$rpn:node:PE=$threads" --bind-to core)
else
  echo "cde-mpirun.sh: $rpn ranks x $threads threads exceed $cores cores per node: not binding" >&2
  args+=(--oversubscribe --bind-to none)
fi
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads CDE_THREADS=$threads
args+=(-x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x CDE_THREADS)
# The OpenBLAS kernel choice reaches remote ranks too (cde picks the best kernel per node otherwise).
for v in CDE_BLAS_CORE OPENBLAS_CORETYPE; do [ -n "${!v:-}" ] && args+=(-x "$v"); done
# shellcheck disable=SC2206
[ -n "${MPIRUN_ARGS:-}" ] && args+=($MPIRUN_ARGS)

echo "cde-mpirun.sh: $ranks ranks, $rpn per node, $threads threads each ($cores cores per node)" >&2
if [ "$dry" = 1 ]; then echo mpirun "${args[@]}" "$cde" "$@"; exit 0; fi
mpirun "${args[@]}" "$cde" "$@" &
child=$!
trap 'kill -USR1 "$child" 2>/dev/null' TERM INT USR1
# `wait` returns early when a trapped signal arrives: wait until mpirun has exited.
while :; do
  rc=0
  wait "$child" || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
