/*
 * test_json.c -- unit tests of strict JSON input (lib/cs_json.c).
 *
 * Every HTTP body and Kafka envelope goes through cs_json_parse, so these
 * tests feed it what an attacker or a sloppy client would send: trailing
 * garbage, NUL bytes, nesting deeper than CS_JSON_MAX_DEPTH, invalid UTF-8
 * (overlong forms, surrogates, truncated sequences), and the extensions
 * json-c accepts on its own (NaN, single quotes, raw control characters).
 * Numbers must follow RFC 8259's grammar and fit what Postgres json and
 * jsonb take, and a bare value ending the input ("5", "null") is a whole
 * document (fuzz KNOWN-1 and KNOWN-4). The getters must name the offending
 * field in err, and cs_json_only_keys must refuse an unknown key.
 */
#include <string.h>

#include "cs_json.h"
#include "cs_test.h"

/* Parses a string literal (its length from sizeof, so it may hold NULs). */
#define PARSE(lit, out, err) cs_json_parse((lit), sizeof(lit) - 1, (out), (err))

static json_object *doc(const char *s)
{
    json_object *o = NULL;
    char err[CS_ERRLEN];
    if (cs_json_parse(s, strlen(s), &o, err) != CS_OK)
        printf("  fixture does not parse: %s\n", err);
    return o;
}

CS_TEST(parse_accepts_json)
{
    json_object *o = NULL;
    char err[CS_ERRLEN];
    CS_CHECK_RC(PARSE(" {\"a\": [1, 2.5, \"x\", true, null, {}]}\r\n\t ", &o, err), CS_OK);
    CS_CHECK(json_object_is_type(o, json_type_object));
    json_object_put(o);
    CS_CHECK_RC(PARSE("[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]", &o, err), CS_OK);
    json_object_put(o);
    CS_CHECK_RC(PARSE("[\"\\u00e9\\ud83d\\ude00\\n\"]", &o, err), CS_OK);
    json_object_put(o);
    CS_CHECK_RC(PARSE("\"scalar\"", &o, err), CS_OK);
    json_object_put(o);
}

/* KNOWN-1: json-c waits for a delimiter after a number or literal. */
CS_TEST(parse_accepts_bare_values_at_the_end)
{
    static const char *const good[] = {"5",  "-0",    "1.5e-3", "true", "false",
                                       "5 ", "\n7\t", "\"s\"",  NULL};
    for (const char *const *s = good; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_OK))
            printf("  input: [%s]: %s\n", *s, err);
        CS_CHECK(o != NULL);
        json_object_put(o);
    }
    json_object *o = NULL;
    char err[CS_ERRLEN];
    CS_CHECK_RC(PARSE("5", &o, err), CS_OK);
    CS_CHECK(json_object_is_type(o, json_type_int) && json_object_get_int(o) == 5);
    json_object_put(o);
    /* A top-level null is CS_OK with no object. */
    o = (json_object *)1;
    CS_CHECK_RC(PARSE("null", &o, err), CS_OK);
    CS_CHECK(o == NULL);
    o = (json_object *)1;
    CS_CHECK_RC(PARSE(" null\n", &o, err), CS_OK);
    CS_CHECK(o == NULL);
    /* A literal or number cut short is still refused. */
    static const char *const bad[] = {"nul", "tru", "-", "1e", "1.", "[1", "{\"a\":5", NULL};
    for (const char *const *s = bad; *s; s++) {
        o = NULL;
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input: [%s]\n", *s);
        CS_CHECK(o == NULL);
    }
    CS_CHECK_RC(PARSE("[1", &o, err), CS_ERR_MALFORMED_JSON);
    CS_CHECK_HAS(err, "incomplete");
}

