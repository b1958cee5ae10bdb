/*
 * args.c -- command-line options of the countersign CLI (see cli.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cs_json.h"

bool args_parse(struct cli_args *a, int argc, char **argv, int from, const char *const *switches)
{
    memset(a, 0, sizeof(*a));
    for (int i = from; i < argc; i++) {
        const char *s = argv[i];
        if (strncmp(s, "--", 2) != 0 || strlen(s) == 2) {
            if (a->npos == CLI_MAX_ARGS) {
                fprintf(stderr, "countersign: too many arguments\n");
                return false;
            }
            a->pos[a->npos++] = s;
            continue;
        }
        if (a->nopt == CLI_MAX_ARGS) {
            fprintf(stderr, "countersign: too many options\n");
            return false;
        }
        const char *name = s + 2;
        bool is_switch = false;
        for (const char *const *sw = switches; sw && *sw; sw++)
            is_switch = is_switch || strcmp(*sw, name) == 0;
        a->opt_name[a->nopt] = name;
        if (!is_switch) {
            if (i + 1 >= argc) {
                fprintf(stderr, "countersign: --%s needs a value\n", name);
                return false;
            }
            a->opt_value[a->nopt] = argv[++i];
        }
        a->nopt++;
    }
    return true;
}

const char *args_get(const struct cli_args *a, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < a->nopt; i++)
        if (strcmp(a->opt_name[i], name) == 0)
            v = a->opt_value[i];
    return v;
}

bool args_has(const struct cli_args *a, const char *name)
{
    for (int i = 0; i < a->nopt; i++)
        if (strcmp(a->opt_name[i], name) == 0)
            return true;
    return false;
}

bool args_only(const struct cli_args *a, const char *const *known)
{
    for (int i = 0; i < a->nopt; i++) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, a->opt_name[i]) == 0;
        if (!ok) {
            fprintf(stderr, "countersign: unknown option --%s (try --help)\n", a->opt_name[i]);
            return false;
        }
    }
    return true;
}

long args_int(const struct cli_args *a, const char *name, long def, long min, long max, bool *ok)
{
    const char *v = args_get(a, name);
    if (!v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        fprintf(stderr, "countersign: --%s must be an integer in [%ld, %ld]\n", name, min, max);
        *ok = false;
        return def;
    }
    return n;
}

int cli_print_json(json_object *obj)
{
    printf("%s\n", cs_json_text(obj, NULL));
    json_object_put(obj);
    return 0;
}

int cli_fail(enum cs_err rc, const char *err)
{
    fprintf(stderr, "countersign: %s: %s\n", cs_err_code(rc),
            err && *err ? err : cs_err_info(rc)->message);
    return 1;
}
