/*
 * fuzz_config.c -- libFuzzer target: configuration from the environment
 * (cs_config_load in lib/cs_config.c, with its master-key parser).
 *
 * Input: one byte whose low four bits are the CS_PROC_* mask to load for
 * (0 means all), then lines "NAME=value". NAME is a variable of
 * cs_config_keys[] or the decimal index of one; the last line for a name
 * wins. A getenv-like callback serves those values. CS_MASTER_KEY_FILE is
 * special: its value is written to a private temporary file and the
 * callback serves that file's path, so the fuzzer drives the key file's
 * contents but never opens other files.
 *
 * Checked: a refusal is CS_ERR_CONFIG naming a CS_ variable; an accepted
 * configuration holds, for every key, the value served (when the process
 * reads that key) or the default, integers within their bounds, the
 * derived topic names, and a master key exactly when one was given.
 * cs_config_free releases everything after either outcome (leaks fail).
 */
#include <stdlib.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_crypto.h"
#include "fuzz.h"

#define MAX_VARS 64

struct var {
    const char *name; /* a cs_config_keys[] env name */
    char *value;
};

static struct var vars[MAX_VARS];
static int nvars;
static char key_file[64];

static void remove_key_file(void)
{
    if (key_file[0])
        unlink(key_file);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(key_file, sizeof(key_file), "/tmp/cs-fuzz-config-XXXXXX");
    int fd = mkstemp(key_file);
    FUZZ_CHECK(fd >= 0);
    close(fd);
    atexit(remove_key_file);
    return 0;
}

static const char *served(const char *name)
{
    for (int i = nvars - 1; i >= 0; i--)
        if (strcmp(vars[i].name, name) == 0)
            return vars[i].value;
    return NULL;
}

static const char *get(const char *name)
{
    const char *v = served(name);
    if (v && *v && strcmp(name, "CS_MASTER_KEY_FILE") == 0)
        return key_file;
    return v;
}

static const struct cs_config_key *find_key(const char *name, size_t n)
{
    for (size_t i = 0; i < cs_config_nkeys; i++)
        if (strlen(cs_config_keys[i].env) == n && memcmp(cs_config_keys[i].env, name, n) == 0)
            return &cs_config_keys[i];
    if (n == 0 || n > 3)
        return NULL;
    size_t idx = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return NULL;
        idx = idx * 10 + (size_t)(name[i] - '0');
    }
    return idx < cs_config_nkeys ? &cs_config_keys[idx] : NULL;
}

static void parse_input(const uint8_t *data, size_t size)
{
    nvars = 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end && nvars < MAX_VARS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(line_end - p));
        const struct cs_config_key *k = eq ? find_key(p, (size_t)(eq - p)) : NULL;
        if (k) {
            vars[nvars].name = k->env;
            vars[nvars].value = fuzz_cstr((const uint8_t *)eq + 1, (size_t)(line_end - eq - 1));
            nvars++;
        }
        p = line_end + 1;
    }
}

static void write_key_file(void)
{
    const char *v = served("CS_MASTER_KEY_FILE");
    FILE *f = fopen(key_file, "w");
    FUZZ_CHECK(f != NULL);
    if (v && *v)
        fprintf(f, "%s\n", v);
    fclose(f);
}

/* The value a key must hold after a successful load, as text (NULL: unset). */
static const char *expected(const struct cs_config_key *k, unsigned procs)
{
    const char *v = served(k->env);
    if (v && *v && (k->procs & procs))
        return strcmp(k->env, "CS_MASTER_KEY_FILE") == 0 ? key_file : v;
    return k->def;
}

static void check_loaded(const struct cs_config *cfg, unsigned procs)
{
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        const struct cs_config_key *k = &cs_config_keys[i];
        const char *want = expected(k, procs);
        const char *field = (const char *)cfg + k->offset;
        switch (k->type) {
        case CS_CFG_STRING:
        case CS_CFG_SECRET: {
            const char *got = *(char *const *)(const void *)field;
            if (strcmp(k->env, "CS_INSTANCE_ID") == 0 && !want)
                FUZZ_CHECK(got && *got); /* hostname:pid */
            else
                FUZZ_CHECK(want ? got && strcmp(got, want) == 0 : got == NULL);
            break;
        }
        case CS_CFG_INT: {
            int64_t got;
            memcpy(&got, field, sizeof(got));
            FUZZ_CHECK(got >= k->min && got <= k->max);
            FUZZ_CHECK(want && got == strtoll(want, NULL, 10));
            break;
        }
        case CS_CFG_BOOL: {
            bool got;
            memcpy(&got, field, sizeof(got));
            FUZZ_CHECK(got == (want && (!strcmp(want, "1") || !strcmp(want, "true"))));
            break;
        }
        }
    }
    char topic[160];
    snprintf(topic, sizeof(topic), "%s.requests", cfg->topic_prefix);
    FUZZ_CHECK(strcmp(topic, cfg->topic_requests) == 0);
    snprintf(topic, sizeof(topic), "%s.dlq", cfg->topic_prefix);
    FUZZ_CHECK(strcmp(topic, cfg->topic_dlq) == 0);
    FUZZ_CHECK(cfg->have_master_key == (cfg->master_key_b64 || cfg->master_key_file));
    char err[CS_ERRLEN];
    FUZZ_CHECK((cs_config_require_master_key(cfg, err) == CS_OK) == cfg->have_master_key);
    if (cfg->master_key_b64 && strlen(cfg->master_key_b64) == 64) {
        unsigned char raw[CS_MASTER_KEY_LEN];
        if (cs_hex_decode(cfg->master_key_b64, 64, raw, sizeof(raw)) == CS_OK)
            FUZZ_CHECK(memcmp(raw, cfg->master_key, sizeof(raw)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned procs = data[0] & CS_PROC_ALL;
    if (!procs)
        procs = CS_PROC_ALL;
    parse_input(data + 1, size - 1);
    write_key_file();

    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = cs_config_load(&cfg, procs, get, err);
    if (rc == CS_OK)
        check_loaded(&cfg, procs);
    else
        FUZZ_CHECK(rc == CS_ERR_CONFIG && strncmp(err, "CS_", 3) == 0);
    cs_config_free(&cfg);
    for (int i = 0; i < nvars; i++)
        cs_free(vars[i].value);
    nvars = 0;
    return 0;
}
