# sqlgen.awk -- turns sql/queries/*.sql and sql/migrations/*.sql into C.
#
#   awk -v mode=header  -f tools/sqlgen.awk sql/queries/*.sql   > cs_sql_gen.h
#   awk -v mode=source  -f tools/sqlgen.awk sql/queries/*.sql sql/migrations/*.sql > cs_sql_gen.c
#
# A query file holds statements each introduced by "-- name: <snake_name>";
# the comment lines right after the marker document it and are dropped from
# the text. A migration file NNN_<what>.sql becomes one migration, version NNN.
# The build runs this; nobody edits the output.
#
# From each query's SQL it also derives what the C side must agree with:
#   - its parameter count CSP_<QUERY>: the highest $N outside strings and
#     comments (cs_db_exec refuses another count);
#   - its result columns, in order, named CSC_<QUERY>_<COLUMN>: the output
#     list of the top-level SELECT, or the RETURNING list of a top-level
#     INSERT / UPDATE / DELETE. A column is named by its "AS name", else by
#     the column it reads (t.col, (t.rec).col, with any ::casts); anything
#     else must say AS, and two columns may not share a name -- the
#     generator fails naming the query. Reordering a SELECT renumbers the
#     names with it, so C that reads columns by name follows. cs_db_exec
#     refuses a result with another number of columns.
#
#   awk -v mode=columns -f tools/sqlgen.awk sql/queries/*.sql
# lists query, file, column number, end offset in the query's text, name
# (empty when missing) and the expression, one column a line, for editors.
# tools/test-sqlgen.sh (make check) holds the cases.

