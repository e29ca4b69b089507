/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* A strict JSON checker (RFC 8259) for the fuzz targets of valkey-cli's
 * output, written apart from the code it checks: jsonValue() accepts one
 * value and moves past it; jsonString() also decodes a string to its code
 * points (surrogate pairs joined), for the round trip of key names. */

#ifndef __MEMPROF_FUZZ_JSON_H
#define __MEMPROF_FUZZ_JSON_H

#include <string.h>

typedef struct jsonCursor {
    const unsigned char *p, *end;
    int depth;
} jsonCursor;

static void jsonSpace(jsonCursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int jsonHex4(jsonCursor *c, unsigned *out) {
    if (c->end - c->p < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = c->p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= h - '0';
        else if (h >= 'a' && h <= 'f')
            v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            v |= h - 'A' + 10;
        else
            return 0;
    }
    c->p += 4;
    *out = v;
    return 1;
}

/* One UTF-8 sequence of the raw text, strictly (no overlong form, no
 * surrogate, at most U+10FFFF). */
static int jsonUtf8(jsonCursor *c, unsigned *out) {
    unsigned char b = *c->p;
    int n;
    unsigned cp;
    if (b < 0x80) {
        *out = b;
        c->p++;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF)
        n = 2, cp = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 3, cp = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4, cp = b & 0x07;
    else
        return 0;
    if (c->end - c->p < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((c->p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (c->p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    c->p += n;
    *out = cp;
    return 1;
}

/* A string at the cursor; its code points go to out (up to cap) when out
 * is given, their count to *n. */
static int jsonString(jsonCursor *c, unsigned *out, size_t cap, size_t *n) {
    size_t k = 0;
    if (c->p >= c->end || *c->p != '"') return 0;
    c->p++;
    while (c->p < c->end && *c->p != '"') {
        unsigned cp;
        if (*c->p < 0x20) return 0;
        if (*c->p == '\\') {
            c->p++;
            if (c->p >= c->end) return 0;
            unsigned char e = *c->p++;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (!jsonHex4(c, &cp)) return 0;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') return 0;
                    c->p += 2;
                    if (!jsonHex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return 0;
                }
                break;
            default: return 0;
            }
        } else if (!jsonUtf8(c, &cp)) {
            return 0;
        }
        if (out && k < cap) out[k] = cp;
        k++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    if (n) *n = k;
    return 1;
}

static int jsonNumber(jsonCursor *c) {
    const unsigned char *s = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    if (c->p >= c->end) return 0;
    if (*c->p == '0')
        c->p++;
    else if (*c->p >= '1' && *c->p <= '9')
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    else
        return 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    }
    return c->p > s;
}

static int jsonLiteral(jsonCursor *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n)) return 0;
    c->p += n;
    return 1;
}

static int jsonValue(jsonCursor *c) {
    jsonSpace(c);
    if (c->p >= c->end || ++c->depth > 64) return 0;
    int ok;
    unsigned char ch = *c->p;
    if (ch == '{' || ch == '[') {
        unsigned char close = ch == '{' ? '}' : ']';
        c->p++;
        jsonSpace(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            ok = 1;
        } else {
            for (ok = 0;;) {
                if (ch == '{') {
                    jsonSpace(c);
                    if (!jsonString(c, NULL, 0, NULL)) break;
                    jsonSpace(c);
                    if (c->p >= c->end || *c->p++ != ':') break;
                }
                if (!jsonValue(c)) break;
                jsonSpace(c);
                if (c->p < c->end && *c->p == ',') {
                    c->p++;
                    continue;
                }
                if (c->p < c->end && *c->p == close) {
                    c->p++;
                    ok = 1;
                }
                break;
            }
        }
    } else if (ch == '"') {
        ok = jsonString(c, NULL, 0, NULL);
    } else if (ch == 't') {
        ok = jsonLiteral(c, "true");
    } else if (ch == 'f') {
        ok = jsonLiteral(c, "false");
    } else if (ch == 'n') {
        ok = jsonLiteral(c, "null");
    } else {
        ok = jsonNumber(c);
    }
    c->depth--;
    return ok;
}

/* The whole text is one JSON value. */
static int jsonDocument(const char *s, size_t len) {
    jsonCursor c = {(const unsigned char *)s, (const unsigned char *)s + len, 0};
    if (!jsonValue(&c)) return 0;
    jsonSpace(&c);
    return c.p == c.end;
}

#endif
