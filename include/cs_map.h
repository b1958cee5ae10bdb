/*
 * cs_map.h -- a string-keyed hash map (chained, grows by doubling).
 *
 * Keys are copied; values are borrowed pointers the map never frees
 * (cs_map_free takes a callback for that). Not thread-safe.
 */
#ifndef CS_MAP_H
#define CS_MAP_H

#include <stddef.h>

struct cs_map;

struct cs_map *cs_map_new(void);
/* Frees the map; calls free_value(v) on each value when not NULL. */
void cs_map_free(struct cs_map *m, void (*free_value)(void *v));
void *cs_map_get(const struct cs_map *m, const char *key);
/* Sets key to v and returns the previous value (NULL if none). */
void *cs_map_put(struct cs_map *m, const char *key, void *v);
/* Removes key and returns its value (NULL if none). */
void *cs_map_del(struct cs_map *m, const char *key);
size_t cs_map_len(const struct cs_map *m);

#endif