/* KNOWN-4: numbers Postgres json and jsonb refuse, which would fail a whole insert. */
CS_TEST(parse_refuses_numbers_outside_rfc8259)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"[1.]", "digit after '.'"},
        {"[1.e5]", "digit after '.'"},
        {"{\"a\":1.}", "digit after '.'"},
        {"1.", "digit after '.'"},
        {"[-012.5]", "leading zero"},
        {"[00]", "leading zero"},
        {"-01", "leading zero"},
        {"[-.3]", "digit before"},
        {"[.5]", "digit before"},
        {"[+1]", "digit before"},
        {"[-]", "digit before"},
        {"[1e]", "exponent"},
        {"[1e+]", "exponent"},
        {"[1E-x]", "exponent"},
        {"[1e200000]", "exponent above 1000"},
        {"[1e1001]", "exponent above 1000"},
        {"[1e-16384]", "exponent below -1000"},
        {"[2E+00001001]", "exponent above 1000"},
        {"[1-2]", "malformed number"},
        {"[1.5.5]", "malformed number"},
        {"[1e5e5]", "malformed number"},
        {"[0-]", "malformed number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(bad[i].text, strlen(bad[i].text), &o, err),
                         CS_ERR_MALFORMED_JSON))
            printf("  input: %s\n", bad[i].text);
        else if (!CS_CHECK_HAS(err, bad[i].why))
            printf("  input: %s\n", bad[i].text);
        CS_CHECK(o == NULL);
    }
    /* Not numbers: the same characters inside strings. */
    json_object *o = NULL;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(PARSE("{\"1.\":\"-.3 00 1e200000\"}", &o, err), CS_OK);
    json_object_put(o);
    /* The edges that stay valid. */
    static const char *const good[] = {
        "[0]",   "[-0]",         "[0.0]",          "[-0.05]",
        "[10]",  "[1e1000]",     "[-1E-1000]",     "[1e+0999]",
        "[0e0]", "[123.456e-7]", "[1,-2,3.5,4e1]", "{\"a\":[10,{\"b\":-1.25E+3}]}",
        NULL};
    for (const char *const *s = good; *s; s++) {
        o = NULL;
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_OK))
            printf("  input: %s: %s\n", *s, err);
        json_object_put(o);
    }
    /* At most CS_JSON_MAX_NUMBER characters, the sign included. */
    char num[CS_JSON_MAX_NUMBER + 4];
    num[0] = '[';
    num[1] = '-';
    num[2] = '7';
    num[3] = '.';
    memset(num + 4, '7', CS_JSON_MAX_NUMBER - 3);
    num[CS_JSON_MAX_NUMBER + 1] = ']';
    CS_CHECK_RC(cs_json_parse(num, CS_JSON_MAX_NUMBER + 2, &o, err), CS_OK);
    json_object_put(o);
    num[CS_JSON_MAX_NUMBER + 1] = '7';
    num[CS_JSON_MAX_NUMBER + 2] = ']';
    o = NULL;
    CS_CHECK_RC(cs_json_parse(num, CS_JSON_MAX_NUMBER + 3, &o, err), CS_ERR_MALFORMED_JSON);
    CS_CHECK_HAS(err, "longer than 1000");
    CS_CHECK(o == NULL);
}

CS_TEST(parse_refuses_integers_json_c_would_saturate)
{
    static const char *const fits[] = {"[18446744073709551615]", "[-9223372036854775808]",
                                       "[9223372036854775807]", "[0]", NULL};
    for (const char *const *s = fits; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_OK))
            printf("  input: %s: %s\n", *s, err);
        else
            CS_CHECK_EQ_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), *s);
        json_object_put(o);
    }
    static const char *const over[] = {"[18446744073709551616]", "[-9223372036854775809]",
                                       "{\"amount\":123456789012345678901234567890}", NULL};
    for (const char *const *s = over; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input: %s\n", *s);
        CS_CHECK_HAS(err, "integer outside");
        CS_CHECK(o == NULL);
    }
    /* The same digits as a decimal keep their text. */
    json_object *o = NULL;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_json_parse("[123456789012345678901234567890.0]", 34, &o, err), CS_OK);
    CS_CHECK_EQ_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                    "[123456789012345678901234567890.0]");
    json_object_put(o);
}

CS_TEST(parse_refuses_trailing_garbage)
{
    static const char *const bad[] = {"{} x",   "{}{}",          "[1] [2]", "{\"a\":1}}",
                                      "[1]\n,", "{} // comment", NULL};
    for (const char *const *s = bad; *s; s++) {
        json_object *o = (json_object *)1;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input: %s\n", *s);
        CS_CHECK(o == NULL);
        CS_CHECK(err[0] != '\0');
    }
}

CS_TEST(parse_refuses_incomplete_and_malformed)
{
    static const char *const bad[] = {"",           "   ",  "{",      "{\"a\":",     "[1,2",
                                      "{\"a\":1,}", "[1,]", "{a:1}",  "/* c */{}",   "[01]",
                                      "[+1]",       "[.5]", "[True]", "[\"\\x41\"]", NULL};
    for (const char *const *s = bad; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input: %s\n", *s);
        json_object_put(o);
    }
}

CS_TEST(parse_refuses_nul_bytes)
{
    json_object *o = NULL;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(PARSE("{\"a\":\"b\0c\"}", &o, err), CS_ERR_MALFORMED_JSON);
    CS_CHECK_HAS(err, "NUL");
    CS_CHECK_RC(PARSE("{\"a\":1}\0", &o, err), CS_ERR_MALFORMED_JSON);
    CS_CHECK_RC(PARSE("\0{}", &o, err), CS_ERR_MALFORMED_JSON);
    CS_CHECK(o == NULL);
}

