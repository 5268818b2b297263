/* assets.h - the console's pages, scripts and styles, embedded in sukid
 * at build time (embed-assets.sh from daemon/console/assets/): nothing to
 * install, and no page that does not match the daemon serving it. */
#ifndef SUKI_CONSOLE_ASSETS_H
#define SUKI_CONSOLE_ASSETS_H

#include <stddef.h>

struct suki_console_asset {
    const char *path; /* "/index.html" */
    const char *ctype;
    const char *data;
    size_t len;
};

/* The asset served at path, or NULL. */
const struct suki_console_asset *suki_console_asset(const char *path);

#endif
