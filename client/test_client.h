/*
 * test_client.h -- what the three files of the C client's system test share
 * (client/test_client.c: the harness, acting as an approver (sign in with
 * a one-time link, decide on the page) and the single-approval scenarios;
 * client/test_failures.c: errors and retries; client/test_batch.c: the
 * batch scenarios). Test code only.
 */
#ifndef TEST_CLIENT_H
#define TEST_CLIENT_H

#include <stdbool.h>

#include "countersign.h"

extern const char *base_url, *api_key, *stub_url, *cli;
extern double mult; /* CS_TEST_TIMEOUT_MULT */

bool check(bool cond, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool check_code(enum countersign_code rc, enum countersign_code want,
                const struct countersign_error *e, const char *what, int line);
#define CHECK(cond, ...) check((cond), __LINE__, __VA_ARGS__)
#define CHECK_CODE(rc, want, e, what) check_code((rc), (want), &(e), (what), __LINE__)

double now(void);
void pause_for(double seconds);
struct countersign_client *client(const char *key); /* free with countersign_client_free */
char *stub(const char *path);                       /* cs_free() it */
/* A producer signing with $COUNTERSIGN_SIGNING_KEY_ID / _SECRET (bot1's key), or NULL. */
struct countersign_producer *signing_producer(char *err);
enum countersign_code refund(struct countersign_client *c, const char *path, int amount,
                             struct countersign_response **out, struct countersign_error *e);
struct countersign_response *pending(struct countersign_client *c, const char *path, int amount);
/* Signs in with `approver`'s one-time batch link and decides the batch on its page; the
 * decision POST's HTTP status (0 when an earlier step failed; *why says what). */
long decide_batch(const char *batch_id, const char *approver, const char *decision,
                  const char *except, const char *reason, char *why, size_t wn);
void test_errors(struct countersign_client *c);
void test_retries(void);
void test_produce(void);
void test_batch(struct countersign_client *c);
void test_batch_kafka(struct countersign_client *c);

#endif
