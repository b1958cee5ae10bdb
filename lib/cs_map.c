/*
 * cs_map.c -- string-keyed hash map with FNV-1a hashing (see cs_map.h).
 */
#include "cs_map.h"

#include <stdint.h>
#include <string.h>

#include "cs_mem.h"

struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    char key[];
};

struct cs_map {
    struct entry **slots;
    size_t nslots, len;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct cs_map *cs_map_new(void)
{
    struct cs_map *m = cs_calloc(1, sizeof(*m));
    m->nslots = 16;
    m->slots = cs_calloc(m->nslots, sizeof(*m->slots));
    return m;
}

void cs_map_free(struct cs_map *m, void (*free_value)(void *v))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nslots; i++)
        for (struct entry *e = m->slots[i], *next; e; e = next) {
            next = e->next;
            if (free_value)
                free_value(e->value);
            cs_free(e);
        }
    cs_free(m->slots);
    cs_free(m);
}

static struct entry **find(const struct cs_map *m, const char *key, uint64_t h)
{
    struct entry **pe = &m->slots[h & (m->nslots - 1)];
    while (*pe && ((*pe)->hash != h || strcmp((*pe)->key, key) != 0))
        pe = &(*pe)->next;
    return pe;
}

void *cs_map_get(const struct cs_map *m, const char *key)
{
    struct entry *e = *find(m, key, fnv1a(key));
    return e ? e->value : NULL;
}

static void grow(struct cs_map *m)
{
    size_t n = m->nslots * 2;
    struct entry **slots = cs_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < m->nslots; i++)
        for (struct entry *e = m->slots[i], *next; e; e = next) {
            next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    cs_free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

void *cs_map_put(struct cs_map *m, const char *key, void *v)
{
    uint64_t h = fnv1a(key);
    struct entry **pe = find(m, key, h);
    if (*pe) {
        void *old = (*pe)->value;
        (*pe)->value = v;
        return old;
    }
    size_t klen = strlen(key);
    struct entry *e = cs_malloc(sizeof(*e) + klen + 1);
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->value = v;
    e->next = NULL;
    *pe = e;
    if (++m->len > m->nslots)
        grow(m);
    return NULL;
}

void *cs_map_del(struct cs_map *m, const char *key)
{
    struct entry **pe = find(m, key, fnv1a(key));
    struct entry *e = *pe;
    if (!e)
        return NULL;
    void *v = e->value;
    *pe = e->next;
    cs_free(e);
    m->len--;
    return v;
}

size_t cs_map_len(const struct cs_map *m)
{
    return m->len;
}
