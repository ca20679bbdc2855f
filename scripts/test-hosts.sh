#!/usr/bin/env bash
# A real two-host run on one machine. Two network namespaces joined by a veth pair are
# the hosts (each with its own host name, so that Open MPI sees two nodes, and its own
# mount namespace, so that each has a node-local disk); Open MPI's rsh launch agent is a
# small wrapper around `ip netns exec` (as ssh would be), the TCP transport is restricted
# to the veth subnet, and the launch goes through cluster/cde-mpirun.sh --hostfile.
# Checks: collectives across the hosts; a 2-rank `cde train` across them is bit-identical
# (model.safetensors, optimizer.safetensors) to the same run on one host, with global
# sampling and with shard-local sampling, where each host holds and reads only its own
# shards (the other host's are absent from its disk).
#
#   scripts/test-hosts.sh [path/to/cde]
#
# Needs root (network and mount namespaces); skipped with the reason otherwise.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/cde}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/scripts/lib.sh"
skip() { echo "test-hosts: SKIP: $*"; exit 0; }
[ -x "$BIN" ] || fail "$BIN is not an executable (build cde first)"
[ "$(id -u)" = 0 ] || skip "creating network namespaces (ip netns) needs root"
for c in ip unshare mount mpirun; do command -v "$c" >/dev/null || skip "$c not found (make deps installs iproute2, util-linux, openmpi-bin)"; done

T=$(mktemp -d)
NA=cde$$a NB=cde$$b                     # namespace names, also the veth ends' names
NET=10.231.0 A=10.231.0.1 B=10.231.0.2  # private to the two namespaces
cleanup() { ip netns del "$NA" 2>/dev/null || true; ip netns del "$NB" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
if ! err=$(ip netns add "$NA" 2>&1); then skip "cannot create a network namespace here: $err"; fi
ip netns add "$NB"
if ! err=$(ip link add "v$NA" type veth peer name "v$NB" 2>&1); then skip "cannot create a veth pair here: $err"; fi
ip link set "v$NA" netns "$NA"; ip link set "v$NB" netns "$NB"
ip -n "$NA" addr add "$A/24" dev "v$NA"; ip -n "$NB" addr add "$B/24" dev "v$NB"
for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NA" link set "v$NA" up; ip -n "$NB" link set "v$NB" up
ip netns exec "$NA" unshare --uts --mount true 2>/dev/null || skip "cannot create UTS and mount namespaces here"

# The "ssh" of the two hosts: `netns-host HOST COMMAND...` runs COMMAND (joined and run by
# sh, as ssh does) in HOST's network namespace, under HOST's name, with HOST's disk
# mounted at $T/local and a clean environment. Open MPI calls it to start its daemon on
# the other host; the test calls it to start mpirun on host A.
mkdir -p "$T/local" "$T/disk-$A" "$T/disk-$B"
cat > "$T/netns-host" <<EOF
#!/usr/bin/env bash
set -euo pipefail
host=\$1; shift
case "\$host" in
  $A) ns=$NA; name=cde-host-a ;;
  $B) ns=$NB; name=cde-host-b ;;
  *) echo "netns-host: unknown host \$host" >&2; exit 255 ;;
esac
echo "\$host" >> "$T/launches"
exec ip netns exec "\$ns" unshare --uts --mount sh -c '
  hostname "\$1" && mount --bind "\$2" "\$3" && shift 3 &&
  exec env -i PATH="\$PATH" HOME=/root OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 sh -c "\$*"' \
  sh "\$name" "$T/disk-\$host" "$T/local" "\$@"
EOF
chmod +x "$T/netns-host"
printf '%s slots=1\n%s slots=1\n' "$A" "$B" > "$T/hosts"

# launch OUT ARGS...: cde train ARGS across the two hosts, through the cluster launcher.
two_hosts() {
  local cmd
  cmd=$(printf '%q ' env CDE="$BIN" MPIRUN_ARGS="--mca plm_rsh_agent $T/netns-host --mca btl tcp,self" \
    nice -n 10 bash "$REPO/cluster/cde-mpirun.sh" -n 2 --threads 1 --hostfile "$T/hosts" --tcp-if "$NET.0/24" -- "$@")
  : > "$T/launches"
  "$T/netns-host" "$A" "cd $(printf %q "$REPO") && $cmd"
}
one_host() {
  env CDE="$BIN" nice -n 10 bash "$REPO/cluster/cde-mpirun.sh" -n 2 --threads 1 -- "$@"
}

