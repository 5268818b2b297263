/* check_conf.c - the configuration loader: defaults, the example file, and
 * a table of broken files, each with its expected FILE:LINE and message. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

static char tmpdir[256];
static char plugdir[300], tmpldir[300];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_conf.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(plugdir, sizeof(plugdir), "%s/plugins", tmpdir);
    snprintf(tmpldir, sizeof(tmpldir), "%s/templates", tmpdir);
    ck_assert_int_eq(mkdir(plugdir, 0700), 0);
    ck_assert_int_eq(mkdir(tmpldir, 0700), 0);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write body after a valid preamble of `pre` lines; returns the path. */
static char *write_conf(const char *name, const char *body)
{
    static char path[400];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "plugins = { dir = \"%s\"; };\n", plugdir);
    fprintf(f, "templates = { dir = \"%s\"; };\n", tmpldir);
    fputs(body, f);
    fclose(f);
    return path;
}

START_TEST(minimal_defaults)
{
    struct suki_conf_diags d = {0};
    struct suki_conf *c = suki_conf_load(write_conf("min.conf", ""), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "");
    ck_assert_str_eq(c->redis_host, "127.0.0.1");
    ck_assert_int_eq(c->redis_port, 6379);
    ck_assert_int_eq(c->redis_min_replicas, 0); /* no WAIT */
    ck_assert_int_eq(c->redis_wait_timeout_ms, 1000);
    ck_assert_str_eq(c->stream, "suki:events");
    ck_assert_str_eq(c->group, "sukid");
    ck_assert_int_eq(c->batch, 256);
    ck_assert_int_eq(c->claim_idle_ms, 60000);
    ck_assert_str_eq(c->timezone, "UTC");
    /* no email transport configured: the spool default is added */
    const struct suki_transport_conf *t = suki_conf_transport(c, "email");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->kind, SUKI_TRANSPORT_SPOOL);
    ck_assert_str_eq(c->http_listen, "127.0.0.1:9187");
    ck_assert_int_eq(c->console_timeline, 0); /* no console: none kept */
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

/* console.timeline defaults to 20 where a console shows it, and an explicit
 * value stands either way */
