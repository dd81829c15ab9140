/*
 * jscan.c - a recursive-descent JSON validator that records the top-level
 * members of an object as spans of the input.
 */
#include "tf/jscan.h"

#include <string.h>

#define MAX_DEPTH 64

struct scan {
    const char *p;
    const char *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* At an opening quote: moves past the closing one. */
static int scan_string(struct scan *s)
{
    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->end - s->p < 2)
                return -1;
            c = (unsigned char)s->p[1];
            if (c == 'u') {
                if (s->end - s->p < 6 || !hex(s->p[2]) || !hex(s->p[3]) || !hex(s->p[4]) ||
                    !hex(s->p[5]))
                    return -1;
                s->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)c))
                return -1;
            s->p += 2;
            continue;
        }
        s->p++;
    }
    return -1;
}

static int digits(struct scan *s)
{
    const char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(struct scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) != 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (digits(s) != 0)
            return -1;
    }
    return 0;
}

static int scan_word(struct scan *s, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(struct scan *s, int depth, enum tf_jtype *type, long *count);

/* At '[' or '{': scans the container, counting its elements or members. */
static int scan_container(struct scan *s, int depth, int object, long *count)
{
    char close = object ? '}' : ']';

    *count = 0;
    if (depth >= MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        enum tf_jtype t;
        long c;

        skip_ws(s);
        if (object) {
            if (s->p >= s->end || *s->p != '"' || scan_string(s) != 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
        }
        if (scan_value(s, depth + 1, &t, &c) != 0)
            return -1;
        (*count)++;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        return -1;
    }
}

static int scan_value(struct scan *s, int depth, enum tf_jtype *type, long *count)
{
    skip_ws(s);
    *count = 0;
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"':
        *type = TF_J_STRING;
        return scan_string(s);
    case '{':
        *type = TF_J_OBJECT;
        return scan_container(s, depth, 1, count);
    case '[':
        *type = TF_J_ARRAY;
        return scan_container(s, depth, 0, count);
    case 't':
        *type = TF_J_TRUE;
        return scan_word(s, "true");
    case 'f':
        *type = TF_J_FALSE;
        return scan_word(s, "false");
    case 'n':
        *type = TF_J_NULL;
        return scan_word(s, "null");
    default:
        *type = TF_J_NUMBER;
        if (*s->p != '-' && !(*s->p >= '0' && *s->p <= '9'))
            return -1;
        return scan_number(s);
    }
}

int tf_jscan_object(const char *text, size_t len, struct tf_jmember *out, int max)
{
    struct scan s = {text, text + len};
    int n = 0;

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
        goto done;
    }
    for (;;) {
        const char *key, *val;
        enum tf_jtype t;
        long count;

        skip_ws(&s);
        if (s.p >= s.end || *s.p != '"')
            return -1;
        key = s.p + 1;
        if (scan_string(&s) != 0)
            return -1;
        if (n < max) {
            out[n].key = key;
            out[n].keylen = (size_t)(s.p - 1 - key);
        }
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return -1;
        s.p++;
        skip_ws(&s);
        val = s.p;
        if (scan_value(&s, 1, &t, &count) != 0)
            return -1;
        if (n < max) {
            out[n].type = t;
            out[n].count = count;
            out[n].val = t == TF_J_STRING ? val + 1 : val;
            out[n].vallen = (size_t)(s.p - val) - (t == TF_J_STRING ? 2 : 0);
        }
        n++;
        skip_ws(&s);
        if (s.p >= s.end)
            return -1;
        if (*s.p == ',') {
            s.p++;
            continue;
        }
        if (*s.p == '}') {
            s.p++;
            break;
        }
        return -1;
    }
done:
    skip_ws(&s);
    return s.p == s.end ? n : -1;
}

const struct tf_jmember *tf_jscan_find(const struct tf_jmember *m, int n, const char *key)
{
    size_t klen = strlen(key);

    for (int i = 0; i < n; i++) {
        if (m[i].keylen == klen && memcmp(m[i].key, key, klen) == 0)
            return &m[i];
    }
    return NULL;
}

int tf_jscan_string(const struct tf_jmember *m, char *out, size_t outlen)
{
    size_t o = 0;

    if (!m || m->type != TF_J_STRING || outlen == 0)
        return -1;
    for (size_t i = 0; i < m->vallen; i++) {
        char c = m->val[i];
        if (o + 1 >= outlen)
            return -1;
        if (c == '\\' && i + 1 < m->vallen) {
            char e = m->val[++i];
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int k = 1; k <= 4 && i + (size_t)k < m->vallen; k++) {
                    char h = m->val[i + (size_t)k];
                    v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                i += 4;
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            default:
                c = e; /* \" \\ \/ */
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}
