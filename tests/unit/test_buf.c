/*
 * test_buf.c -- unit tests of the capped growable buffer (lib/cs_buf.c).
 *
 * The cap is the point of struct cs_buf: appending past it must fail with
 * CS_ERR_TOO_LARGE and leave the buffer exactly as it was (or, with
 * cs_buf_append_trunc, keep what fits and flag the loss), even when the
 * requested size would overflow size_t. Also held: the data is always
 * NUL-terminated, reset keeps the allocation, take hands the data over.
 */
#include <stdint.h>
#include <string.h>

#include "cs_buf.h"
#include "cs_mem.h"
#include "cs_test.h"

CS_TEST(init_is_empty)
{
    struct cs_buf b;
    cs_buf_init(&b, 100);
    CS_CHECK(b.data == NULL);
    CS_CHECK_EQ_INT(b.len, 0);
    CS_CHECK_EQ_INT(b.max, 100);
    CS_CHECK(!b.truncated);
    cs_buf_free(&b); /* freeing a never-used buffer is fine */
    CS_CHECK(b.data == NULL);
}

CS_TEST(append_grows_and_terminates)
{
    struct cs_buf b;
    cs_buf_init(&b, 1 << 20);
    char expect[5000];
    for (int i = 0; i < 1000; i++) {
        if (!CS_CHECK_RC(cs_buf_append(&b, "abcde", 5), CS_OK))
            break;
        memcpy(expect + 5 * i, "abcde", 5);
    }
    CS_CHECK_EQ_INT(b.len, 5000);
    CS_CHECK(b.cap > b.len);
    CS_CHECK(memcmp(b.data, expect, 5000) == 0);
    CS_CHECK_EQ_INT(b.data[b.len], '\0');
    CS_CHECK_RC(cs_buf_append(&b, "", 0), CS_OK);
    CS_CHECK_EQ_INT(b.len, 5000);
    cs_buf_free(&b);
    CS_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);

    /* Reusable after free; binary data with NULs is kept as is. */
    CS_CHECK_RC(cs_buf_append(&b, "a\0b", 3), CS_OK);
    CS_CHECK_EQ_INT(b.len, 3);
    CS_CHECK(memcmp(b.data, "a\0b", 4) == 0);
    cs_buf_free(&b);
}

CS_TEST(empty_append_allocates_an_empty_string)
{
    struct cs_buf b;
    cs_buf_init(&b, 10);
    CS_CHECK_RC(cs_buf_append(&b, NULL, 0), CS_OK);
    if (CS_CHECK(b.data != NULL))
        CS_CHECK_EQ_STR(b.data, "");
    cs_buf_free(&b);
}

CS_TEST(cap_refuses_and_leaves_buffer_unchanged)
{
    struct cs_buf b;
    cs_buf_init(&b, 10);
    CS_CHECK_RC(cs_buf_puts(&b, "12345678"), CS_OK);
    CS_CHECK_RC(cs_buf_puts(&b, "abc"), CS_ERR_TOO_LARGE);
    CS_CHECK_EQ_INT(b.len, 8);
    CS_CHECK_EQ_STR(b.data, "12345678");
    CS_CHECK_RC(cs_buf_printf(&b, "%d", 123), CS_ERR_TOO_LARGE);
    CS_CHECK_EQ_STR(b.data, "12345678");
    /* len + n wrapping around size_t must not slip past the cap. */
    CS_CHECK_RC(cs_buf_append(&b, "x", SIZE_MAX), CS_ERR_TOO_LARGE);
    CS_CHECK_RC(cs_buf_append(&b, "x", SIZE_MAX - 7), CS_ERR_TOO_LARGE);
    CS_CHECK_EQ_INT(b.len, 8);
    /* Exactly up to the cap is allowed. */
    CS_CHECK_RC(cs_buf_puts(&b, "90"), CS_OK);
    CS_CHECK_EQ_STR(b.data, "1234567890");
    CS_CHECK_RC(cs_buf_append(&b, "!", 1), CS_ERR_TOO_LARGE);
    CS_CHECK_RC(cs_buf_append(&b, "", 0), CS_OK);
    cs_buf_free(&b);

    cs_buf_init(&b, 0);
    CS_CHECK_RC(cs_buf_puts(&b, "a"), CS_ERR_TOO_LARGE);
    CS_CHECK(b.data == NULL);
    cs_buf_free(&b);
}

