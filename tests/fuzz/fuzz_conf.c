/* fuzz_conf.c - suki_conf_load on arbitrary sukid.conf text.
 *
 * libconfig reads only files, so the input is written to sukid.conf in a
 * scratch directory that also holds plugins/, templates/ and a mode 0600
 * "secret" file, so that relative paths in the seeds resolve. Inputs with
 * @include are skipped: they would read whatever file the fuzzer names.
 * Properties: a load either gives a conf and no diagnostics, or NULL and
 * at least one diagnostic with a file and a message; an accepted conf has
 * what the rest of the daemon takes for granted (conf.h's defaults and
 * ranges, lookups that find each transport and role); no file descriptor
 * is left open and nothing leaks (a SIGHUP reloads the file again and
 * again, and a rejected reload must cost nothing). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz_fds.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[200], path[256], sub[3][256];

static void cleanup(void)
{
    unlink(path);
    unlink(sub[2]);
    rmdir(sub[0]);
    rmdir(sub[1]);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir(dir, sizeof(dir), "conf");
    snprintf(path, sizeof(path), "%s/sukid.conf", dir);
    snprintf(sub[0], sizeof(sub[0]), "%s/plugins", dir);
    snprintf(sub[1], sizeof(sub[1]), "%s/templates", dir);
    snprintf(sub[2], sizeof(sub[2]), "%s/secret", dir);
    int fd = open(sub[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (mkdir(sub[0], 0700) < 0 || mkdir(sub[1], 0700) < 0 || fd < 0 ||
        write(fd, "0123456789abcdef0123456789abcdef\n", 33) != 33 ||
        close(fd) < 0)
        FAIL("cannot set up %s", dir);
    atexit(cleanup);
    return 0;
}

static bool has_include(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 8 <= size; i++)
        if (strncasecmp((const char *)data + i, "@include", 8) == 0)
            return true;
    return false;
}

static void check_conf(const struct suki_conf *c)
{
    if (c->refs != 1 || !c->path || !c->cfg || !c->prefix || !*c->prefix ||
        !c->stream || !c->group || !c->redis_url || !c->plugins_dir ||
        !c->templates_dir || !c->default_locale || !c->timezone ||
        !c->campaign_consent || !c->campaign_transport || !c->http_listen ||
        !c->public_url)
        FAIL("accepted conf lacks a member conf.h gives a default");
    if (!c->redis_host == !c->redis_unix)
        FAIL("redis: neither or both of host and unix socket");
    if (c->redis_host && (c->redis_port < 0 || c->redis_port > 65535))
        FAIL("redis port %d", c->redis_port);
    if (c->batch <= 0 || c->sched_batch <= 0 || c->max_event_size <= 0 ||
        c->lease_ms <= 0 || c->max_deliveries <= 0)
        FAIL("a count or duration that must be positive is not");
    if (c->campaign_error_threshold < 0 || c->campaign_error_threshold > 1)
        FAIL("campaign error threshold %g", c->campaign_error_threshold);
    for (size_t i = 0; i < c->n_transports; i++) {
        const struct suki_transport_conf *t = &c->transports[i];
        if (!t->name || !t->url || suki_conf_transport(c, t->name) != t)
            FAIL("transport %zu not found by its name", i);
        if (t->kind == SUKI_TRANSPORT_SPOOL && !t->spool_dir)
            FAIL("spool transport without a directory");
        if (t->max_connections <= 0 || t->timeout_ms <= 0 || t->rate < 0)
            FAIL("transport %s: bad limits", t->name);
        for (size_t j = 0; j < t->n_headers; j++)
            if (!t->headers[j].name || !t->headers[j].value)
                FAIL("transport %s: empty header", t->name);
    }
    for (size_t i = 0; i < c->n_roles; i++)
        if (!c->roles[i].name || !c->roles[i].address ||
            !suki_conf_role(c, c->roles[i].name))
            FAIL("role %zu not found by its name", i);
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct suki_rule_conf *r = &c->rules[i];
        if (!r->name || !r->use || !r->channel)
            FAIL("rule %zu lacks name, use or channel", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->rules[j].name, r->name) == 0)
                FAIL("two rules named %s", r->name);
    }
    char *k = suki_conf_key(c, "x");
    if (strncmp(k, c->prefix, strlen(c->prefix)) != 0)
        FAIL("key %s outside prefix %s", k, c->prefix);
    free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd0 = -1;
    if (size > 65536 || has_include(data, size))
        return 0;
    if (fd0 < 0)
        fd0 = fuzz_file_fds(NULL, 0);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        FAIL("cannot write %s", path);
    struct suki_conf_diags d = {0};
    struct suki_conf *c = suki_conf_load(path, &d);
    fuzz_check_fds(fd0, "conf loading");
    if (c) {
        if (d.n)
            FAIL("conf accepted with %zu diagnostics", d.n);
        check_conf(c);
        if (suki_conf_ref(c) != c || c->refs != 2)
            FAIL("ref");
        suki_conf_unref(c);
        suki_conf_unref(c);
    } else {
        if (d.n == 0)
            FAIL("conf refused without a diagnostic");
        for (size_t i = 0; i < d.n; i++)
            if (!d.v[i].file || !d.v[i].msg || !*d.v[i].msg)
                FAIL("empty diagnostic");
    }
    suki_conf_diags_clear(&d);
    /* a load without diags must not fall over either */
    c = suki_conf_load(path, NULL);
    suki_conf_unref(c);
    return 0;
}