function cstr(s) {
    gsub(/\\/, "\\\\\\\\", s)
    gsub(/"/, "\\\"", s)
    gsub(/\t/, "    ", s)
    return "\"" s "\\n\""
}
function flush_query() {
    if (qname != "") {
        names[nq] = qname; texts[nq] = qtext; files[nq] = qfile; raws[nq] = qraw; nq++
    }
    qname = ""; qtext = ""; qraw = ""
}
function fail(msg) {
    print "sqlgen: " msg > "/dev/stderr"
    failed = 1
}
# mask(s): s with every character inside parentheses, quotes and comments
# replaced by "~" (the parentheses themselves kept), lower-cased: what is
# left is the statement's top level. mask(s, 1) blanks only quotes and
# comments, and keeps the case.
function mask(s, flat,    out, i, c, n, depth, q, nx) {
    out = ""; depth = 0; q = ""; n = length(s)
    for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (q == "-") {                       # a -- comment, to the end of the line
            if (c == "\n") { q = ""; out = out c } else out = out "~"
            continue
        }
        if (q != "") {
            if (c == q) {
                nx = substr(s, i + 1, 1)
                if (nx == q) { out = out "~~"; i++; continue }   # '' or "" inside
                q = ""
            }
            out = out "~"
            continue
        }
        if (c == "-" && substr(s, i + 1, 1) == "-") { q = "-"; out = out "~"; continue }
        if (c == "'" || c == "\"") { q = c; out = out "~"; continue }
        if (flat) { out = out c; continue }
        if (c == "(") { out = out (depth == 0 ? "(" : "~"); depth++; continue }
        if (c == ")") { depth--; out = out (depth == 0 ? ")" : "~"); continue }
        out = out (depth > 0 ? "~" : tolower(c))
    }
    return out
}
# First position >= from where word w stands alone in masked m (0: none).
function word_at(m, w, from,    rest, p, off) {
    off = from - 1
    rest = substr(m, from)
    while ((p = match(rest, "(^|[^a-z0-9_$.])" w "([^a-z0-9_]|$)")) > 0) {
        p += (substr(rest, p, 1) ~ /[^a-z0-9_$.]/) ? 1 : 0
        return off + p
    }
    return 0
}
function last_word(m, w,    p, q) {
    q = 0
    while ((p = word_at(m, w, q + 1)) > 0) q = p
    return q
}
function trim(s) { sub(/^[ \t\n]+/, "", s); sub(/[ \t\n]+$/, "", s); return s }
# Fills cols[1..ncols] with the result columns of raw statement s of query qn.
function columns(s, qn,    m, n, start, stop, p, w, k, list, mlist, i, c, item, mitem,
                 name, seen, kws, verb) {
    ncols = 0
    m = mask(s, 0)
    n = length(m)
    # The top-level verb: CTE bodies are masked, so the first verb is the statement's.
    # The top-level verb: CTE bodies are masked, so the first verb is the statement's.
    start = 0; verb = ""
    split("select insert update delete values table show explain fetch call execute " \
          "do listen unlisten notify begin commit rollback savepoint release set reset " \
          "create alter drop grant revoke lock copy truncate", kws, " ")
    p = n + 1
    for (k in kws) { w = word_at(m, kws[k], 1); if (w > 0 && w < p) { p = w; verb = kws[k] } }
    if (verb ~ /^(values|table|show|explain|fetch|call|execute)$/ || verb == "")
        fail(qn ": cannot tell the result columns of a statement that starts " \
             (verb == "" ? "with no known verb" : "with " toupper(verb)))
    if (verb == "select") {
        start = p + 6
        if ((w = word_at(m, "distinct", start)) > 0 && trim(substr(m, start, w - start)) == "") {
            start = w + 8
            if ((w = word_at(m, "on", start)) > 0 && trim(substr(m, start, w - start)) == "") {
                start = w + 2
                while (substr(m, start, 1) != ")" && start <= n) start++
                start++
            }
        }
        stop = n + 1
        split("from where group order limit union intersect except for having window offset " \
              "into fetch", kws, " ")
        for (k in kws) { w = word_at(m, kws[k], start); if (w > 0 && w < stop) stop = w }
    } else if (verb == "insert" || verb == "update" || verb == "delete") {
        w = last_word(m, "returning")
        if (w == 0) return
        start = w + 9; stop = n + 1
    } else
        return
    list = substr(s, start, stop - start); mlist = substr(m, start, stop - start)
    sub(/;[ \t\n~]*$/, "", mlist); list = substr(list, 1, length(mlist))
    # Split on top-level commas.
    p = 1
    for (i = 1; i <= length(mlist) + 1; i++) {
        c = substr(mlist, i, 1)
        if (c == "," || i > length(mlist)) {
            item = trim(substr(list, p, i - p)); mitem = trim(substr(mlist, p, i - p))
            p = i + 1
            name = ""
            if (match(mitem, /[ \t\n]as[ \t\n]+[a-z_][a-z0-9_]*$/)) {
                name = substr(mitem, RSTART); sub(/^[ \t\n]+as[ \t\n]+/, "", name)
            } else if (mitem ~ /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?(::[a-z0-9_ ]+(\[\])?)*$/ ||
                       mitem ~ /^\(~*\)\.[a-z_][a-z0-9_]*(::[a-z0-9_ ]+(\[\])?)*$/) {
                name = mitem; sub(/::.*/, "", name); sub(/.*\./, "", name)
            }
            items[ncols + 1] = item; unnamed[ncols + 1] = (name == ""); iend[ncols + 1] = start + i - 2
            if (name == "") {
                gsub(/[ \t\n]+/, " ", item)
                fail(qn ": result column " (ncols + 1) " needs \"AS name\": " item)
                name = "col" (ncols + 1)
            }
            if (name in seen) fail(qn ": two result columns are named " name)
            seen[name] = 1
            cols[++ncols] = name
        }
    }
}
function nparams(s,    n, rest, v) {
    n = 0; rest = mask(s, 1)
    while (match(rest, /\$[0-9]+/)) {
        v = substr(rest, RSTART + 1, RLENGTH - 1) + 0
        if (v > n) n = v
        rest = substr(rest, RSTART + RLENGTH)
    }
    return n
}
BEGIN { nq = 0; nm = 0; qname = ""; failed = 0 }
FNR == 1 {
    flush_query()
    ismig = (FILENAME ~ /migrations\/[0-9]+_[^\/]*\.sql$/)
    if (ismig) {
        base = FILENAME; sub(/.*\//, "", base)
        ver = base; sub(/_.*/, "", ver)
        mvers[nm] = ver + 0; mnames[nm] = base; mtexts[nm] = ""; nm++
    }
}
{
    if (ismig) { mtexts[nm - 1] = mtexts[nm - 1] "    " cstr($0) "\n"; next }
    if ($0 ~ /^-- name: /) {
        flush_query()
        qname = $0; sub(/^-- name: */, "", qname); sub(/[ \t]+$/, "", qname)
        qfile = FILENAME; sub(/.*\//, "", qfile)
        indoc = 1
        next
    }
    if (qname == "") next
    if (indoc && $0 ~ /^--/) next
    indoc = 0
    if ($0 ~ /^[ \t]*$/) next
    qtext = qtext "    " cstr($0) "\n"
    qraw = qraw $0 "\n"
}
END {
    flush_query()
    for (i = 0; i < nq; i++) {
        columns(raws[i], names[i])
        qcols[i] = ncols
        qparams[i] = nparams(raws[i])
        for (k = 1; k <= ncols; k++) {
            colname[i, k] = cols[k]
            c = "CSC_" toupper(names[i]) "_" toupper(cols[k])
            if ((c in owner) && owner[c] != names[i])
                fail(names[i] ": " c " is also a column of " owner[c])
            owner[c] = names[i]
            if (mode == "columns") {
                item = items[k]; gsub(/\n/, "\\n", item)
                print names[i] "\t" files[i] "\t" k "\t" iend[k] "\t" \
                      (unnamed[k] ? "" : cols[k]) "\t" item
            }
        }
    }
    if (mode == "columns") exit 0
    if (failed) exit 1
    if (mode == "header") {
        print "/* Generated by tools/sqlgen.awk from sql/queries. Do not edit. */"
        print "#ifndef CS_SQL_GEN_H"
        print "#define CS_SQL_GEN_H"
        print "enum cs_query {"
        for (i = 0; i < nq; i++) { u = toupper(names[i]); print "    CSQ_" u "," }
        print "    CSQ__COUNT"
        print "};"
        print ""
        print "/* Parameter counts: the highest $N of each query. */"
        print "enum cs_query_nparams {"
        for (i = 0; i < nq; i++) print "    CSP_" toupper(names[i]) " = " qparams[i] ","
        print "};"
        print ""
        print "/* Result columns: cs_db_str(res, row, CSC_<QUERY>_<COLUMN>). */"
        for (i = 0; i < nq; i++) {
            if (!qcols[i]) continue
            u = toupper(names[i])
            line = "enum {"
            for (k = 1; k <= qcols[i]; k++) line = line " CSC_" u "_" toupper(colname[i, k]) ","
            print line " CSC_" u "__COUNT };"
        }
        print "#endif"
        exit
    }
    print "/* Generated by tools/sqlgen.awk from sql/. Do not edit. */"
    print "#include \"cs_db.h\""
    print ""
    print "const struct cs_query_def cs_queries[CSQ__COUNT] = {"
    for (i = 0; i < nq; i++) {
        print "    [CSQ_" toupper(names[i]) "] = {\"" names[i] "\", \"" files[i] "\", " \
              qparams[i] ", " qcols[i] ","
        printf "%s", texts[i]
        print "    },"
    }
    print "};"
    print ""
    print "const struct cs_migration cs_migrations[] = {"
    for (i = 0; i < nm; i++) {
        print "    {" mvers[i] ", \"" mnames[i] "\","
        printf "%s", mtexts[i]
        print "    },"
    }
    print "};"
    print "const int cs_nmigrations = " nm ";"
}
