#!/usr/bin/env bash
# tier_wrapper.sh — stands in for build/wasmfn in the daemon test suites so
# that each suite runs once per tier (the mk/ fragments set WASMFN to this
# script, WASMFN_REAL to the binary and TIER):
#
#   TIER=interp  `wasmfn serve` gets --tier interp: every guest interpreted.
#   TIER=native  `wasmfn deploy` and `wasmfn apply` return only once the
#                functions they touched have their native code (the daemon
#                compiles it in the background), so every request a test
#                sends afterwards runs native code.
#
# Anything else passes through unchanged.
set -u
real=${WASMFN_REAL:?WASMFN_REAL names the wasmfn binary}
cmd=${1:-}

if [[ ${TIER:-} == interp && $cmd == serve ]]; then
    shift
    exec "$real" serve --tier interp "$@"
fi
if [[ ${TIER:-} != native || ( $cmd != deploy && $cmd != apply ) ]]; then
    exec "$real" "$@"
fi

out=$("$real" "$@" 2>"${TMPDIR:-/tmp}/tier_wrapper.$$")
rc=$?
err=$(cat "${TMPDIR:-/tmp}/tier_wrapper.$$")
rm -f "${TMPDIR:-/tmp}/tier_wrapper.$$"
[[ -n $out ]] && printf '%s\n' "$out"
[[ -n $err ]] && printf '%s\n' "$err" >&2
if [[ $rc == 0 ]]; then
    # "service/NAME: revision NAME-00001 created" (or unchanged, configured)
    names=$(printf '%s\n%s\n' "$out" "$err" | sed -n 's|^service/\([a-z0-9-]*\):.*|\1|p' | sort -u)
    for n in $names; do
        for ((i = 0; i < 1200; i++)); do
            "$real" get "$n" -o json 2>/dev/null | grep -q '"tierDetail": *"compiling"' || break
            sleep 0.1
        done
    done
fi
exit "$rc"
