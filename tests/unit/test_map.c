/*
 * test_map.c -- unit tests of the string-keyed hash map (lib/cs_map.c).
 *
 * Holds the contract of cs_map.h: keys are copied, values are borrowed
 * and returned on replace and delete, lookups survive the table growing,
 * and cs_map_free hands each remaining value to the callback exactly once
 * (valgrind checks that nothing is lost).
 */
#include <stdio.h>
#include <string.h>

#include "cs_map.h"
#include "cs_mem.h"
#include "cs_test.h"

static int freed;

static void free_counted(void *v)
{
    freed++;
    cs_free(v);
}

CS_TEST(empty_map)
{
    struct cs_map *m = cs_map_new();
    CS_CHECK_EQ_INT(cs_map_len(m), 0);
    CS_CHECK(cs_map_get(m, "a") == NULL);
    CS_CHECK(cs_map_del(m, "a") == NULL);
    cs_map_free(m, NULL);
    cs_map_free(NULL, NULL);
    cs_map_free(NULL, free_counted);
}

CS_TEST(put_get_replace_delete)
{
    struct cs_map *m = cs_map_new();
    int one = 1, two = 2, three = 3;
    CS_CHECK(cs_map_put(m, "one", &one) == NULL);
    CS_CHECK(cs_map_put(m, "two", &two) == NULL);
    CS_CHECK(cs_map_put(m, "", &three) == NULL);
    CS_CHECK_EQ_INT(cs_map_len(m), 3);
    CS_CHECK(cs_map_get(m, "one") == &one);
    CS_CHECK(cs_map_get(m, "two") == &two);
    CS_CHECK(cs_map_get(m, "") == &three);
    CS_CHECK(cs_map_get(m, "ONE") == NULL);
    CS_CHECK(cs_map_get(m, "on") == NULL);

    CS_CHECK(cs_map_put(m, "one", &three) == &one);
    CS_CHECK_EQ_INT(cs_map_len(m), 3);
    CS_CHECK(cs_map_get(m, "one") == &three);

    CS_CHECK(cs_map_del(m, "one") == &three);
    CS_CHECK_EQ_INT(cs_map_len(m), 2);
    CS_CHECK(cs_map_get(m, "one") == NULL);
    CS_CHECK(cs_map_del(m, "one") == NULL);
    CS_CHECK_EQ_INT(cs_map_len(m), 2);
    cs_map_free(m, NULL);
}

CS_TEST(keys_are_copied)
{
    struct cs_map *m = cs_map_new();
    char key[16] = "agent-1";
    int v = 7;
    cs_map_put(m, key, &v);
    cs_strlcpy(key, "agent-2", sizeof(key));
    CS_CHECK(cs_map_get(m, "agent-1") == &v);
    CS_CHECK(cs_map_get(m, "agent-2") == NULL);
    cs_map_free(m, NULL);
}

CS_TEST(many_keys_survive_growth)
{
    enum { N = 5000 };
    struct cs_map *m = cs_map_new();
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        CS_CHECK(cs_map_put(m, key, cs_asprintf("value-%d", i)) == NULL);
    }
    CS_CHECK_EQ_INT(cs_map_len(m), N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        const char *v = cs_map_get(m, key);
        char want[32];
        snprintf(want, sizeof(want), "value-%d", i);
        bad += !v || strcmp(v, want) != 0;
    }
    CS_CHECK_EQ_INT(bad, 0);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof(key), "key-%d", i);
        cs_free(cs_map_del(m, key));
    }
    CS_CHECK_EQ_INT(cs_map_len(m), N / 2);
    bad = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        bad += (cs_map_get(m, key) == NULL) != (i % 2 == 0);
    }
    CS_CHECK_EQ_INT(bad, 0);
    freed = 0;
    cs_map_free(m, free_counted);
    CS_CHECK_EQ_INT(freed, N / 2);
}

CS_TEST_MAIN(CS_RUN(empty_map), CS_RUN(put_get_replace_delete), CS_RUN(keys_are_copied),
             CS_RUN(many_keys_survive_growth))