START_TEST(console_timeline_default)
{
    char users[400], body[800];
    snprintf(users, sizeof(users), "%s/console.users", tmpdir);
    FILE *f = fopen(users, "w");
    fclose(f);
    chmod(users, 0600);
    struct suki_conf_diags d = {0};
    snprintf(body, sizeof(body),
             "console = { listen = \"127.0.0.1:9188\"; users_file = \"%s\"; "
             "};\n",
             users);
    struct suki_conf *c = suki_conf_load(write_conf("con.conf", body), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert_int_eq(c->console_timeline, 20);
    suki_conf_unref(c);
    snprintf(body, sizeof(body),
             "console = { listen = \"127.0.0.1:9188\"; users_file = \"%s\"; "
             "timeline = 0; };\n",
             users);
    c = suki_conf_load(write_conf("con0.conf", body), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert_int_eq(c->console_timeline, 0);
    suki_conf_unref(c);
    c = suki_conf_load(
        write_conf("con7.conf", "console = { timeline = 7; };\n"), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert_int_eq(c->console_timeline, 7);
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(urls_and_values)
{
    struct suki_conf_diags d = {0};
    const char *body =
        "redis = { url = \"unix:///run/redis/redis.sock?db=3\"; prefix = "
        "\"acme\"; };\n"
        "intake = { lists = \"crm:events\"; claim_idle = \"2m\"; };\n"
        "timezone = \"Asia/Manila\";\n"
        "transports = { email = { url = \"smtp://mail.example.ph:587\"; "
        "starttls = \"try\"; rate = \"600/m\"; retry_initial = \"30s\"; };\n"
        "  chat = { url = \"https://chat.example.ph/hooks/x\"; format = "
        "\"slack\"; headers = { X-Token = \"abc\"; }; }; };\n"
        "roles = { head-of-sales = \"lead@example.ph\"; };\n"
        "rules = ( { name = \"r1\"; use = \"followup\"; on = "
        "\"meeting.held\"; notify = [\"manager\", \"role:head-of-sales\"]; "
        "template = \"t\"; after = \"3d\"; } );\n";
    struct suki_conf *c = suki_conf_load(write_conf("ok.conf", body), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "");
    ck_assert_str_eq(c->redis_unix, "/run/redis/redis.sock");
    ck_assert_int_eq(c->redis_db, 3);
    ck_assert_str_eq(c->stream, "acme:events");
    ck_assert_int_eq((int)c->n_lists, 1);
    ck_assert_str_eq(c->lists[0], "crm:events");
    ck_assert_int_eq(c->claim_idle_ms, 120000);
    const struct suki_transport_conf *t = suki_conf_transport(c, "email");
    ck_assert_int_eq(t->kind, SUKI_TRANSPORT_SMTP);
    ck_assert_int_eq(t->starttls, SUKI_STARTTLS_TRY);
    ck_assert_double_eq(t->rate, 10.0);
    ck_assert_int_eq(t->retry_initial_ms, 30000);
    t = suki_conf_transport(c, "chat");
    ck_assert_int_eq(t->kind, SUKI_TRANSPORT_HTTP);
    ck_assert_str_eq(t->format, "slack");
    ck_assert_int_eq((int)t->n_headers, 1);
    ck_assert_str_eq(suki_conf_role(c, "head-of-sales"), "lead@example.ph");
    ck_assert_int_eq((int)c->n_rules, 1);
    ck_assert_str_eq(c->rules[0].channel, "email");
    ck_assert_int_eq((int)c->rules[0].n_subject, 4); /* default subjects */
    ck_assert_int_eq(c->console_timeline, 0); /* no console: no timeline */
    char *k = suki_conf_key(c, "dead");
    ck_assert_str_eq(k, "acme:dead");
    free(k);
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

/* Each broken body starts at line 3 of its file (after the preamble). */
static const struct {
    const char *body;
    int line;
    const char *msg;
} broken[] = {
    {"redis = { url = redis://x; };\n", 3,
     "syntax error near 'redis = { url = redis://x; };'"},
    {"redis = { urll = \"redis://x\"; };\n", 3, "unknown key 'urll' in redis"},
    {"bogus = 1;\n", 3, "unknown top-level key 'bogus'"},
    {"intake = { batch = \"many\"; };\n", 3, "'batch' must be an integer"},
    {"intake = { batch = 0; };\n", 3, "'batch' must be between 1 and 10000"},
    {"console = { timeline = 1001; };\n", 3,
     "'timeline' must be between 0 and 1000 (got 1001)"},
    {"console = {\n  timeline = -1;\n};\n", 4,
     "'timeline' must be between 0 and 1000 (got -1)"},
    {"console = { timeline = \"20\"; };\n", 3, "'timeline' must be an integer"},
    {"intake = { claim_idle = \"3x\"; };\n", 3, "bad duration \"3x\""},
    {"intake = { claim_idle = 60; };\n", 3, "must be a duration string"},
    {"intake = { claim_idle = \"-5s\"; };\n", 3, "bad duration"},
    {"intake = { dedup_window = \"99999999999999999999d\"; };\n", 3,
     "too large"},
    {"transports = { email = { url = \"smtp://m\"; rate = \"20/d\"; }; };\n", 3,
     "bad rate \"20/d\""},
    {"transports = { email = { url = \"smtp://m\"; rate = \"fast\"; }; };\n", 3,
     "bad rate"},
    {"transports = { email = { url = \"ftp://m\"; }; };\n", 3,
     "must be smtp://"},
    {"transports = { email = { url = \"smtp://m\";\n starttls = \"yes\"; }; "
     "};\n",
     4, "'starttls' must be"},
    {"redis = { url = \"http://127.0.0.1\"; };\n", 3,
     "must start with redis:// or unix://"},
    {"redis = { url = \"redis://127.0.0.1:99999\"; };\n", 3, "bad port"},
    {"redis = { url = \"redis://user:pw@127.0.0.1\"; };\n", 3,
     "must not carry a password"},
    {"timezone = \"Mars/Olympus\";\n", 3, "unknown timezone"},
    {"rules = ( { name = \"a\"; use = \"followup\"; on = \"x\"; notify = "
     "\"manager\"; } );\n",
     3, "rule 'a' needs a 'template'"},
    {"rules = ( { name = \"a\"; on = \"x\"; notify = \"manager\"; template "
     "= \"t\"; } );\n",
     3, "needs 'use'"},
    {"rules = ( { name = \"a\"; use = \"followup\"; on = \"x\"; template = "
     "\"t\";\n notify = \"role:ceo\"; } );\n",
     4, "unknown role 'ceo'"},
    {"rules = ( { name = \"a\"; use = \"followup\"; on = \"x\"; template = "
     "\"t\"; notify = \"manager\";\n channel = \"fax\"; } );\n",
     4, "unknown channel 'fax'"},
    {"rules = ( { name = \"a\"; use = \"f\"; on = \"x\"; template = \"t\"; "
     "notify = \"manager\"; },\n { name = \"a\"; use = \"f\"; on = \"x\"; "
     "template = \"t\"; notify = \"manager\"; } );\n",
     4, "duplicate rule name 'a'"},
    {"rules = ( { name = \"a\"; use = \"f\"; on = (\"x\", 3); template = "
     "\"t\"; notify = \"manager\"; } );\n",
     3, "'on' must hold strings"},
    {"rules = { name = \"a\"; };\n", 3, "'rules' must be a list"},
    {"campaigns = { consent = \"maybe\"; };\n", 3, "'consent' must be"},
    {"campaigns = { error_threshold = 1.5; };\n", 3,
     "'error_threshold' must be between 0 and 1"},
    {"http = { listen = \"localhost\"; };\n", 3, "must be HOST:PORT"},
    {"http = { public_url = \"suki.example.ph\"; };\n", 3,
     "must start with http://"},
    {"daemon = { log_level = \"loud\"; };\n", 3, "'log_level' must be"},
    {"redis = 5;\n", 3, "'redis' must be a group"},
    {"roles = { boss = \"not an address\"; };\n", 3, "is not an email address"},
    {"redis = { password_file = \"/nonexistent/suki.pass\"; };\n", 3,
     "No such file"},
    {"scheduler = { lease = \"500ms\"; };\n", 3,
     "'lease' must be between 1s and"},
    {"http = { max_connections = 0; };\n", 3,
     "'max_connections' must be between 1 and 1000000"},
    {"http = { request_timeout = \"100ms\"; };\n", 3,
     "'request_timeout' must be between 1s and 1h"},
    {"digests = {\n at = \"25:00\"; };\n", 4,
     "digests: 'at' must be a local time \"HH:MM\""},
    {"digests = { at = 8; };\n", 3, "digests: 'at' must be a local time"},
    {"digests = { at = \"08:00\";\n timezone = \"Asia/Atlantis\"; };\n", 4,
     "digests: unknown timezone \"Asia/Atlantis\""},
    {"digests = { tmpl = \"x\"; };\n", 3, "unknown key 'tmpl' in digests"},
    {"digests = { locales = [ \"maria@example.ph\" ]; };\n", 3,
     "is not \"ADDRESS LOCALE\""},
    {"digests = 1;\n", 3, "'digests' must be a group"},
    {"rules = ( { name = \"a\"; use = \"followup\"; on = \"x\"; template = "
     "\"t\"; notify = \"manager\";\n digest = true; } );\n",
     4, "rule 'a': digest = true needs a digests"},
    {"digests = { at = \"08:00\"; };\nrules = ( { name = \"a\"; use = "
     "\"followup\"; on = \"x\"; template = \"t\"; notify = \"manager\";\n "
     "digest = \"yes\"; } );\n",
     5, "'digest' must be true or false"},
    {"redis = { master = \"m\";\n sentinels = [ \"10.0.0.1\" ]; };\n", 4,
     "redis sentinel \"10.0.0.1\" must be \"host:port\""},
    {"redis = { sentinels = [ \"[::1:26379\" ]; master = \"m\"; };\n", 3,
     "must be \"host:port\""},
    {"redis = { sentinels = [ \"h:0\" ]; master = \"m\"; };\n", 3,
     "must be \"host:port\""},
    {"redis = {\n sentinels = [ \"h:26379\" ]; };\n", 4,
     "'sentinels' needs 'master'"},
    {"redis = {\n master = \"m\"; };\n", 4, "'master' needs 'sentinels'"},
    {"redis = { url = \"unix:///r.sock\";\n sentinels = [ \"h:1\" ]; "
     "master = \"m\"; };\n",
     4, "a unix:// url do not go together"},
    {"redis = {\n username = \"suki\"; };\n", 4,
     "'username' needs 'password_file'"},
    {"redis = { sentinels = ( \"h:1\", 2 ); master = \"m\"; };\n", 3,
     "'sentinels' must hold strings"},
    {"redis = {\n min_replicas = 17; };\n", 4,
     "'min_replicas' must be between 0 and 16 (got 17)"},
    {"redis = { min_replicas = -1; };\n", 3, "'min_replicas' must be between"},
    {"redis = { min_replicas = \"1\"; };\n", 3,
     "'min_replicas' must be an integer"},
    {"redis = { min_replicas = 1;\n wait_timeout = \"5ms\"; };\n", 4,
     "'wait_timeout' must be between"},
    {"reports = { monthly = {\n at = \"25:00\"; }; };\n", 4,
     "reports.monthly: 'at' must be a local time \"HH:MM\""},
    {"reports = { monthly = {\n timezone = \"Asia/Atlantis\"; }; };\n", 4,
     "reports.monthly: unknown timezone \"Asia/Atlantis\""},
    {"reports = { monthly = {\n day = 31; }; };\n", 4,
     "'day' must be between 1 and 28"},
    {"reports = { monthly = {\n to = [ \"manager\", \"boss\" ]; }; };\n", 4,
     "'to' entry \"boss\" is neither \"manager\" nor an email address"},
    {"reports = { weekly = { }; };\n", 3, "unknown key 'weekly' in reports"},
    {"reports = { monthly = { tmpl = \"x\"; }; };\n", 3,
     "unknown key 'tmpl' in reports.monthly"},
    {"reports = { monthly = 1; };\n", 3, "'monthly' must be a group"},
    /* inbound: the url, TLS, poll, what is required */
    {"inbound = { url = \"http://m/INBOX\"; username = \"u\"; };\n", 3,
     "must start with imaps:// or imap://"},
    {"inbound = { url = \"imaps://u:pw@m/INBOX\"; username = \"u\"; };\n", 3,
     "must not carry a user or password"},
    {"inbound = { url = \"imaps://m\"; username = \"u\"; };\n", 3,
     "names no mailbox"},
    {"inbound = { url = \"imaps://m/INBOX;UID=3\"; username = \"u\"; };\n", 3,
     "the mailbox must be one name"},
    {"inbound = { url = \"imaps:///INBOX\"; username = \"u\"; };\n", 3,
     "has no host"},
    {"inbound = { url = \"imap://m/INBOX\"; username = \"u\";\n"
     "  starttls = \"try\"; };\n",
     4, "'starttls' must be \"required\" or \"off\""},
    {"inbound = { url = \"imap://mail.example.ph/INBOX\"; username = \"u\";\n"
     "  starttls = \"off\"; };\n",
     4, "sends the password in clear"},
    {"inbound = { url = \"imaps://m/INBOX\"; username = \"u\";\n"
     "  poll = \"500ms\"; };\n",
     4, "'poll' must be between"},
    {"inbound = { url = \"imaps://m/INBOX\"; };\n", 3,
     "inbound needs a username"},
    {"inbound = { username = \"u\"; };\n", 3, "inbound needs a url"},
    {"inbound = { url = \"imaps://m/INBOX\"; username = \"u\"; };\n", 3,
     "inbound needs a password_file"},
    {"inbound = { urll = \"imaps://m/INBOX\"; };\n", 3,
     "unknown key 'urll' in inbound"},
    {"inbound = 5;\n", 3, "'inbound' must be a group"},
    {"inbound = { url = \"imaps://m/INBOX\"; username = \"u\";\n"
     "  password_file = \"/nonexistent/imap.pass\"; };\n",
     4, "'password_file': /nonexistent/imap.pass"},
};

START_TEST(reports_section)
{
    struct suki_conf_diags d = {0};
    const char *body = "timezone = \"Asia/Manila\";\n"
                       "reports = { monthly = { day = 2; at = \"07:15\"; "
                       "to = [ \"manager\", \"boss@example.ph\" ]; }; };\n";
    struct suki_conf *c = suki_conf_load(write_conf("rep.conf", body), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert(c->reports);
    ck_assert_int_eq(c->report_day, 2);
    ck_assert_int_eq(c->report_hh, 7);
    ck_assert_int_eq(c->report_mm, 15);
    ck_assert_str_eq(c->report_timezone, "Asia/Manila");
    ck_assert_str_eq(c->report_template, "monthly-report");
    ck_assert_uint_eq(c->n_report_to, 2);
    ck_assert_str_eq(c->report_to[1], "boss@example.ph");
    suki_conf_unref(c);
    c = suki_conf_load(
        write_conf("rep2.conf", "reports = { monthly = { }; };\n"), &d);
    ck_assert(c != NULL && c->reports && c->report_day == 1);
    ck_assert(c->report_hh == 8 && c->n_report_to == 1);
    ck_assert_str_eq(c->report_to[0], "manager");
    ck_assert_str_eq(c->report_timezone, "UTC");
    suki_conf_unref(c);
    c = suki_conf_load(write_conf("norep.conf", ""), &d);
    ck_assert(c != NULL && !c->reports);
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(digests_section)
{
    struct suki_conf_diags d = {0};
    const char *body =
        "timezone = \"Asia/Manila\";\n"
        "digests = { at = \"07:30\"; locales = [ \"Maria@Example.ph tl\" ]; "
        "};\n"
        "rules = ( { name = \"a\"; use = \"followup\"; on = \"x\"; "
        "template = \"t\"; notify = \"manager\"; digest = true; } );\n";
    struct suki_conf *c = suki_conf_load(write_conf("dig.conf", body), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert(c->digests);
    ck_assert_int_eq(c->digest_hh, 7);
    ck_assert_int_eq(c->digest_mm, 30);
    ck_assert_str_eq(c->digest_timezone, "Asia/Manila");
    ck_assert_str_eq(c->digest_template, "manager-digest");
    ck_assert_str_eq(suki_conf_digest_locale(c, "maria@example.ph"), "tl");
    ck_assert_ptr_null(suki_conf_digest_locale(c, "maria@example"));
    ck_assert(c->rules[0].digest);
    suki_conf_unref(c);
    c = suki_conf_load(write_conf("nodig.conf", ""), &d);
    ck_assert(c != NULL && !c->digests);
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(sentinel_config)
{
    struct suki_conf_diags d = {0};
    char *path = write_conf(
        "sentinel.conf",
        "redis = { url = \"redis://ignored:1/3\";\n"
        " sentinels = [ \"10.0.0.1:26379\", \"[::1]:26380\", "
        "\"s3.example.ph:26381\" ];\n master = \"suki\"; sentinel_username "
        "= \"sn\";\n min_replicas = 1; wait_timeout = \"250ms\"; };\n");
    struct suki_conf *c = suki_conf_load(path, &d);
    ck_assert_msg(c != NULL, "refused: %s", d.n ? d.v[0].msg : "?");
    ck_assert_int_eq((int)c->n_redis_sentinels, 3);
    ck_assert_str_eq(c->redis_master, "suki");
    ck_assert_str_eq(c->redis_sentinel_username, "sn");
    ck_assert_int_eq(c->redis_min_replicas, 1);
    ck_assert_int_eq(c->redis_wait_timeout_ms, 250);
    ck_assert_int_eq(c->redis_db, 3);
    char *h;
    int port;
    ck_assert_int_eq(suki_conf_hostport(c->redis_sentinels[1], &h, &port), 0);
    ck_assert_str_eq(h, "::1");
    ck_assert_int_eq(port, 26380);
    free(h);
    ck_assert_int_eq(suki_conf_hostport(c->redis_sentinels[2], &h, &port), 0);
    ck_assert_str_eq(h, "s3.example.ph");
    ck_assert_int_eq(port, 26381);
    free(h);
    ck_assert_int_lt(suki_conf_hostport("::1:5", &h, &port), 0);
    ck_assert_int_lt(suki_conf_hostport(":5", &h, &port), 0);
    ck_assert_int_lt(suki_conf_hostport("h:", &h, &port), 0);
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(broken_configs)
{
    struct suki_conf_diags d = {0};
    char name[32];
    snprintf(name, sizeof(name), "broken%d.conf", _i);
    char *path = write_conf(name, broken[_i].body);
    struct suki_conf *c = suki_conf_load(path, &d);
    ck_assert_msg(c == NULL, "case %d accepted: %s", _i, broken[_i].body);
    ck_assert_msg(d.n >= 1, "case %d: no diagnostics", _i);
    bool found = false;
    for (size_t i = 0; i < d.n; i++) {
        if (strstr(d.v[i].msg, broken[_i].msg) &&
            d.v[i].line == broken[_i].line && strcmp(d.v[i].file, path) == 0)
            found = true;
    }
    ck_assert_msg(found, "case %d: want %s:%d: ...%s..., got %s:%d: %s", _i,
                  path, broken[_i].line, broken[_i].msg, d.v[0].file,
                  d.v[0].line, d.v[0].msg);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(collects_all_errors)
{
    struct suki_conf_diags d = {0};
    char *path = write_conf("many.conf", "intake = { batch = 0;\n"
                                         "  claim_idle = \"3x\"; };\n"
                                         "nope = 1;\n");
    ck_assert_ptr_null(suki_conf_load(path, &d));
    ck_assert_int_ge((int)d.n, 3);
    suki_conf_diags_clear(&d);
}
END_TEST

/* sukid -t goes on to templates and plugins with what could be read. */
START_TEST(partial_keeps_what_it_read)
{
    struct suki_conf_diags d = {0};
    char *path = write_conf("partial.conf",
                            "timezone = \"Mars/Olympus\";\n"
                            "rules = ( { name = \"a\"; on = \"x\"; "
                            "notify = \"manager\"; template = \"t\"; } );\n");
    struct suki_conf *c = suki_conf_load_partial(path, &d);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq((int)d.n, 2); /* the timezone, the rule's missing use */
    ck_assert_str_eq(c->timezone, "UTC");
    ck_assert_int_eq((int)c->n_rules, 1);
    ck_assert_ptr_null(c->rules[0].use);
    ck_assert_str_eq(c->rules[0].template_name, "t");
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
    ck_assert_ptr_null(
        suki_conf_load_partial(write_conf("bad.conf", "a = ;\n"), &d));
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(missing_dirs_and_file)
{
    struct suki_conf_diags d = {0};
    char path[400];
    snprintf(path, sizeof(path), "%s/nodirs.conf", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("plugins = { dir = \"/nonexistent/plugins\"; };\n"
          "templates = { dir = \"/nonexistent/templates\"; };\n",
          f);
    fclose(f);
    ck_assert_ptr_null(suki_conf_load(path, &d));
    ck_assert_int_eq((int)d.n, 2);
    ck_assert_int_eq(d.v[0].line, 1);
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "plugins dir"));
    ck_assert_int_eq(d.v[1].line, 2);
    ck_assert_ptr_nonnull(strstr(d.v[1].msg, "templates dir"));
    suki_conf_diags_clear(&d);
    ck_assert_ptr_null(suki_conf_load("/nonexistent/sukid.conf", &d));
    ck_assert_int_eq((int)d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "cannot read"));
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(secret_file_permissions)
{
    char sec[400];
    snprintf(sec, sizeof(sec), "%s/redis.pass", tmpdir);
    FILE *f = fopen(sec, "w");
    fputs("s3cret\n", f);
    fclose(f);
    chmod(sec, 0644);
    char body[600];
    snprintf(body, sizeof(body), "redis = { password_file = \"%s\"; };\n", sec);
    struct suki_conf_diags d = {0};
    ck_assert_ptr_null(suki_conf_load(write_conf("sec.conf", body), &d));
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "chmod 600"));
    suki_conf_diags_clear(&d);
    chmod(sec, 0600);
    struct suki_conf *c = suki_conf_load(write_conf("sec.conf", body), &d);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->redis_password, "s3cret");
    suki_conf_unref(c);
}
END_TEST

START_TEST(inbound_section)
{
    char sec[400];
    snprintf(sec, sizeof(sec), "%s/imap.pass", tmpdir);
    FILE *f = fopen(sec, "w");
    fputs("imap-secret\n", f);
    fclose(f);
    chmod(sec, 0600);
    char body[800];
    snprintf(body, sizeof(body),
             "inbound = { url = \"imap://127.0.0.1:1143/INBOX\";\n"
             "  username = \"suki\"; password_file = \"%s\";\n"
             "  starttls = \"off\"; poll = \"1s\"; };\n",
             sec);
    struct suki_conf_diags d = {0};
    struct suki_conf *c = suki_conf_load(write_conf("in.conf", body), &d);
    ck_assert_msg(c != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert(c->inbound);
    ck_assert_str_eq(c->inbound_url, "imap://127.0.0.1:1143/INBOX");
    ck_assert_str_eq(c->inbound_password, "imap-secret");
    ck_assert_int_eq(c->inbound_starttls, SUKI_STARTTLS_OFF);
    ck_assert_int_eq(c->inbound_poll_ms, 1000);
    ck_assert_int_eq(c->inbound_timeout_ms, 60000);
    ck_assert(c->inbound_tls_verify);
    suki_conf_unref(c);
    c = suki_conf_load(write_conf("noin.conf", ""), &d);
    ck_assert(c != NULL && !c->inbound);
    ck_assert_int_eq(c->inbound_poll_ms, 60000);
    suki_conf_unref(c);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(example_config)
{
    /* The shipped example, pointed at directories that exist here. */
    char cmd[1200];
    char path[400];
    snprintf(path, sizeof(path), "%s/example.conf", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "sed -e 's|/usr/lib/suki/plugins|%s|' -e "
             "'s|/etc/suki/templates|%s|' '%s/conf/sukid.conf' > '%s'",
             plugdir, tmpldir, SRCDIR, path);
    ck_assert_int_eq(system(cmd), 0);
    struct suki_conf_diags d = {0};
    struct suki_conf *c = suki_conf_load(path, &d);
    ck_assert_msg(c != NULL, "%s:%d: %s", d.n ? d.v[0].file : "",
                  d.n ? d.v[0].line : 0, d.n ? d.v[0].msg : "");
    ck_assert_int_eq((int)c->n_rules, 6);
    ck_assert_str_eq(c->timezone, "Asia/Manila");
    suki_conf_unref(c);
}
END_TEST

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, minimal_defaults);
    tcase_add_test(tc, urls_and_values);
    tcase_add_test(tc, example_config);
    tcase_add_test(tc, sentinel_config);
    tcase_add_test(tc, secret_file_permissions);
    tcase_add_test(tc, digests_section);
    tcase_add_test(tc, reports_section);
    tcase_add_test(tc, inbound_section);
    tcase_add_test(tc, console_timeline_default);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, broken_configs, 0,
                        (int)(sizeof(broken) / sizeof(broken[0])));
    tcase_add_test(tc, collects_all_errors);
    tcase_add_test(tc, partial_keeps_what_it_read);
    tcase_add_test(tc, missing_dirs_and_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