static enum cs_err parse_nested(int depth, bool objects)
{
    char s[16 * 64];
    size_t k = 0;
    for (int i = 0; i < depth; i++) {
        const char *open = objects ? "{\"a\":" : "[";
        memcpy(s + k, open, strlen(open));
        k += strlen(open);
    }
    s[k++] = '1';
    for (int i = 0; i < depth; i++)
        s[k++] = objects ? '}' : ']';
    json_object *o = NULL;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_json_parse(s, k, &o, err);
    json_object_put(o);
    return rc;
}

CS_TEST(parse_refuses_deep_nesting)
{
    /* json-c counts the innermost scalar as a level of its own. */
    CS_CHECK_RC(parse_nested(CS_JSON_MAX_DEPTH - 1, false), CS_OK);
    CS_CHECK_RC(parse_nested(CS_JSON_MAX_DEPTH, false), CS_ERR_MALFORMED_JSON);
    CS_CHECK_RC(parse_nested(CS_JSON_MAX_DEPTH + 1, false), CS_ERR_MALFORMED_JSON);
    CS_CHECK_RC(parse_nested(CS_JSON_MAX_DEPTH + 1, true), CS_ERR_MALFORMED_JSON);
    CS_CHECK_RC(parse_nested(60, false), CS_ERR_MALFORMED_JSON);
    CS_CHECK_RC(parse_nested(CS_JSON_MAX_DEPTH / 2, true), CS_OK);
}

CS_TEST(parse_refuses_invalid_utf8)
{
    static const char *const bad[] = {"[\"\xff\"]",             /* never valid */
                                      "[\"\x80\"]",             /* lone continuation byte */
                                      "[\"\xc3\"]",             /* truncated 2-byte sequence */
                                      "[\"\xe2\x82\"]",         /* truncated 3-byte sequence */
                                      "[\"\xc0\xaf\"]",         /* overlong '/' */
                                      "[\"\xe0\x80\xaf\"]",     /* overlong '/', 3 bytes */
                                      "[\"\xed\xa0\x80\"]",     /* UTF-16 surrogate D800 */
                                      "[\"\xf4\x90\x80\x80\"]", /* above U+10FFFF */
                                      "[\"\xf8\x88\x80\x80\x80\"]",
                                      "{\"\xc1\xbf\":1}", /* in a name */
                                      NULL};
    for (const char *const *s = bad; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input #%d\n", (int)(s - bad));
        json_object_put(o);
    }
    json_object *o = NULL;
    char err[CS_ERRLEN];
    /* The edges of the valid ranges. */
    CS_CHECK_RC(PARSE("[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                      "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"]",
                      &o, err),
                CS_OK);
    json_object_put(o);
}

CS_TEST(parse_refuses_json_c_extensions)
{
    static const char *const bad[] = {"[NaN]", "{\"a\":Infinity}", "[-Infinity]",       "{'a':1}",
                                      "['a']", "[\"tab\there\"]",  "[\"line\nbreak\"]", NULL};
    for (const char *const *s = bad; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input: %s\n", *s);
        json_object_put(o);
    }
    /* The same characters are fine inside strings. */
    json_object *o = NULL;
    char err[CS_ERRLEN];
    CS_CHECK_RC(PARSE("{\"NaN\":\"it's Infinity\\t\\\"'\"}", &o, err), CS_OK);
    json_object_put(o);
}

/* A document that means two things: json-c keeps the last of two members, and cuts a
 * name at U+0000; a provider may keep the first, or the whole name. */
