#!/usr/bin/env bash
# build.sh — fetches the Debian source packages of the programs that
# bench/programs/run.sh times, and builds each one twice from the same
# unpacked tree with the same configuration: natively with gcc -O2, and to
# wasm32-wasi with clang -O2 against Debian's wasi-libc.
#
# Usage (from the repository root; `make bench-programs` runs it):
#
#   bash bench/programs/build.sh [PROGRAM...]     default: every program
#
# Everything goes under build/programs/ (never committed):
#
#   apt/                 a private APT configuration: deb-src lines made from
#                        the system's own Debian sources, and their index
#   src/                 the .dsc, .orig and .debian files and the unpacked
#                        trees (`dpkg-source -x`: Debian's patches applied)
#   obj/                 objects, SQLite's generated amalgamation, build logs
#   bin/native/NAME      the native programs
#   bin/wasm/NAME.wasm   the WebAssembly programs
#   versions             one line per program: NAME SOURCE-PACKAGE VERSION
#
# The system's APT configuration is not touched: the deb-src index lives in
# build/programs/apt/ and every apt-get call points at it with -o options.
# Downloads happen once; a program is rebuilt only when one of its outputs
# is older than this script or than the compat headers it is built with.
# Programs: lua (Debian source package lua5.4), sqlite (sqlite3), bzip2
# (bzip2) and bc (bc). Needs gcc, clang, lld, wasi-libc, dpkg-dev
# (dpkg-source) and tclsh (to generate SQLite's amalgamation), all in
# scripts/deps.sh.
#
# The third-party sources build for wasm32-wasi without edits to them. What
# wasi-libc lacks comes from files of ours, used by the wasm builds only:
# wasi_compat.h (force-included: stand-ins for chmod, popen, system, ...)
# and wasi-include/ (setjmp.h and pwd.h stand-ins). lua_config.h is
# force-included into both Lua builds (errors without longjmp). The flags
# of each build are in its function below.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
here=bench/programs
out=build/programs
src=$out/src
obj=$out/obj
log=$obj/logs
mkdir -p "$src" "$obj" "$log" "$out/bin/native" "$out/bin/wasm"

