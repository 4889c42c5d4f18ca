#!/usr/bin/env bash
# compile_stats.sh — what the native tier's compiler costs per MiB of Wasm:
# for each module, the size of its code section, the wall and CPU time of
# `wasmfn compile --raw` (LLVM -O2, parts compiled on one thread per CPU)
# and the size of the native code it makes. Timings only, never a test.
#
#   bash bench/programs/compile_stats.sh build/wasmfn A.wasm B.wasm ...
#
# Prints a Markdown table; the machine should be idle (the CPU time is
# less sensitive to other load than the wall time).
set -euo pipefail

WASMFN=$1
shift
TMP=$(mktemp -d -t wasmfn-compile.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

code_bytes() { # the Code section's size, from wabt's section headers
    local hex
    hex=$(wasm-objdump -h "$1" | sed -n 's/^ *Code .*(size=0x\([0-9a-f]*\)).*/\1/p')
    echo $((16#$hex))
}

echo "| module | .wasm bytes | code section bytes | compile wall s | compile CPU s | native object bytes | wall s per MiB of code | CPU s per MiB of code | object bytes per code byte |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
tw=0 tc=0 tcode=0 tnat=0
for w in "$@"; do
    code=$(code_bytes "$w")
    /usr/bin/time -f '%e %U %S' -o "$TMP/t" "$WASMFN" compile --raw "$w" -o "$TMP/obj" >/dev/null
    read -r wall user sys <"$TMP/t"
    nat=$(stat -c %s "$TMP/obj")
    awk -v n="$(basename "$w")" -v wb="$(stat -c %s "$w")" -v c="$code" -v wall="$wall" -v cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" -v nat="$nat" 'BEGIN {
        mib = c / 1048576
        printf "| %s | %d | %d | %.2f | %.2f | %d | %.1f | %.1f | %.2f |\n", n, wb, c, wall, cpu, nat, wall / mib, cpu / mib, nat / c }'
    tw=$(awk -v a="$tw" -v b="$wall" 'BEGIN {print a + b}')
    tc=$(awk -v a="$tc" -v u="$user" -v s="$sys" 'BEGIN {print a + u + s}')
    tcode=$((tcode + code))
    tnat=$((tnat + nat))
done
awk -v wall="$tw" -v cpu="$tc" -v c="$tcode" -v nat="$tnat" 'BEGIN {
    mib = c / 1048576
    printf "| **all** | | %d | %.2f | %.2f | %d | **%.1f** | **%.1f** | **%.2f** |\n", c, wall, cpu, nat, wall / mib, cpu / mib, nat / c }'
