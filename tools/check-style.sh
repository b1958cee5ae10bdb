#!/usr/bin/env bash
# check-style.sh -- the house rules that a compiler does not check (STYLE.md).
#
#   - raw allocation and unbounded string functions only in lib/cs_mem.c;
#   - no typedef'd structs, no // comments, every C file opens with a comment;
#   - SQL only in sql/ (no statements in C string literals);
#   - C files stay under 800 lines; folders with more than three files have a README.md.
# Exit status 1 with one line per violation.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
report() { echo "check-style: $*"; fail=1; }

mapfile -t cfiles < <(git ls-files '*.c' '*.h' | grep -v '^tests/fuzz/corpus/' || true)

banned='(^|[^A-Za-z0-9_])(malloc|calloc|realloc|free|strdup|strndup|sprintf|vsprintf|strcpy|strcat|strtok|gets)[[:space:]]*\('
for f in "${cfiles[@]}"; do
    [[ "$f" == lib/cs_mem.c ]] && continue
    grep -nE "$banned" "$f" | grep -vE '^\s*[0-9]+:\s*(/\*|\*)' | while IFS= read -r line; do
        echo "check-style: $f:$line: use the cs_mem.h wrappers"
    done | grep . && fail=1
    if grep -nE 'typedef[[:space:]]+struct' "$f" >/dev/null; then
        report "$f: typedef'd struct (write struct cs_<noun>)"
    fi
    if grep -nE '(^|[^:"])//' "$f" | grep -vE '"[^"]*//[^"]*"' >/dev/null; then
        report "$f: // comment (use /* */)"
    fi
    if [[ "$(head -c 2 "$f")" != "/*" ]]; then
        report "$f: must open with a /* */ comment saying what it is"
    fi
    lines=$(wc -l < "$f")
    if ((lines > 800)); then
        report "$f: $lines lines (split it: a file is one noun, under ~800 lines)"
    fi
    if grep -nE '"[[:space:]]*(SELECT|INSERT[[:space:]]+INTO|UPDATE[[:space:]]+[a-z_]+[[:space:]]+SET|DELETE[[:space:]]+FROM|BEGIN|COMMIT|ROLLBACK)\b' "$f" >/dev/null; then
        report "$f: SQL in C (put it in sql/queries/<noun>.sql under a -- name: marker)"
    fi
done

for d in $(git ls-files | xargs -n1 dirname | sort -u); do
    n=$(git ls-files "$d" | awk -F/ -v d="$d" 'index($0, d "/") == 1 && split(substr($0, length(d) + 2), p, "/") == 1' | wc -l)
    # Data folders (fuzz corpora, dictionaries, regressions) need no README.
    if ((n > 3)) && [[ ! -f "$d/README.md" ]] && [[ "$d" != "." ]] && [[ "$d" != tests/fuzz/?* ]]; then
        report "$d/: $n files and no README.md"
    fi
done

exit $fail
