/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* What differs between the two bases this fork builds on, Valkey 8.1 and
 * 9.1, keyed on VALKEY_VERSION_NUM (version.h of either tree). Our files
 * are written against 9.1's names; on 8.1 this header maps them to 8.1's.
 * Where a structure itself differs (the skiplist node, hash entries and
 * their volatile sets, lazily created dbs), the code has an #if on
 * MEMPROF_BASE_9 instead.
 *
 * The server's files include it after server.h; valkey-cli's files define
 * MEMPROF_CLIENT first (they see the client library, not server.h). */

#ifndef __MEMPROFILE_COMPAT_H
#define __MEMPROFILE_COMPAT_H

#include "version.h"

#if VALKEY_VERSION_NUM >= 0x00090000
#define MEMPROF_BASE_9 1
#else
#define MEMPROF_BASE_9 0
#endif

#ifdef MEMPROF_CLIENT
/* valkey-cli: 9.1 links libvalkey (and the server's sds), 8.1 hiredis (and
 * its sds, through its compat header). */
#if MEMPROF_BASE_9
#include <valkey/valkey.h>
#include "sds.h"
#else
#include <hiredis.h>
#include <sdscompat.h>
#include <sds.h>
#define valkeyContext redisContext
#define valkeyReply redisReply
#define valkeyvCommand redisvCommand
#define valkeySetTimeout redisSetTimeout
#define VALKEY_OK REDIS_OK
#define VALKEY_ERR REDIS_ERR
#define VALKEY_REPLY_STRING REDIS_REPLY_STRING
#define VALKEY_REPLY_ARRAY REDIS_REPLY_ARRAY
#define VALKEY_REPLY_INTEGER REDIS_REPLY_INTEGER
#define VALKEY_REPLY_STATUS REDIS_REPLY_STATUS
#define VALKEY_REPLY_ERROR REDIS_REPLY_ERROR
#define VALKEY_REPLY_DOUBLE REDIS_REPLY_DOUBLE
#define VALKEY_REPLY_MAP REDIS_REPLY_MAP
#define VALKEY_REPLY_VERB REDIS_REPLY_VERB
#define valkeyReader redisReader
#define valkeyReaderCreate redisReaderCreate
#define valkeyReaderFeed redisReaderFeed
#define valkeyReaderGetReply redisReaderGetReply
#define valkeyReaderFree redisReaderFree
#endif

#else /* The server. */

#if MEMPROF_BASE_9
#include "scripting_engine.h"
/* A db is created when first used: NULL before. */
#define memprofDb(j) (server.db[j])
#else
#include "lua/debug_lua.h"
#define memprofDb(j) (&server.db[j])
static inline void *objectGetVal(const robj *o) {
    return o->ptr;
}
static inline zskiplistNode *zslGetTail(const zskiplist *zsl) {
    return zsl->tail;
}
#define entryMemUsage(e) hashTypeEntryMemUsage(e)
#define hashtableCleanupIterator hashtableResetIterator
#define scriptingEngineDebuggerPendingChildren ldbPendingChildren
/* 8.1's hashtables have no validation on iteration and no importing slots. */
#define HASHTABLE_ITER_SKIP_VALIDATION 0
#define HASHTABLE_ITER_INCLUDE_IMPORTING 0
#endif

#endif /* MEMPROF_CLIENT */

#endif /* __MEMPROFILE_COMPAT_H */