CS_TEST(parse_refuses_duplicate_and_nul_names)
{
    static const char *const bad[] = {"{\"amount\":1,\"amount\":99999}",
                                      "{\"a\":1,\"b\":2,\"a\":3}",
                                      "{\"a\":1,\"\\u0061\":2}",
                                      "{\"\\u00e9\":1,\"\u00e9\":2}",
                                      "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
                                      "{\"a\\/b\":1,\"a/b\":2}",
                                      "[{\"x\":{\"k\":1,\"k\":1}}]",
                                      "{\"a\":{},\"b\":[{\"c\":1},{\"d\":1,\"d\":2}]}",
                                      "{\"a\\u0000b\":1}",
                                      "{\"a\":1,\"a\\u0000\":2}",
                                      NULL};
    for (const char *const *s = bad; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_ERR_MALFORMED_JSON))
            printf("  input: %s\n", *s);
        else if (!CS_CHECK(strstr(err, "twice") || strstr(err, "U+0000")))
            printf("  input: %s: %s\n", *s, err);
        CS_CHECK(o == NULL);
    }
    /* The same name in different objects, names that only look alike, and names as values. */
    static const char *const good[] = {"{\"a\":{\"a\":1},\"b\":{\"a\":2}}",
                                       "[{\"a\":1},{\"a\":2}]",
                                       "{\"a\":\"a\",\"b\":\"a\"}",
                                       "{\"a\":1,\"A\":2,\"a \":3,\"\\u0062\":4}",
                                       "{\"\\ud83d\\ude00\":1,\"\\ud83d\\ude01\":2}",
                                       "{\"x\":[\"y\",\"y\"],\"y\":{\"x\":{}}}",
                                       "{\"a\\\"\":1,\"a\":2}",
                                       NULL};
    for (const char *const *s = good; *s; s++) {
        json_object *o = NULL;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_json_parse(*s, strlen(*s), &o, err), CS_OK))
            printf("  input: %s: %s\n", *s, err);
        json_object_put(o);
    }
}

CS_TEST(only_keys)
{
    static const char *const allowed[] = {"a", "b", NULL};
    static const char *const none[] = {NULL};
    json_object *o = doc("{\"a\":1,\"b\":2}");
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_json_only_keys(o, allowed, err), CS_OK);
    CS_CHECK_RC(cs_json_only_keys(o, none, err), CS_ERR_INVALID);
    json_object_put(o);

    o = doc("{\"a\":1,\"bee\":2}");
    CS_CHECK_RC(cs_json_only_keys(o, allowed, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"bee\"");
    json_object_put(o);

    o = doc("{}");
    CS_CHECK_RC(cs_json_only_keys(o, none, err), CS_OK);
    json_object_put(o);
}

