/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* A test module for the memory profiling tests: it changes a string value in
 * place the way only the module API does, so that the tests can check the
 * profile against the allocator for such values.
 *
 * MEMPROFSTR.TRUNCATE key newlen
 *     Opens key for writing and calls ValkeyModule_StringTruncate(): a RAW
 *     string is shortened in place (sdssubstr), which never reallocates an
 *     sds of type 5, so its allocation stays as large as before. */

#include "valkeymodule.h"

static int truncateCommand(ValkeyModuleCtx *ctx, ValkeyModuleString **argv, int argc) {
    if (argc != 3) return ValkeyModule_WrongArity(ctx);
    long long newlen;
    if (ValkeyModule_StringToLongLong(argv[2], &newlen) != VALKEYMODULE_OK || newlen < 0) {
        return ValkeyModule_ReplyWithError(ctx, "ERR invalid length");
    }
    ValkeyModuleKey *key = ValkeyModule_OpenKey(ctx, argv[1], VALKEYMODULE_READ | VALKEYMODULE_WRITE);
    int type = ValkeyModule_KeyType(key);
    if (type != VALKEYMODULE_KEYTYPE_STRING && type != VALKEYMODULE_KEYTYPE_EMPTY) {
        ValkeyModule_CloseKey(key);
        return ValkeyModule_ReplyWithError(ctx, VALKEYMODULE_ERRORMSG_WRONGTYPE);
    }
    if (ValkeyModule_StringTruncate(key, (size_t)newlen) != VALKEYMODULE_OK) {
        ValkeyModule_CloseKey(key);
        return ValkeyModule_ReplyWithError(ctx, "ERR truncate failed");
    }
    ValkeyModule_CloseKey(key);
    return ValkeyModule_ReplyWithSimpleString(ctx, "OK");
}

int ValkeyModule_OnLoad(ValkeyModuleCtx *ctx, ValkeyModuleString **argv, int argc) {
    VALKEYMODULE_NOT_USED(argv);
    VALKEYMODULE_NOT_USED(argc);
    if (ValkeyModule_Init(ctx, "memprofstr", 1, VALKEYMODULE_APIVER_1) == VALKEYMODULE_ERR) {
        return VALKEYMODULE_ERR;
    }
    if (ValkeyModule_CreateCommand(ctx, "memprofstr.truncate", truncateCommand, "write deny-oom", 1, 1, 1) ==
        VALKEYMODULE_ERR) {
        return VALKEYMODULE_ERR;
    }
    return VALKEYMODULE_OK;
}
