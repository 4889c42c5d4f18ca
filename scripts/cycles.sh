#!/usr/bin/env bash
# cycles.sh — finds circular dependencies between the files of one folder.
#
# For each folder of src/ named, reads the object files the build made of
# it (OBJ/FOLDER/*.o) with nm: an object that uses (U) a global symbol
# another object of the same folder defines depends on that file. Prints the
# graph ("a.c -> b.c: the symbols") and every cycle, i.e. every group of
# files that reach each other (a strongly connected component of more than
# one file). A folder whose files form a DAG can be read bottom-up and split
# further; a cycle means two files that cannot be understood apart.
#
# Usage: scripts/cycles.sh [-q] [--allow FOLDER]... OBJ FOLDER...
#   OBJ            where the build put the objects (build/obj)
#   FOLDER         a folder of src/ (engine, http, ...)
#   -q             print only the cycles, not the whole graph
#   --allow F      report F's cycles but do not fail on them (a folder being
#                  restructured elsewhere)
# Exits 1 when a folder not allowed has a cycle, 2 on a usage error. Run
# from the repository root (it reads src/FOLDER to know the folder's files).
set -uo pipefail

quiet=0
allowed=" "
while (($#)); do
    case $1 in
    -q) quiet=1; shift ;;
    --allow) allowed+="$2 "; shift 2 ;;
    *) break ;;
    esac
done
if (($# < 2)); then
    echo "usage: $0 [-q] [--allow FOLDER]... OBJ FOLDER..." >&2
    exit 2
fi
obj=$1
shift

status=0
for folder in "$@"; do
    objs=("$obj/$folder"/*.o)
    if [[ ! -e ${objs[0]} ]]; then
        echo "cycles: no objects in $obj/$folder (build first)" >&2
        exit 2
    fi
    # One line per symbol: "FILE D SYM" for a definition, "FILE U SYM" for
    # a use. Weak and common symbols count as definitions.
    out=$(for o in "${objs[@]}"; do
        f=$(basename "$o" .o).c
        # An object whose source is gone (a file renamed since the build)
        # is no part of the folder any more.
        [[ -f src/$folder/$f ]] || continue
        nm "$o" | awk -v f="$f" '
            NF == 3 && $2 ~ /^[TDBRVWC]$/ { print f, "D", $3 }
            NF == 2 && $1 == "U"          { print f, "U", $2 }'
    done | awk -v folder="$folder" -v quiet="$quiet" '
        $2 == "D" { def[$3] = $1; next }
        { uses[NR] = $0 }
        END {
            n = 0
            for (k in uses) {
                split(uses[k], u, " ")
                to = def[u[3]]
                if (to == "" || to == u[1])
                    continue
                e = u[1] SUBSEP to
                if (!(e in syms)) {
                    syms[e] = u[3]
                    for (x = 1; x <= 2; x++) {
                        name = x == 1 ? u[1] : to
                        if (!(name in idx)) { idx[name] = ++n; node[n] = name }
                    }
                    reach[idx[u[1]], idx[to]] = 1
                } else if (index(" " syms[e] ", ", " " u[3] ", ") == 0) {
                    syms[e] = syms[e] ", " u[3]
                }
            }
            if (!quiet)
                for (e in syms) {
                    split(e, p, SUBSEP)
                    printf "%s: %s -> %s: %s\n", folder, p[1], p[2], syms[e] | "sort"
                }
            close("sort")
            # Transitive closure (a folder has a few dozen files at most).
            for (k = 1; k <= n; k++)
                for (i = 1; i <= n; i++)
                    if ((i, k) in reach)
                        for (j = 1; j <= n; j++)
                            if ((k, j) in reach)
                                reach[i, j] = 1
            ncyc = 0
            for (i = 1; i <= n; i++) {
                if (i in done)
                    continue
                group = node[i]
                for (j = i + 1; j <= n; j++)
                    if (((i, j) in reach) && ((j, i) in reach)) {
                        group = group " " node[j]
                        done[j] = 1
                    }
                if (group != node[i]) {
                    printf "CYCLE %s: %s\n", folder, group
                    ncyc++
                }
            }
            if (ncyc == 0)
                printf "%s: no cycle\n", folder
        }')
    echo "$out"
    if grep -q '^CYCLE' <<<"$out"; then
        if [[ $allowed == *" $folder "* ]]; then
            echo "cycles: $folder has a cycle (allowed: --allow $folder)"
        else
            status=1
        fi
    fi
done
exit $status