CS_TEST(printf_formats)
{
    struct cs_buf b;
    cs_buf_init(&b, 64);
    CS_CHECK_RC(cs_buf_printf(&b, "%s=%d", "n", 42), CS_OK);
    CS_CHECK_RC(cs_buf_printf(&b, ";%05.1f", 2.5), CS_OK);
    CS_CHECK_RC(cs_buf_printf(&b, "%s", ""), CS_OK);
    CS_CHECK_EQ_STR(b.data, "n=42;002.5");
    CS_CHECK_EQ_INT(b.len, strlen("n=42;002.5"));
    cs_buf_free(&b);

    /* A formatted string longer than the initial allocation. */
    cs_buf_init(&b, 4096);
    CS_CHECK_RC(cs_buf_printf(&b, "%1000d|", 7), CS_OK);
    CS_CHECK_EQ_INT(b.len, 1001);
    CS_CHECK_EQ_INT(b.data[999], '7');
    CS_CHECK_EQ_INT(b.data[1001], '\0');
    cs_buf_free(&b);
}

CS_TEST(append_trunc_keeps_what_fits)
{
    struct cs_buf b;
    cs_buf_init(&b, 6);
    cs_buf_append_trunc(&b, "abcd", 4);
    CS_CHECK(!b.truncated);
    cs_buf_append_trunc(&b, "efgh", 4);
    CS_CHECK(b.truncated);
    CS_CHECK_EQ_STR(b.data, "abcdef");
    cs_buf_append_trunc(&b, "ijk", 3);
    CS_CHECK_EQ_STR(b.data, "abcdef");
    CS_CHECK(b.truncated);
    cs_buf_free(&b);
}

CS_TEST(reset_keeps_allocation)
{
    struct cs_buf b;
    cs_buf_init(&b, 4);
    cs_buf_append_trunc(&b, "abcdef", 6);
    char *data = b.data;
    size_t cap = b.cap;
    cs_buf_reset(&b);
    CS_CHECK(b.data == data);
    CS_CHECK_EQ_INT(b.cap, cap);
    CS_CHECK_EQ_INT(b.len, 0);
    CS_CHECK(!b.truncated);
    CS_CHECK_EQ_STR(b.data, "");
    CS_CHECK_RC(cs_buf_puts(&b, "wxyz"), CS_OK);
    CS_CHECK_EQ_STR(b.data, "wxyz");
    cs_buf_free(&b);

    cs_buf_init(&b, 4);
    cs_buf_reset(&b); /* on a buffer that never allocated */
    CS_CHECK(b.data == NULL);
    cs_buf_free(&b);
}

CS_TEST(take_hands_over_the_data)
{
    struct cs_buf b;
    cs_buf_init(&b, 100);
    CS_CHECK_RC(cs_buf_puts(&b, "hello"), CS_OK);
    size_t len = 0;
    char *s = cs_buf_take(&b, &len);
    CS_CHECK_EQ_STR(s, "hello");
    CS_CHECK_EQ_INT(len, 5);
    CS_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    cs_free(s);

    /* The buffer goes on working after a take. */
    CS_CHECK_RC(cs_buf_puts(&b, "again"), CS_OK);
    s = cs_buf_take(&b, NULL);
    CS_CHECK_EQ_STR(s, "again");
    cs_free(s);

    /* Taking from an empty buffer yields an empty string, not NULL. */
    s = cs_buf_take(&b, &len);
    CS_CHECK_EQ_STR(s, "");
    CS_CHECK_EQ_INT(len, 0);
    cs_free(s);
    cs_buf_free(&b);
}

CS_TEST_MAIN(CS_RUN(init_is_empty), CS_RUN(append_grows_and_terminates),
             CS_RUN(empty_append_allocates_an_empty_string),
             CS_RUN(cap_refuses_and_leaves_buffer_unchanged), CS_RUN(printf_formats),
             CS_RUN(append_trunc_keeps_what_fits), CS_RUN(reset_keeps_allocation),
             CS_RUN(take_hands_over_the_data))
