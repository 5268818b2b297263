/* keys.c - key names (keys.h). */
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

char *suki_key(const char *prefix, const char *name)
{
    return suki_asprintf("%s:%s", prefix, name);
}

char *suki_key_id(const char *prefix, const char *kind, const char *id)
{
    return suki_asprintf("%s:%s:%s", prefix, kind, id);
}

int suki_key_id_buf(char *buf, size_t size, const char *prefix,
                    const char *kind, const char *id)
{
    int n = snprintf(buf, size, "%s:%s:%s", prefix, kind, id);
    return n < 0 || (size_t)n >= size ? -1 : n;
}