# Collectives across the hosts; the other host was reached through the agent.
two_hosts selftest collectives > "$T/selftest.log" 2>&1 || { cat "$T/selftest.log"; fail "selftest collectives across two hosts"; }
grep -qx "$A" "$T/launches" && grep -qx "$B" "$T/launches" || fail "the launch agent did not reach host B: $(cat "$T/launches")"
ok "collectives across two hosts (network namespaces $NA, $NB; TCP on $NET.0/24 only)"

"$BIN" shards synth --out "$T/data" --records 32 --shard-size 8 --seed 5 >/dev/null  # d3synth-00000{0..3}.tar
# Host A's disk holds shards 0 and 2 (rank 0's with shard-local sampling), host B's 1 and 3.
for s in 0 2; do cp "$T/data/d3synth-00000$s.tar" "$T/disk-$A/"; done
for s in 1 3; do cp "$T/data/d3synth-00000$s.tar" "$T/disk-$B/"; done
TINY=(--config "$REPO/configs/smoke.yaml" "${TINY_MODEL[@]}" --set train.global_batch=8
      --set train.steps=6 --set checkpoint.every_steps=6 --set train.log_every=2 --set optim.warmup_steps=2
      --set data.loader_threads=1 --set eval.every_steps=0
      --gemm onednn)  # a plan from row checks, not from timings that can flip between the runs compared
final() { echo "$1/checkpoints/step-00000006"; }
same() {  # same RUN1 RUN2 WHAT
  for f in model.safetensors optimizer.safetensors; do
    [ -f "$(final "$1")/$f" ] && [ -f "$(final "$2")/$f" ] || fail "$3: no step-6 $f"
    cmp -s "$(final "$1")/$f" "$(final "$2")/$f" || fail "$3: $f differs between one host and two hosts"
  done
}

# Global sampling: every rank reads the shared data folder.
one_host train "${TINY[@]}" --set "data.train=[$T/data]" --out "$T/one-global" > "$T/one-global.log" 2>&1 \
  || { tail -20 "$T/one-global.log"; fail "one-host training run"; }
two_hosts train "${TINY[@]}" --set "data.train=[$T/data]" --out "$T/two-global" > "$T/two-global.log" 2>&1 \
  || { tail -20 "$T/two-global.log"; fail "two-host training run"; }
grep -qx "$B" "$T/launches" || fail "the two-host run did not start a daemon on host B"
same "$T/one-global" "$T/two-global" "global sampling"
ok "global sampling: 2 ranks on two hosts = 2 ranks on one host (model and optimizer bit-identical)"

# Shard-local sampling: the same list of four shards on every host, each host's disk
# ($T/local inside its mount namespace) holding only its rank's two.
shards="$T/local/d3synth-{000000..000003}.tar"
unshare --mount sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$T/data" "$T/local" \
  env CDE="$BIN" nice -n 10 bash "$REPO/cluster/cde-mpirun.sh" -n 2 --threads 1 -- train "${TINY[@]}" --set data.sampling=shard-local \
  --set "data.train=['$shards']" --out "$T/one-local" > "$T/one-local.log" 2>&1 \
  || { tail -20 "$T/one-local.log"; fail "one-host shard-local run"; }
two_hosts train "${TINY[@]}" --set data.sampling=shard-local --set "data.train=['$shards']" --out "$T/two-local" \
  > "$T/two-local.log" 2>&1 || { tail -20 "$T/two-local.log"; fail "two-host shard-local run"; }
same "$T/one-local" "$T/two-local" "shard-local sampling"
# Rank 0 found its node's two shards only (its start-up lines name them), and each host
# indexed exactly its own two shards on its own disk (the index is cached beside a shard
# when it is first opened).
lines=$(grep "^rank 0: data: .*d3synth" "$T/two-local.log" | grep -o "d3synth-[0-9]*.tar" | tr '\n' ' ')
[ "$lines" = "d3synth-000000.tar d3synth-000002.tar " ] || { cat "$T/two-local.log"; fail "rank 0 lists shards '$lines'"; }
for h in "$A:0 2" "$B:1 3"; do
  want=$(for s in ${h#*:}; do echo "d3synth-00000$s.tar"; done; for s in ${h#*:}; do echo "d3synth-00000$s.tar.cdeidx"; done)
  got=$(ls "$T/disk-${h%%:*}")
  [ "$(echo "$got" | sort)" = "$(echo "$want" | sort)" ] || fail "host ${h%%:*}'s disk holds $(echo $got), expected $(echo $want)"
done
[ -z "$(ls "$T/local")" ] || fail "a host's disk leaked into the shared file system: $(ls "$T/local")"
ok "shard-local sampling: each host holds and reads only its own shards; bit-identical to one host holding all four"
echo "test-hosts: $pass passed"
