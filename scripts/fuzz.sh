#!/usr/bin/env bash
# Fuzz sslrun's input parsers with libFuzzer + ASan/UBSan (harnesses in tests/fuzz/):
#   fuzz_config  YAML config text + section.key=value overrides (io/config.c)
#   fuzz_shard   HDF5 shard files (io/dataset.c)
#   fuzz_ckpt    HDF5 checkpoints, serial (io/checkpoint.c), and the config stored in them
#   fuzz_pickle  CIFAR's Python-pickle release (io/pickle_cifar.c)
#   fuzz_jpeg    a JPEG shard's sample bytes, decoded for crops by the loader (io/jpeg_decode.c)
#
#   scripts/fuzz.sh [SECONDS]        build into build-fuzz/ (clang), run each harness SECONDS
#                                    (default 10) from its committed corpus; exit 1 on any crash,
#                                    leak, timeout (-timeout=10 s), OOM or sanitizer report.
#                                    New corpus units are discarded; crash inputs are kept in
#                                    build-fuzz/artifacts/.
#   scripts/fuzz.sh --merge SECONDS  the same, then minimise committed corpus + new units back into
#                                    tests/fuzz/corpus/<harness>/ (-merge=1); for maintainers.
#   scripts/fuzz.sh --seeds          rewrite the seed inputs (tests/fuzz/corpus/*/seed-*) and the
#                                    config dictionary with the current writers (after a format
#                                    change, e.g. of checkpoints); the pickle seeds come from
#                                    tests/fuzz/gen_pickle_seeds.py (Python + numpy), the JPEG
#                                    seeds from tests/fuzz/gen_jpeg_seeds.py (Python + PIL).
# Faults inside libhdf5 itself on damaged files (HDF5 1.10.8 has known heap over-reads in its
# metadata decoders, which sslrun cannot prevent for unchecksummed metadata, and allocates sizes
# read from damaged headers): a report whose faulting frame and, for heap errors, allocating frame
# are both in libhdf5 (see classify) is kept in build-fuzz/artifacts/, listed, and fuzzing
# continues from the same corpus; it fails the run only with FUZZ_HDF5_FAULTS=fail. Everything else (our frames, UBSan, invariants, leaks, timeouts, OOM)
# fails the run at once. Leaks inside libhdf5 are suppressed (tests/fuzz/lsan.supp says why).
# Environment: FUZZ_HARNESSES="config shard ckpt pickle jpeg" (subset), FUZZ_RSS_MB=2048, FUZZ_HDF5_FAULTS.
# Needs clang with libclang_rt.fuzzer (Debian 12: clang, libclang-rt-14-dev); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$root/build-fuzz
mode=run
case "${1:-}" in
  --seeds) mode=seeds; shift ;;
  --merge) mode=merge; shift ;;
  -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
