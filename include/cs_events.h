/*
 * cs_events.h -- events as logical decoding messages (migration 014).
 *
 * A transition emits its events with cs_emit() in SQL: a transactional
 * pg_logical_emit_message with prefix "countersign.<topic>" and content
 * "<kafka key>\n<payload JSON>". The worker's relay reads them over a
 * logical replication connection (pgoutput, messages 'true') from one slot
 * per database, which every process makes sure exists before it migrates
 * or writes, so no event is ever emitted while no slot keeps it.
 *
 * This file holds what every process needs: the slot's name and creation.
 * The replication stream itself is cs_wal.h's.
 */
#ifndef CS_EVENTS_H
#define CS_EVENTS_H

#include "cs_config.h"
#include "cs_db.h"

#define CS_EVENTS_PUBLICATION "countersign_events"
#define CS_EVENTS_SLOT_MAX 63 /* NAMEDATALEN - 1 */

/*
 * The slot of database dbname: CS_EVENT_SLOT, else countersign_<dbname>
 * with every character outside [a-z0-9_] made '_' (cut to 63). Fails
 * (CS_ERR_CONFIG) when CS_EVENT_SLOT is not a valid slot name.
 */
enum cs_err cs_events_slot_name(const struct cs_config *cfg, const char *dbname,
                                char out[CS_EVENTS_SLOT_MAX + 1], char *err) CS_MUSTCHECK;

/*
 * Creates the slot of db's database unless it exists (races with other
 * processes are fine), and before it the publication pgoutput reads it
 * with. Creating needs REPLICATION (and CREATE on the database for the
 * publication): `countersign migrate` does it as the owner; a process whose
 * role may not finds the slot made, or fails with a clear CS_ERR_CONFIG, as
 * when Postgres does not run with wal_level = logical.
 */
enum cs_err cs_events_slot_ensure(struct cs_db *db, const struct cs_config *cfg,
                                  char *err) CS_MUSTCHECK;

#endif
