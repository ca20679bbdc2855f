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
#   --max-restarts N       relaunch `train` with --resume auto after an abnormal end, up to N
#                          times (as torchrun's --max-restarts; default 0)
#   --srun                 launch with Slurm's srun (--mpi=pmix, one task per allocated task,
#                          bound to its cores) instead of mpirun: inside an allocation
#                          (cluster/slurm/train.sbatch with LAUNCHER=srun)
#   --dry-run              print the mpirun (or srun) command instead of running it
# Environment: CDE (path of the cde binary; default .build/release/cde or cde on PATH),
# MPIRUN_ARGS (extra mpirun arguments), CDE_RESTART_BACKOFF (seconds before the first
# restart, doubled for each further one up to 60; default 5).
# Restarts: when mpirun ends with a non-zero status (a rank killed, a node lost, a
# stall, an error) and RUN/status.json does not say finished, stopped or early-stopped,
# the job is started again with --resume auto after the backoff, with one log line.
# A clean stop (status 0, a stop signal) and a refusal to start (status 78: run
# directory in use, no checkpoint verifies, config changed) are never restarted.
# Signals: SIGTERM, SIGINT, SIGHUP and SIGUSR1 sent to this wrapper (or SIGINT to its
# process group, as Ctrl-C does) are passed to mpirun as SIGUSR1, which Open MPI
# forwards to every rank without ending the job (srun relays it to every task); the
# trainer then checkpoints the current step and every rank exits 0, and so does the
# wrapper. mpirun runs in a
# process group of its own so that a Ctrl-C reaches it only this way (Open MPI 4's
# mpirun answers a SIGINT or SIGTERM of its own by killing the ranks a few seconds
# later and exiting 1, whatever the ranks did).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ranks=1; rpn=""; threads=""; cores=""; hostfile=""; tcpif=""; dry=0; max_restarts=0; srun=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--ranks) ranks=$2; shift 2 ;;
    --ranks-per-node) rpn=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --cores-per-node) cores=$2; shift 2 ;;
    --hostfile) hostfile=$2; shift 2 ;;
    --tcp-if) tcpif=$2; shift 2 ;;
    --max-restarts) max_restarts=$2; shift 2 ;;
    --srun) srun=1; shift ;;
    --dry-run) dry=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "cde-mpirun.sh: unknown option $1 (put cde's arguments after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "cde-mpirun.sh: no cde command given (e.g. -- train --config ...)" >&2; exit 2; }
for v in ranks rpn threads cores; do
  val=${!v}
  if [ -n "$val" ] && ! [[ "$val" =~ ^[1-9][0-9]*$ ]]; then echo "cde-mpirun.sh: --$v must be a positive integer, got '$val'" >&2; exit 2; fi
done
[[ "$max_restarts" =~ ^[0-9]+$ ]] || { echo "cde-mpirun.sh: --max-restarts must be a non-negative integer, got '$max_restarts'" >&2; exit 2; }
backoff=${CDE_RESTART_BACKOFF:-5}
[[ "$backoff" =~ ^[0-9]+$ ]] || { echo "cde-mpirun.sh: CDE_RESTART_BACKOFF must be a whole number of seconds, got '$backoff'" >&2; exit 2; }

# The run directory (--out) of a `train` command: restarts read RUN/status.json.
run_dir=""
prev=""
for a in "$@"; do
  case "$a" in --out=*) run_dir=${a#--out=} ;; esac
  [ "$prev" = --out ] && run_dir=$a
  prev=$a
done
if [ "$max_restarts" -gt 0 ] && { [ "$1" != train ] || [ -z "$run_dir" ]; }; then
  echo "cde-mpirun.sh: --max-restarts needs a 'train ... --out RUN' command" >&2; exit 2
fi

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
elif [ "$srun" = 0 ]; then
  echo "cde-mpirun.sh: $rpn ranks x $threads threads exceed $cores cores per node: not binding" >&2
  args+=(--oversubscribe --bind-to none)
fi
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads CDE_THREADS=$threads
args+=(-x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x CDE_THREADS)
# The OpenBLAS kernel choice and the GEMM mode reach remote ranks too (cde picks the best kernel per
# node otherwise; the GEMM plan is rank 0's, wherever rank 0 runs).
for v in CDE_BLAS_CORE OPENBLAS_CORETYPE CDE_GEMM; do [ -n "${!v:-}" ] && args+=(-x "$v"); done
# shellcheck disable=SC2206
[ -n "${MPIRUN_ARGS:-}" ] && args+=($MPIRUN_ARGS)

launch=(mpirun "${args[@]}")
# srun takes the ranks, their placement and the binding from the allocation (the threads
# variables reach the tasks in srun's environment).
[ "$srun" = 1 ] && launch=(srun --mpi=pmix --cpu-bind=cores --kill-on-bad-exit=1)

echo "cde-mpirun.sh: $ranks ranks, $rpn per node, $threads threads each ($cores cores per node)" >&2
if [ "$dry" = 1 ]; then echo "${launch[@]}" "$cde" "$@"; exit 0; fi

# The cde arguments of a restart: the same, with --resume auto.
resume_args() {
  local out=() skip=0 a
  for a in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case "$a" in
      --resume) skip=1 ;;
      --resume=*) ;;
      *) out+=("$a") ;;
    esac
  done
  printf '%s\0' "${out[@]}" --resume auto
}
state() { sed -n 's/.*"state":"\([^"]*\)".*/\1/p' "$run_dir/status.json" 2>/dev/null || true; }

stop=0
child=""
trap 'stop=1; [ -n "$child" ] && kill -USR1 "$child" 2>/dev/null' TERM INT HUP USR1
set -m  # job control: mpirun gets a process group of its own (no Ctrl-C, no SIGHUP from the terminal)
cmd=("$@")
restarts=0
while :; do
  "${launch[@]}" "$cde" "${cmd[@]}" </dev/null &
  child=$!
  # `wait` returns early when a trapped signal arrives: wait until mpirun has exited.
  while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=""
  [ "$rc" = 0 ] || [ "$stop" = 1 ] || [ "$max_restarts" = 0 ] && break
  st=$(state)
  case "$st" in finished|stopped|early-stopped) break ;; esac
  if [ "$rc" = 78 ]; then echo "cde-mpirun.sh: not restarting: the job refused to start (status 78)" >&2; break; fi
  if [ "$restarts" -ge "$max_restarts" ]; then
    echo "cde-mpirun.sh: exit status $rc, status.json '${st:-none}': giving up after $restarts restart(s) (--max-restarts $max_restarts)" >&2
    break
  fi
  restarts=$((restarts + 1))
  delay=$(( backoff << (restarts - 1) )); [ "$delay" -le 60 ] || delay=60
  echo "cde-mpirun.sh: $(date -Is) restart $restarts/$max_restarts in ${delay}s after exit status $rc (status.json '${st:-none}'), with --resume auto" >&2
  sleep "$delay" & wait $! || true
  [ "$stop" = 1 ] && break
  mapfile -d '' cmd < <(resume_args "$@")
done
exit "$rc"
