/*
 * cli.h -- shared by the files of the countersign CLI (this folder only).
 *
 * A command gets its parsed arguments and an open database; it prints its
 * result on stdout (one JSON object per created thing, tab-separated rows
 * for lists) and returns a process exit status: 0 ok, 1 refused or failed,
 * 2 usage error.
 */
#ifndef CLI_H
#define CLI_H

#include <json-c/json.h>
#include <stdbool.h>

#include "cs_config.h"
#include "cs_db.h"

#define CLI_MAX_ARGS 128 /* room for CS_GRANT_BASES_MAX --allow and the rest */

/* `--name value` options (repeatable), `--flag` switches, and positionals. */
struct cli_args {
    const char *pos[CLI_MAX_ARGS];
    int npos;
    const char *opt_name[CLI_MAX_ARGS];
    const char *opt_value[CLI_MAX_ARGS]; /* NULL for a switch */
    int nopt;
};

struct cli_ctx {
    const struct cs_config *cfg;
    struct cs_db *db;
    struct cli_args *args;
};

/*
 * Parses argv[from..]; `switches` lists the options that take no value
 * (NULL-terminated). Returns false with a message on stderr.
 */
bool args_parse(struct cli_args *a, int argc, char **argv, int from, const char *const *switches);
/* The last value of --name, or NULL. */
const char *args_get(const struct cli_args *a, const char *name);
bool args_has(const struct cli_args *a, const char *name);
/* Refuses options not in `known` (NULL-terminated). */
bool args_only(const struct cli_args *a, const char *const *known);
/* Parses an integer option within [min, max]; *ok false on error (message printed). */
long args_int(const struct cli_args *a, const char *name, long def, long min, long max, bool *ok);

/* Reports a failed call: "countersign: <code>: <detail>"; returns 1. */
int cli_fail(enum cs_err rc, const char *err);
/* Prints obj as one JSON line (every JSON the CLI prints goes through here) and releases it; 0. */
int cli_print_json(json_object *obj);

int admin_main(struct cli_ctx *c, const char *noun, const char *verb);
int approvals_main(struct cli_ctx *c, const char *noun, const char *verb);

#endif
