#!/usr/bin/env bash
# Format Countersign's C sources with clang-format and the repository's .clang-format.
#
# Usage:
#   tools/format.sh [FILE...]           rewrite the files in place (make format)
#   tools/format.sh --check [FILE...]   change nothing: name each file that is not
#                                       formatted, with the lines that would change,
#                                       and exit 1 if there is one
# Without FILEs: every tracked .c and .h file (git ls-files).
#
# clang-format versions format differently: the style was written for clang-format
# 14, Debian 12's `clang-format` package (.ci/install-deps.sh installs it); set
# CLANG_FORMAT to use another binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"

check=0
if [[ "${1:-}" == "--check" ]]; then
    check=1
    shift
fi
command -v "$CLANG_FORMAT" >/dev/null ||
    { echo "format.sh: $CLANG_FORMAT not found (apt-get install clang-format)" >&2; exit 2; }

if (($# > 0)); then
    files=("$@")
else
    mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/' || true)
fi

if ((check == 0)); then
    "$CLANG_FORMAT" -i --style=file "${files[@]}"
    exit 0
fi

bad=0
lines=0
for f in "${files[@]}"; do
    n="$("$CLANG_FORMAT" --style=file "$f" | diff -U0 "$f" - | grep -c '^+[^+]' || true)"
    if ((n > 0)); then
        echo "$f: $n lines would change"
        bad=$((bad + 1))
        lines=$((lines + n))
    fi
done
if ((bad > 0)); then
    echo "format.sh: $lines lines in $bad of ${#files[@]} files are not formatted: run make format" >&2
    exit 1
fi