CS_TEST(str_getter)
{
    json_object *o = doc("{\"name\":\"abc\",\"empty\":\"\",\"num\":5,\"nul\":null,"
                         "\"zero\":\"a\\u0000b\"}");
    const char *s = NULL;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_json_str(o, "name", true, 3, &s, err), CS_OK);
    CS_CHECK_EQ_STR(s, "abc");
    CS_CHECK_RC(cs_json_str(o, "name", true, 2, &s, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"name\" is longer than 2");
    CS_CHECK(s == NULL);

    CS_CHECK_RC(cs_json_str(o, "missing", false, 10, &s, err), CS_OK);
    CS_CHECK(s == NULL);
    CS_CHECK_RC(cs_json_str(o, "missing", true, 10, &s, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"missing\" is required");
    CS_CHECK_RC(cs_json_str(o, "nul", false, 10, &s, err), CS_OK);
    CS_CHECK(s == NULL);
    CS_CHECK_RC(cs_json_str(o, "nul", true, 10, &s, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"nul\"");

    CS_CHECK_RC(cs_json_str(o, "num", false, 10, &s, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"num\" must be a string");
    CS_CHECK_RC(cs_json_str(o, "empty", true, 10, &s, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"empty\" must not be empty");
    CS_CHECK_RC(cs_json_str(o, "empty", false, 10, &s, err), CS_OK);
    CS_CHECK_EQ_STR(s, "");
    CS_CHECK_RC(cs_json_str(o, "zero", false, 10, &s, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"zero\" contains a NUL");
    json_object_put(o);
}

CS_TEST(int_getter)
{
    json_object *o = doc("{\"n\":42,\"neg\":-7,\"big\":9223372036854775807,\"d\":1.5,"
                         "\"e\":1e3,\"s\":\"42\",\"b\":true,\"nul\":null,\"f\":16761.0,"
                         "\"huge\":1e300,\"past53\":9007199254740994.0,\"tiny\":1e-300}");
    int64_t v = 0;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_json_int(o, "n", true, 0, 100, 0, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, 42);
    CS_CHECK_RC(cs_json_int(o, "n", true, 42, 42, 0, &v, err), CS_OK);
    CS_CHECK_RC(cs_json_int(o, "n", true, 43, 100, 0, &v, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"n\" must be between 43 and 100");
    CS_CHECK_RC(cs_json_int(o, "n", true, 0, 41, 0, &v, err), CS_ERR_INVALID);
    CS_CHECK_RC(cs_json_int(o, "neg", true, -10, 10, 0, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, -7);
    CS_CHECK_RC(cs_json_int(o, "big", true, 0, INT64_MAX, 0, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, INT64_MAX);
    CS_CHECK_RC(cs_json_int(o, "big", true, 0, INT32_MAX, 0, &v, err), CS_ERR_INVALID);

    CS_CHECK_RC(cs_json_int(o, "missing", false, 0, 10, 9, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, 9);
    CS_CHECK_RC(cs_json_int(o, "nul", false, 0, 10, 8, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, 8);
    CS_CHECK_RC(cs_json_int(o, "missing", true, 0, 10, 9, &v, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"missing\" is required");

    /* JSON Schema's integers: a number without a fraction, however written. */
    CS_CHECK_RC(cs_json_int(o, "f", true, 0, 100000, 0, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, 16761);
    CS_CHECK_RC(cs_json_int(o, "e", true, 0, 10000, 0, &v, err), CS_OK);
    CS_CHECK_EQ_INT(v, 1000);
    CS_CHECK_RC(cs_json_int(o, "e", true, 0, 999, 0, &v, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"e\" must be between 0 and 999");

    static const char *const wrong[] = {"d", "s", "b", "huge", "past53", "tiny", NULL};
    for (const char *const *k = wrong; *k; k++) {
        CS_CHECK_RC(cs_json_int(o, *k, true, 0, 10000, 0, &v, err), CS_ERR_INVALID);
        char want[32];
        snprintf(want, sizeof(want), "\"%s\" must be an integer", *k);
        CS_CHECK_HAS(err, want);
    }
    json_object_put(o);
}

CS_TEST(typed_and_bool_getters)
{
    json_object *o = doc("{\"obj\":{},\"arr\":[1],\"t\":true,\"f\":false,\"s\":\"true\","
                         "\"n\":1}");
    json_object *v = NULL;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(cs_json_typed(o, "obj", true, json_type_object, &v, err), CS_OK);
    CS_CHECK(json_object_is_type(v, json_type_object));
    CS_CHECK_RC(cs_json_typed(o, "arr", true, json_type_array, &v, err), CS_OK);
    CS_CHECK_EQ_INT(json_object_array_length(v), 1);
    CS_CHECK_RC(cs_json_typed(o, "arr", true, json_type_object, &v, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"arr\" must be an object");
    CS_CHECK(v == NULL);
    CS_CHECK_RC(cs_json_typed(o, "obj", true, json_type_array, &v, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"obj\" must be an array");
    CS_CHECK_RC(cs_json_typed(o, "missing", false, json_type_array, &v, err), CS_OK);
    CS_CHECK(v == NULL);
    CS_CHECK_RC(cs_json_typed(o, "missing", true, json_type_array, &v, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"missing\" is required");

    bool b = false;
    CS_CHECK_RC(cs_json_bool(o, "t", false, &b, err), CS_OK);
    CS_CHECK(b);
    CS_CHECK_RC(cs_json_bool(o, "f", true, &b, err), CS_OK);
    CS_CHECK(!b);
    CS_CHECK_RC(cs_json_bool(o, "missing", true, &b, err), CS_OK);
    CS_CHECK(b);
    CS_CHECK_RC(cs_json_bool(o, "s", false, &b, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"s\" must be true or false");
    CS_CHECK_RC(cs_json_bool(o, "n", false, &b, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"n\"");
    json_object_put(o);
}

CS_TEST(text_is_compact)
{
    json_object *o = doc(" { \"a\" : [ 1 , 2 ] ,\n \"b\" : \"/x/\" , \"c\" : { } } ");
    size_t len = 0;
    const char *t = cs_json_text(o, &len);
    CS_CHECK_EQ_STR(t, "{\"a\":[1,2],\"b\":\"/x/\",\"c\":{}}");
    CS_CHECK_EQ_INT(len, strlen(t));
    json_object_put(o);
}

CS_TEST_MAIN(CS_RUN(parse_accepts_json), CS_RUN(parse_accepts_bare_values_at_the_end),
             CS_RUN(parse_refuses_numbers_outside_rfc8259),
             CS_RUN(parse_refuses_integers_json_c_would_saturate),
             CS_RUN(parse_refuses_trailing_garbage), CS_RUN(parse_refuses_incomplete_and_malformed),
             CS_RUN(parse_refuses_nul_bytes), CS_RUN(parse_refuses_deep_nesting),
             CS_RUN(parse_refuses_invalid_utf8), CS_RUN(parse_refuses_json_c_extensions),
             CS_RUN(parse_refuses_duplicate_and_nul_names), CS_RUN(only_keys), CS_RUN(str_getter),
             CS_RUN(int_getter), CS_RUN(typed_and_bool_getters), CS_RUN(text_is_compact))