ALL_PROGRAMS=(lua sqlite bzip2 bc)
programs=("$@")
((${#programs[@]})) || programs=("${ALL_PROGRAMS[@]}")

say() { echo "build.sh: $*" >&2; }
die() {
    echo "build.sh: $*" >&2
    exit 1
}

NATIVE_CC=(gcc -O2)
# 1 MiB of wasm stack (wasm-ld's default is 64 KiB; a native thread has 8 MiB).
WASM_CC=(clang --target=wasm32-wasi -O2 -I"$here/wasi-include" -include "$here/wasi_compat.h"
    -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID)
# shellcheck disable=SC2054  # the commas belong to -Wl,
WASM_LD=(clang --target=wasm32-wasi -O2 -Wl,-z,stack-size=1048576)
WASM_LIBS=(-lwasi-emulated-signal -lwasi-emulated-process-clocks -lwasi-emulated-getpid -lm)
COMMON_DEPS=("$here/build.sh" "$here/wasi_compat.h" "$here/wasi-include/setjmp.h" "$here/wasi-include/pwd.h")

# ---- fetching ----

apt_dir=$PWD/$out/apt
APT_OPTS=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o APT::Sandbox::User=root -qq)
apt_ready=0

# deb-src lines for the Debian suites the system itself uses (its release
# and its -updates and -security suites), written from its sources.list and
# sources.list.d/*.{list,sources}, so the mirror is the one the machine is
# configured with. Other repositories (a vendor's) are left out.
apt_sources_write() {
    local codename files=()
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release"
    if [[ -f /etc/apt/sources.list ]]; then files+=(/etc/apt/sources.list); fi
    local f
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        if [[ -f $f ]]; then files+=("$f"); fi
    done
    ((${#files[@]})) || die "no APT sources in /etc/apt"
    for f in "${files[@]}"; do
        if [[ $f == *.sources ]]; then
            # deb822 stanzas: Types, URIs, Suites, Components, Signed-By, Enabled
            awk -v codename="$codename" '
                function flush(   nu, ns, i, j, U, S, opt) {
                    if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && uris != "" && suites != "") {
                        opt = signed != "" ? " [signed-by=" signed "]" : ""
                        nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
                        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                            if (S[j] == codename || index(S[j], codename "-") == 1)
                                printf "deb-src%s %s %s %s\n", opt, U[i], S[j], comps
                    }
                    types = uris = suites = comps = signed = enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^[A-Za-z-]+:/ {
                    key = tolower($1); sub(/:$/, "", key)
                    val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                    if (key == "types") types = val; else if (key == "uris") uris = val
                    else if (key == "suites") suites = val; else if (key == "components") comps = val
                    else if (key == "signed-by") signed = val; else if (key == "enabled") enabled = tolower(val)
                }
                END { flush() }' "$f"
        else
            # one-line format: deb [options] URI SUITE COMPONENT...
            awk -v codename="$codename" '
                $1 == "deb" {
                    suite = $0; sub(/^deb[ \t]+(\[[^]]*\][ \t]+)?[^ \t]+[ \t]+/, "", suite); sub(/[ \t].*/, "", suite)
                    if (suite == codename || index(suite, codename "-") == 1) { sub(/^deb/, "deb-src"); print }
                }' "$f"
        fi
    done | sort -u >"$apt_dir/sources.list"
    [[ -s $apt_dir/sources.list ]] || die "found no Debian $codename suite in /etc/apt to take sources from"
}

apt_prepare() {
    ((apt_ready)) && return 0
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    apt_sources_write
    say "apt-get update (deb-src index in $out/apt, from: $(awk '{print $(NF-1)}' "$apt_dir/sources.list" | tr '\n' ' '))"
    apt-get "${APT_OPTS[@]}" update || die "apt-get update of the private deb-src index failed"
    apt_ready=1
}

# fetch PACKAGE: the newest source of PACKAGE in the system's suites,
# unpacked (Debian patches applied) into build/programs/src/PACKAGE/.
fetch() {
    local pkg=$1 dir=$src/$1 dsc
    [[ -f $dir/.unpacked ]] && return 0
    apt_prepare
    say "fetching the Debian source package $pkg"
    (cd "$src" && apt-get "${APT_OPTS[@]}" source --download-only "$pkg") ||
        die "apt-get source $pkg failed"
    dsc=$(ls "$src/${pkg}"_*.dsc | sort -V | tail -1)
    rm -rf "$dir"
    dpkg-source -x "$dsc" "$dir" >"$log/unpack-$pkg.log" 2>&1 ||
        { tail -20 "$log/unpack-$pkg.log"; die "dpkg-source -x $dsc failed"; }
    sed -n 's/^Version: //p' "$dsc" | head -1 >"$dir/.version"
    touch "$dir/.unpacked"
}

version_record() { # NAME PACKAGE
    local v
    v=$(cat "$src/$2/.version")
    { grep -v "^$1 " "$out/versions" 2>/dev/null || true; echo "$1 $2 $v"; } | sort >"$out/versions.tmp"
    mv "$out/versions.tmp" "$out/versions"
}

# ---- building ----

# up_to_date OUTPUT...: every output exists and is newer than every file in
# the array DEPS.
up_to_date() {
    local o d
    for o in "$@"; do
        [[ -f $o ]] || return 1
        for d in "${DEPS[@]}"; do [[ $o -nt $d ]] || return 1; done
    done
}

# compile_all OBJDIR LOG CC... -- SOURCE...: compiles each source to
# OBJDIR/BASENAME.o, as many at a time as there are cores.
compile_all() {
    local objdir=$1 logf=$2
    shift 2
    local cc=()
    while [[ $1 != -- ]]; do cc+=("$1"); shift; done
    shift
    mkdir -p "$objdir"
    : >"$logf"
    local jobs=0 failed=0 s
    for s in "$@"; do
        "${cc[@]}" -c "$s" -o "$objdir/$(basename "${s%.c}").o" >>"$logf" 2>&1 &
        if ((++jobs >= $(nproc))); then wait -n || failed=1; ((jobs--)); fi
    done
    while ((jobs > 0)); do wait -n || failed=1; ((jobs--)); done
    if ((failed)); then
        grep -B2 -A6 -m5 'error' "$logf" >&2 || tail -30 "$logf" >&2
        die "compiling for $objdir failed (log: $logf)"
    fi
}

# run_logged LOG CMD...: runs CMD (a link) with its output appended to LOG.
run_logged() {
    local logf=$1
    shift
    "$@" >>"$logf" 2>&1 || { tail -20 "$logf" >&2; die "failed: $* (log: $logf)"; }
}

# Lua: the interpreter `lua` (src/*.c but luac.c), as upstream's Makefile
# builds it (-std=gnu99 -DLUA_COMPAT_5_3), in its ISO C configuration (no
# LUA_USE_LINUX: no dlopen or readline) on both targets.
build_lua() {
    fetch lua5.4
    local tree=$src/lua5.4/src
    local DEPS=("${COMMON_DEPS[@]}" "$here/lua_config.h" "$src/lua5.4/.unpacked")
    version_record lua lua5.4
    up_to_date "$out/bin/native/lua" "$out/bin/wasm/lua.wasm" && return 0
    say "building lua natively and for wasm32-wasi"
    local files=() f t
    for f in "$tree"/*.c; do
        if [[ $f != */luac.c ]]; then files+=("$f"); fi
    done
    # Debian's luaconf.h includes a header its rules generate.
    for t in native wasm; do
        mkdir -p "$obj/lua-$t/include"
        echo "#define DEB_HOST_MULTIARCH \"$([[ $t == native ]] && gcc -dumpmachine || echo wasm32-wasi)\"" \
            >"$obj/lua-$t/include/lua5.4-deb-multiarch.h"
    done
    local flags=(-std=gnu99 -DLUA_COMPAT_5_3 -include "$here/lua_config.h")
    compile_all "$obj/lua-native" "$log/lua-native.log" \
        "${NATIVE_CC[@]}" "${flags[@]}" -I"$obj/lua-native/include" -- "${files[@]}"
    run_logged "$log/lua-native.log" gcc -o "$out/bin/native/lua" "$obj"/lua-native/*.o -lm
    compile_all "$obj/lua-wasm" "$log/lua-wasm.log" \
        "${WASM_CC[@]}" "${flags[@]}" -I"$obj/lua-wasm/include" -- "${files[@]}"
    run_logged "$log/lua-wasm.log" "${WASM_LD[@]}" -o "$out/bin/wasm/lua.wasm" "$obj"/lua-wasm/*.o "${WASM_LIBS[@]}"
}

# SQLite: the `sqlite3` shell (shell.c + the sqlite3.c amalgamation, both
# generated from the source tree by its own configure and make, which need
# tclsh). The same compile-time options on both targets: no threads, no
# extension loading, no WAL or mmap (wasi-libc has no shared memory or
# mmap), temporary tables and sorts in memory (so no temporary files).
build_sqlite() {
    fetch sqlite3
    local DEPS=("${COMMON_DEPS[@]}" "$src/sqlite3/.unpacked")
    version_record sqlite sqlite3
    up_to_date "$out/bin/native/sqlite3" "$out/bin/wasm/sqlite3.wasm" && return 0
    local amalg=$obj/sqlite-amalg
    if [[ ! -f $amalg/sqlite3.c || ! -f $amalg/shell.c || ! $amalg/sqlite3.c -nt $src/sqlite3/.unpacked ]]; then
        say "generating SQLite's amalgamation (configure, make sqlite3.c shell.c)"
        command -v tclsh >/dev/null || die "tclsh not found (Debian package tcl; scripts/deps.sh installs it)"
        rm -rf "$amalg" && mkdir -p "$amalg"
        (cd "$amalg" && "$root/$src/sqlite3/configure" --disable-tcl --disable-readline &&
            make sqlite3.c shell.c) >"$log/sqlite-amalg.log" 2>&1 ||
            { tail -30 "$log/sqlite-amalg.log"; die "generating the amalgamation failed (log: $log/sqlite-amalg.log)"; }
    fi
    say "building sqlite3 natively and for wasm32-wasi (about a minute)"
    local flags=(-DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL
        -DSQLITE_MAX_MMAP_SIZE=0 -DSQLITE_TEMP_STORE=3 -I"$amalg")
    compile_all "$obj/sqlite-native" "$log/sqlite-native.log" \
        "${NATIVE_CC[@]}" "${flags[@]}" -- "$amalg/sqlite3.c" "$amalg/shell.c"
    run_logged "$log/sqlite-native.log" gcc -o "$out/bin/native/sqlite3" "$obj"/sqlite-native/*.o -lm
    compile_all "$obj/sqlite-wasm" "$log/sqlite-wasm.log" \
        "${WASM_CC[@]}" "${flags[@]}" -- "$amalg/sqlite3.c" "$amalg/shell.c"
    run_logged "$log/sqlite-wasm.log" "${WASM_LD[@]}" -o "$out/bin/wasm/sqlite3.wasm" "$obj"/sqlite-wasm/*.o "${WASM_LIBS[@]}"
}

# bzip2: the `bzip2` program with libbz2 linked in, with the flags of its
# own Makefile (-D_FILE_OFFSET_BITS=64).
build_bzip2() {
    fetch bzip2
    local tree=$src/bzip2
    local DEPS=("${COMMON_DEPS[@]}" "$src/bzip2/.unpacked")
    version_record bzip2 bzip2
    up_to_date "$out/bin/native/bzip2" "$out/bin/wasm/bzip2.wasm" && return 0
    say "building bzip2 natively and for wasm32-wasi"
    local files=() f
    for f in blocksort huffman crctable randtable compress decompress bzlib bzip2; do files+=("$tree/$f.c"); done
    local flags=(-D_FILE_OFFSET_BITS=64)
    compile_all "$obj/bzip2-native" "$log/bzip2-native.log" "${NATIVE_CC[@]}" "${flags[@]}" -- "${files[@]}"
    run_logged "$log/bzip2-native.log" gcc -o "$out/bin/native/bzip2" "$obj"/bzip2-native/*.o
    compile_all "$obj/bzip2-wasm" "$log/bzip2-wasm.log" "${WASM_CC[@]}" "${flags[@]}" -- "${files[@]}"
    run_logged "$log/bzip2-wasm.log" "${WASM_LD[@]}" -o "$out/bin/wasm/bzip2.wasm" "$obj"/bzip2-wasm/*.o "${WASM_LIBS[@]}"
}

# GNU bc: the `bc` calculator (bc/*.c and lib/number.c, its arbitrary
# precision arithmetic). configure runs once, natively, for config.h; both
# builds use that config.h (what it detects, wasi-libc has too). The math
# library (libmath.b) is compiled into the binary as bc bytecode, which a
# first native build of bc ("fbc") generates, as bc's Makefile does; its
# fix-libmath_h step (an ed script) is redone here in awk.
build_bc() {
    fetch bc
    local tree=$src/bc
    local DEPS=("${COMMON_DEPS[@]}" "$src/bc/.unpacked")
    version_record bc bc
    up_to_date "$out/bin/native/bc" "$out/bin/wasm/bc.wasm" && return 0
    say "building bc natively and for wasm32-wasi"
    local cfg=$obj/bc-config
    if [[ ! -f $cfg/config.h || ! $cfg/config.h -nt $src/bc/.unpacked ]]; then
        rm -rf "$cfg" && mkdir -p "$cfg"
        (cd "$cfg" && "$root/$tree/configure") >"$log/bc-configure.log" 2>&1 ||
            { tail -20 "$log/bc-configure.log"; die "bc's configure failed (log: $log/bc-configure.log)"; }
    fi
    local files=() f
    for f in bc/main bc/bc bc/scan bc/execute bc/load bc/storage bc/util bc/warranty bc/global lib/number; do
        files+=("$tree/$f.c")
    done
    local flags=(-DHAVE_CONFIG_H -I"$cfg" -I"$tree/h" -I"$tree/bc")
    # fbc: bc with an empty math library, to compile libmath.b
    echo '{0}' >"$cfg/libmath.h"
    compile_all "$obj/bc-fbc" "$log/bc-fbc.log" "${NATIVE_CC[@]}" "${flags[@]}" -- "${files[@]}"
    run_logged "$log/bc-fbc.log" gcc -o "$obj/bc-fbc/fbc" "$obj"/bc-fbc/*.o
    "$obj/bc-fbc/fbc" -c "$tree/bc/libmath.b" </dev/null >"$cfg/libmath.raw"
    awk '{ l[NR] = $0 }
         END { for (i = 1; i < NR; i++) printf "%s\"%s\",%s\n", (i == 1 ? "{" : ""), l[i], (i == NR - 1 ? "0}" : "") }' \
        "$cfg/libmath.raw" >"$cfg/libmath.h"
    compile_all "$obj/bc-native" "$log/bc-native.log" "${NATIVE_CC[@]}" "${flags[@]}" -- "${files[@]}"
    run_logged "$log/bc-native.log" gcc -o "$out/bin/native/bc" "$obj"/bc-native/*.o
    compile_all "$obj/bc-wasm" "$log/bc-wasm.log" "${WASM_CC[@]}" "${flags[@]}" -- "${files[@]}"
    run_logged "$log/bc-wasm.log" "${WASM_LD[@]}" -o "$out/bin/wasm/bc.wasm" "$obj"/bc-wasm/*.o "${WASM_LIBS[@]}"
}

for p in "${programs[@]}"; do
    declare -F "build_$p" >/dev/null || die "unknown program '$p' (known: ${ALL_PROGRAMS[*]})"
    "build_$p"
done
