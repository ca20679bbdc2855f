#!/usr/bin/env bash
# Fuzz the image decoding path and the safetensors header parser with libFuzzer (Swift's
# -sanitize=fuzzer, plus AddressSanitizer); the tar reader has scripts/fuzz-tar.sh.
# Usage: scripts/fuzz-decoders.sh image|safetensors [SECONDS] [extra libFuzzer flags...]
#   SECONDS defaults to 300. Crashing inputs are written to .build-fuzz/crash-*.
#   Re-run one input: .build-fuzz/fuzz-image .build-fuzz/crash-XXXX
# Seed corpora: Tests/Fixtures/Imaging/damaged/* (good and damaged images of every
# format) and the safetensors fixtures of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?image or safetensors}; shift
SECS=${1:-300}; shift || true
OUT=.build-fuzz
mkdir -p "$OUT/corpus-$TARGET"
case "$TARGET" in
  image)
    SRC=(Sources/Imaging/ImageCodec.swift Sources/Imaging/RGBImage.swift Fuzz/FuzzImage.swift)
    FLAGS=(-I Sources/CVips $(pkg-config --cflags-only-I vips | sed "s/-I/-Xcc -I/g") -lvips -lgobject-2.0 -lglib-2.0)
    for f in Tests/Fixtures/Imaging/damaged/*; do case "$f" in *.json|*bomb*) ;; *) cp -n "$f" "$OUT/corpus-$TARGET/" ;; esac; done
    MAXLEN=65536 ;;
  safetensors)
    SRC=(Sources/SafeTensors/SafeTensors.swift Fuzz/FuzzSafeTensors.swift)
    FLAGS=()
    for f in Tests/Fixtures/Engine/*.safetensors Tests/Fixtures/Evaluation/*.safetensors; do
      [ "$(stat -c %s "$f")" -le 65536 ] && cp -n "$f" "$OUT/corpus-$TARGET/" || true
    done
    MAXLEN=16384 ;;
  *) echo "unknown target $TARGET (image or safetensors)" >&2; exit 2 ;;
esac
BIN="$OUT/fuzz-$TARGET"
if [ ! -x "$BIN" ] || [ -n "$(find "${SRC[@]}" -newer "$BIN")" ]; then
  echo "building $BIN"
  swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name DecoderFuzz \
    "${SRC[@]}" "${FLAGS[@]}" -o "$BIN" 2> >(grep -v "Cannot export local symbol" >&2)
fi
# Each input may make libvips allocate (the 1 M pixel limit bounds it); VIPS warnings off.
export VIPS_WARNING=0
exec "$BIN" "$OUT/corpus-$TARGET" -max_total_time="$SECS" -max_len=$MAXLEN -timeout=20 \
  -rss_limit_mb=3072 -artifact_prefix="$OUT/$TARGET-" -print_final_stats=1 "$@"