esac
secs=${1:-10}
harnesses=${FUZZ_HARNESSES:-config shard ckpt pickle jpeg}
rss=${FUZZ_RSS_MB:-2048}
[[ $secs =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2; }

CC_FUZZ=${CC_FUZZ:-$(command -v clang || command -v clang-14 || true)}
if [ -z "$CC_FUZZ" ]; then
  echo "fuzz.sh: clang not found (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi

log=$dir/fuzz-build.log
mkdir -p "$dir"
if ! { CC=$CC_FUZZ cmake -S tests/fuzz -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$dir" -j"$(nproc)"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "fuzz.sh: build failed (full log: $log)" >&2
  exit 2
fi

if [ "$mode" = seeds ]; then
  "$dir/fuzz_gen_seeds" tests/fuzz
  echo "fuzz.sh: seeds written to tests/fuzz/corpus/*/seed-* and tests/fuzz/config.dict"
  exit 0
fi

# allocator_may_return_null: an impossible size from a damaged header (2^64 - x) fails like glibc's
# malloc does in production instead of stopping the run; sizes over -rss_limit_mb still report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:symbolize=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
hdf5_faults=${FUZZ_HDF5_FAULTS:-report}

# "hdf5" if the report in log $1 is a fault inside libhdf5 on its own memory, else "ours": an ASan
# report, or a libFuzzer malloc-limit report (HDF5 allocating a size read from a damaged header),
# whose first frame that is not a sanitizer, libFuzzer or libc routine is in libhdf5, and so is
# that of the allocating / freeing stack when the report has one. Stack-buffer errors count as
# ours (an HDF5 call writing past a caller's variable is the caller's bug), and so does anything
# else: invariant failures, UBSan, leaks (HDF5's own are suppressed), timeouts, RSS limit.
classify() {
  awk '
    /fuzz invariant violated|runtime error:|ERROR: LeakSanitizer/ { ours = 1 }
    /ERROR: libFuzzer:/ && !/out-of-memory \(malloc\(/ { ours = 1 }
    /ERROR: AddressSanitizer: (stack-buffer|stack-use|dynamic-stack)/ { ours = 1 }
    /ERROR: AddressSanitizer:|ERROR: libFuzzer: out-of-memory \(malloc\(/ { hit = 1; want = 1; next }
    /(allocated|freed) by thread/ { want = 1; next }
    want && /^ *#[0-9]+ / {
      # sanitizer / libFuzzer runtime (in the harness binary, no source line), libc string routines
      if ($0 ~ /__interceptor_|__asan|__sanitizer|fuzzer::|in __(mem|str|wmem)|sysdeps\/|libc\.so|\/fuzz_[a-z]+\+0x/) next
      if ($0 !~ /libhdf5/) ours = 1
      want = 0
    }
    END { print (hit && !ours) ? "hdf5" : "ours" }' "$1"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/sslfuzz.XXXXXX")
# the harnesses write each input to a file here (one directory per process, left behind by crashes)
scratch=$(mktemp -d /dev/shm/sslfuzz.XXXXXX 2>/dev/null || mktemp -d "$work/scratch.XXXXXX")
export SSL_FUZZ_SCRATCH=$scratch
trap 'rm -rf "$work" "$scratch"' EXIT
artifacts=$dir/artifacts
mkdir -p "$artifacts"
fail=0
printf '%-7s %10s %7s %8s %11s %6s  %s\n' harness execs secs exec/s corpus hdf5 result
for h in $harnesses; do
  bin=$dir/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz.sh: no harness $bin" >&2; exit 2; }
  mkdir -p "$work/$h"
  cp tests/fuzz/corpus/$h/* "$work/$h/" 2>/dev/null || true
  n0=$(ls "$work/$h" | wc -l)
  extra=()
  [ "$h" = config ] && extra+=(-dict="$root/tests/fuzz/config.dict")
  t0=$(date +%s)
  execs=0 nhdf5=0 result=ok rc=0 runs=0
  : >"$work/$h.all.log"
  while :; do
    left=$((secs - ($(date +%s) - t0)))
    [ $runs -gt 0 ] && [ $left -le 0 ] && break
    [ $left -lt 1 ] && left=1
    runs=$((runs + 1))
    set +e
    # the outer timeout only guards against libFuzzer itself wedging (loading the corpus is not
    # counted in -max_total_time)
    timeout --signal=KILL $((left + 300)) "$bin" "${extra[@]}" -max_total_time="$left" -timeout=10 \
      -rss_limit_mb="$rss" -print_final_stats=1 -artifact_prefix="$artifacts/$h-" \
      "$work/$h" >"$work/$h.log" 2>&1
    rc=$?
    set -e
    cat "$work/$h.log" >>"$work/$h.all.log"
    e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$h.log" | tail -1)
    execs=$((execs + ${e:-0}))
    [ $rc -eq 0 ] && break
    unit=$(sed -n 's/.*Test unit written to //p' "$work/$h.log" | tail -1)
    if [ "$(classify "$work/$h.log")" = hdf5 ] && [ "$hdf5_faults" != fail ] && [ $nhdf5 -lt 50 ]; then
      nhdf5=$((nhdf5 + 1))
      [ -n "$unit" ] && cp "$work/$h.log" "$unit.log" && echo "$unit" >>"$work/$h.hdf5"
      # the unit would be re-run first from the corpus if libFuzzer had added it: it did not
      continue
    fi
    what=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [^(]*|runtime error: .*|fuzz invariant violated[^:]*' "$work/$h.log" || true)
    result="FAILED (rc $rc${what:+: $what})"
    [ -n "$unit" ] && cp "$work/$h.log" "$unit.log"
    break
  done
  t1=$(date +%s)
  secs_run=$((t1 - t0))
  n1=$(ls "$work/$h" | wc -l)
  [ $nhdf5 -gt 0 ] && [ "$result" = ok ] && result="ok (libhdf5 faults: see below)"
  printf '%-7s %10s %7s %8s %5s->%-5s %6s  %s\n' "$h" "$execs" "$secs_run" \
    $((execs / (secs_run > 0 ? secs_run : 1))) "$n0" "$n1" "$nhdf5" "$result"
  if [ -s "$work/$h.hdf5" ]; then
    while read -r u; do
      echo "        libhdf5 fault: $(grep -m1 -oE 'ERROR: AddressSanitizer: [a-zA-Z-]+' "$u.log" | cut -d' ' -f3) in $(grep -m1 -oE 'in H5[A-Za-z0-9_]+' "$u.log" | cut -d' ' -f2); input $u"
    done <"$work/$h.hdf5"
  fi
  if [ "$result" != ok ] && [ "${result#ok}" = "$result" ]; then
    fail=1
    cp "$work/$h.all.log" "$artifacts/$h.log"
    echo "---- $h: end of the log (full: $artifacts/$h.log); input: ${unit:-none saved}"
    grep -vE '^(#[0-9]+|INFO:|MERGE-|stat::|	NEW_FUNC)' "$work/$h.log" | tail -n 40
    echo "----"
  fi
  if [ "$mode" = merge ] && [ $fail -eq 0 ]; then
    # seeds and regression inputs keep their names and always stay; the rest is minimised
    mkdir -p "$work/$h.min"
    cp tests/fuzz/corpus/$h/seed-* tests/fuzz/corpus/$h/regress-* "$work/$h.min/" 2>/dev/null || true
    # edges only (-use_counters=0): hit-count features would keep ~10x the files for little gain
    if "$bin" -use_counters=0 -merge=1 -timeout=10 -rss_limit_mb="$rss" "$work/$h.min" \
         "$work/$h" >"$work/$h.merge.log" 2>&1; then
      rm -f tests/fuzz/corpus/$h/*
      cp "$work/$h.min"/* tests/fuzz/corpus/$h/
      echo "        merged: tests/fuzz/corpus/$h/ now $(ls tests/fuzz/corpus/$h | wc -l) files, $(du -sk tests/fuzz/corpus/$h | cut -f1) KiB"
    else
      fail=1
      echo "        merge failed: $(tail -n 3 "$work/$h.merge.log")"
    fi
  fi
done
exit $fail
