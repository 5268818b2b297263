/* check_event.c - event parsing, validation reasons, data access, profile
 * fields, dump. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "timeutil.h"

#define NOW_MS 1795773600000LL /* 2026-11-27T10:00:00Z */

static const struct suki_event_limits lim = {65536, 32};

static int parse_str(const char *s, struct suki_event **ev,
                     struct suki_err *err)
{
    return suki_event_parse(s, strlen(s), &lim, NOW_MS, ev, err);
}

/* A document nested n levels deep: [[[...]]] inside "data". */
static char *deep_doc(int n)
{
    const char *head = "{\"type\":\"a.b\",\"client\":\"c\",\"data\":{\"x\":";
    size_t hl = strlen(head);
    char *s = malloc(hl + 2 * (size_t)n + 3);
    ck_assert_ptr_nonnull(s);
    memcpy(s, head, hl);
    char *p = s + hl;
    for (int i = 0; i < n; i++)
        *p++ = '[';
    for (int i = 0; i < n; i++)
        *p++ = ']';
    memcpy(p, "}}", 3);
    return s;
}

START_TEST(bad_inputs)
{
    static const struct {
        const char *in;
        size_t len;         /* 0: strlen */
        const char *reason; /* expected prefix */
    } bad[] = {
        {"hello", 0, "not JSON: "},
        {"", 0, "not JSON: "},
        {"{\"type\":\"a.b\",\"client\":\"c\"", 0, "not JSON: "},
        {"{\"type\":\"a.b\",\"client\":\"c\"} x", 0, "not JSON: "},
        {"{\"type\":\"a\",\"type\":\"b\",\"client\":\"c\"}", 0, "not JSON: "},
        {"[1,2]", 0, "not an object"},
        {"\"meeting.held\"", 0, "not an object"},
        {"42", 0, "not an object"},
        {"null", 0, "not an object"},
        {"{\"client\":\"c\"}", 0, "missing type"},
        {"{\"type\":7,\"client\":\"c\"}", 0, "type is not a string"},
        {"{\"type\":null,\"client\":\"c\"}", 0, "type is not a string"},
        {"{\"type\":\"Meeting.Held\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\"meeting..held\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\".held\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\"meeting.\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\"meet-ing.held\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\"meeting held\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\"\",\"client\":\"c\"}", 0, "bad type"},
        {"{\"type\":\"a23456789012345678901234567890123456789012345678901234567"
         "8901234x\",\"client\":\"c\"}",
         0, "bad type"},
        {"{\"type\":\"a.b\"}", 0, "missing client"},
        {"{\"type\":\"a.b\",\"client\":1}", 0, "client is not a string"},
        {"{\"type\":\"a.b\",\"client\":\"\"}", 0, "client is empty"},
        {"{\"type\":\"a.b\",\"client\":\"a\\nb\"}", 0,
         "client contains control characters"},
        {"{\"type\":\"a.b\",\"client\":\"a\\u0085b\"}", 0,
         "client contains control characters"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"id\":5}", 0,
         "id is not a string"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"id\":\"\"}", 0, "id is empty"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"id\":\"x\\r\"}", 0,
         "id contains control characters"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"manager\":[]}", 0,
         "manager is not a string"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"manager\":\"m@x\\r\\nBcc: e\"}",
         0, "manager contains control characters"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"at\":\"yesterday\"}", 0,
         "bad at: "},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"at\":\"2026-02-30T10:00:00Z\"}",
         0, "bad at: no such date 2026-02-30"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"at\":\"2026-11-27T25:00:00Z\"}",
         0, "bad at: hour"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"at\":\"2026-11-27T10:00:00\"}",
         0, "bad at: missing UTC offset"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"at\":1795773600}", 0,
         "bad at: not a string"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"at\":\"1969-12-31T23:59:59Z\"}",
         0, "bad at: before 1970"},
        {"{\"type\":\"a.b\",\"client\":\"c\","
         "\"at\":\"9999-12-31T23:59:59-01:00\"}",
         0, "bad at: before 1970 or after 9999"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"data\":[1]}", 0,
         "data is not an object"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"data\":\"x\"}", 0,
         "data is not an object"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"data\":null}", 0,
         "data is not an object"},
        /* overlong "/" (C0 AF), a UTF-16 surrogate (ED A0 80), a sequence cut
         * short (E2 82), a lone continuation byte, a byte never used */
        {"{\"type\":\"a.b\",\"client\":\"\xC0\xAF\"}", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"\xE0\x80\xAF\"}", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"\xED\xA0\x80\"}", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"\xE2\x82\"}", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"x\"}\xE2\x82", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"\x80\"}", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"\xF4\x90\x80\x80\"}", 0,
         "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"\xFF\"}", 0, "invalid UTF-8"},
        {"{\"type\":\"a.b\",\"client\":\"c\0\"}", 28, "contains NUL byte"},
        {"{\"type\":\"a.b\",\"client\":\"c\",\"data\":{\"a\":{\"b\":{\"c\":"
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}}",
         0, "nesting too deep"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct suki_event *ev = (struct suki_event *)1;
        struct suki_err err = {{0}};
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].in);
        int rc = suki_event_parse(bad[i].in, len, &lim, NOW_MS, &ev, &err);
        ck_assert_msg(rc == -EINVAL, "case %zu accepted (rc %d): %s", i, rc,
                      bad[i].in);
        ck_assert_ptr_null(ev);
        ck_assert_msg(strncmp(err.msg, bad[i].reason, strlen(bad[i].reason)) ==
                          0,
                      "case %zu: reason '%s', want prefix '%s'", i, err.msg,
                      bad[i].reason);
    }
}
END_TEST

START_TEST(not_json_has_location)
{
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    ck_assert_int_eq(parse_str("{\"type\":\"a.b\",\n\"client\":}", &ev, &err),
                     -EINVAL);
    ck_assert_msg(strstr(err.msg, "(line 2 column ") != NULL, "got '%s'",
                  err.msg);
}
END_TEST

START_TEST(oversize)
{
    const struct suki_event_limits small = {64, 32};
    char buf[200];
    snprintf(buf, sizeof(buf),
             "{\"type\":\"a.b\",\"client\":\"c\",\"data\":{\"s\":\"%080d\"}}",
             0);
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    ck_assert_int_eq(
        suki_event_parse(buf, strlen(buf), &small, NOW_MS, &ev, &err),
        -EMSGSIZE);
    ck_assert_ptr_null(ev);
    ck_assert_msg(strncmp(err.msg, "too large", 9) == 0, "got '%s'", err.msg);
    /* the same document fits the default limit */
    ck_assert_int_eq(parse_str(buf, &ev, &err), 0);
    suki_event_free(ev);
}
END_TEST

START_TEST(deep_nesting)
{
    /* far past jansson's own limit of 2048: must fail cleanly */
    char *doc = deep_doc(10000);
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    const struct suki_event_limits big = {1 << 20, 32};
    ck_assert_int_eq(
        suki_event_parse(doc, strlen(doc), &big, NOW_MS, &ev, &err), -EINVAL);
    ck_assert_msg(strncmp(err.msg, "nesting too deep", 16) == 0, "got '%s'",
                  err.msg);
    free(doc);
    /* right at the limit is fine: object + data + 30 arrays = 32 */
    doc = deep_doc(30);
    ck_assert_int_eq(parse_str(doc, &ev, &err), 0);
    suki_event_free(ev);
    free(doc);
    doc = deep_doc(31);
    ck_assert_int_eq(parse_str(doc, &ev, &err), -EINVAL);
    ck_assert_msg(strncmp(err.msg, "nesting too deep", 16) == 0, "got '%s'",
                  err.msg);
    free(doc);
    /* brackets inside strings do not count */
    ev = NULL;
    ck_assert_int_eq(
        parse_str(
            "{\"type\":\"a.b\",\"client\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}",
            &ev, &err),
        0);
    suki_event_free(ev);
}
END_TEST

START_TEST(good_event)
{
    const char *doc =
        "{\"id\":\"crm-000812\",\"type\":\"meeting.held\",\"client\":"
        "\"acme-ph\",\"at\":\"2026-11-27T10:00:00+08:00\",\"manager\":"
        "\"maria@example.ph\",\"data\":{\"summary\":\"Salamat po! Nag-usap "
        "kami tungkol sa kontrata \xF0\x9F\x91\x8D\",\"amount\":1500,"
        "\"rate\":0.1,\"big\":1e300,\"whole\":1500.0,\"ok\":true,\"no\":false,"
        "\"nothing\":null,\"obj\":{},\"arr\":[1]}}";
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    ck_assert_msg(parse_str(doc, &ev, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(ev->id, "crm-000812");
    ck_assert_str_eq(ev->type, "meeting.held");
    ck_assert_str_eq(ev->client, "acme-ph");
    ck_assert_str_eq(ev->manager, "maria@example.ph");
    ck_assert_int_eq(ev->at_ms, 1795773600000LL - 8 * 3600000LL);
    ck_assert_str_eq(suki_event_data_str(ev, "summary"),
                     "Salamat po! Nag-usap kami tungkol sa kontrata "
                     "\xF0\x9F\x91\x8D");
    ck_assert_str_eq(suki_event_data_str(ev, "amount"), "1500");
    ck_assert_str_eq(suki_event_data_str(ev, "rate"), "0.1");
    ck_assert_str_eq(suki_event_data_str(ev, "big"), "1e+300");
    ck_assert_str_eq(suki_event_data_str(ev, "whole"), "1500");
    ck_assert_str_eq(suki_event_data_str(ev, "ok"), "true");
    ck_assert_str_eq(suki_event_data_str(ev, "no"), "false");
    ck_assert_ptr_null(suki_event_data_str(ev, "nothing"));
    ck_assert_ptr_null(suki_event_data_str(ev, "obj"));
    ck_assert_ptr_null(suki_event_data_str(ev, "arr"));
    ck_assert_ptr_null(suki_event_data_str(ev, "absent"));
    suki_event_free(ev);
}
END_TEST

START_TEST(good_event_minimal)
{
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    /* not NUL-terminated: the length bounds the parse */
    const char buf[] = "{\"type\":\"lead.created\",\"client\":\"Kumpanya "
                       "ni Juan \xC3\xB1\"}GARBAGE";
    ck_assert_int_eq(
        suki_event_parse(buf, strlen(buf) - 7, &lim, NOW_MS, &ev, &err), 0);
    ck_assert_ptr_null(ev->id);
    ck_assert_ptr_null(ev->manager);
    ck_assert_int_eq(ev->at_ms, NOW_MS);
    ck_assert_str_eq(ev->client, "Kumpanya ni Juan \xC3\xB1");
    ck_assert(json_is_object(ev->data));
    ck_assert_int_eq(json_object_size(ev->data), 0);
    ck_assert_ptr_null(suki_event_data_str(ev, "x"));
    suki_event_free(ev);

    static const char *types[] = {
        "a",       "a.b", "contact.call", "x_1.y-2.z", "consent.unsubscribed",
        "v2.b-c_d"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char doc[128];
        snprintf(doc, sizeof(doc), "{\"type\":\"%s\",\"client\":\"c\"}",
                 types[i]);
        ev = NULL;
        ck_assert_msg(parse_str(doc, &ev, &err) == 0, "%s: %s", types[i],
                      err.msg);
        ck_assert_str_eq(ev->type, types[i]);
        suki_event_free(ev);
    }
    /* empty manager is "not given"; NULL limits take the defaults */
    const char *doc = "{\"type\":\"a.b\",\"client\":\"c\",\"manager\":\"\"}";
    ck_assert_int_eq(
        suki_event_parse(doc, strlen(doc), NULL, NOW_MS, &ev, &err), 0);
    ck_assert_ptr_null(ev->manager);
    suki_event_free(ev);
    suki_event_free(NULL);
}
END_TEST

struct collected {
    char text[1024];
    int n;
};

static void collect(const char *field, const char *value, void *arg)
{
    struct collected *c = arg;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof(c->text) - used, "%s=%s;", field, value);
    c->n++;
}

START_TEST(profile_fields)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"{\"type\":\"client.created\",\"client\":\"acme\",\"manager\":"
         "\"top@x.ph\",\"data\":{\"name\":\"ACME Pilipinas\",\"email\":"
         "\"ops@acme.ph\",\"manager\":\"maria@x.ph\",\"locale\":\"tl\","
         "\"timezone\":\"Asia/Manila\",\"segment\":\"sme\",\"tags\":"
         "[\"vip\",\"manila\"],\"consent\":true,\"other\":\"ignored\"}}",
         "manager=top@x.ph;name=ACME Pilipinas;email=ops@acme.ph;"
         "manager=maria@x.ph;locale=tl;timezone=Asia/Manila;segment=sme;"
         "tags=vip,manila;consent=true;"},
        {"{\"type\":\"client.updated\",\"client\":\"acme\",\"data\":"
         "{\"consent\":false,\"tags\":[]}}",
         "tags=;consent=false;"},
        /* wrong types and unsafe values are skipped, the rest applied */
        {"{\"type\":\"client.updated\",\"client\":\"acme\",\"data\":"
         "{\"name\":5,\"email\":\"a@b\\r\\nBcc: x@y\",\"timezone\":"
         "\"Mars/Base\",\"tags\":[\"a\",1],\"consent\":\"yes\","
         "\"segment\":\"big\"}}",
         "segment=big;"},
        /* other types only carry the top-level manager */
        {"{\"type\":\"meeting.held\",\"client\":\"acme\",\"manager\":"
         "\"m@x.ph\",\"data\":{\"name\":\"not a profile update\"}}",
         "manager=m@x.ph;"},
        {"{\"type\":\"meeting.held\",\"client\":\"acme\"}", ""},
        /* consent events about the client's own address set its consent;
         * about another address (data.email) they do not */
        {"{\"type\":\"consent.unsubscribed\",\"client\":\"acme\"}",
         "consent=false;"},
        {"{\"type\":\"consent.subscribed\",\"client\":\"acme\"}",
         "consent=true;"},
        {"{\"type\":\"consent.unsubscribed\",\"client\":\"acme\","
         "\"data\":{\"email\":\"other@acme.ph\"}}",
         ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct suki_event *ev = NULL;
        struct suki_err err = {{0}};
        ck_assert_msg(parse_str(cases[i].doc, &ev, &err) == 0, "%zu: %s", i,
                      err.msg);
        struct collected c = {{0}, 0};
        suki_event_profile_fields(ev, collect, &c);
        ck_assert_msg(strcmp(c.text, cases[i].want) == 0,
                      "case %zu: got '%s', want '%s'", i, c.text,
                      cases[i].want);
        suki_event_free(ev);
    }
}
END_TEST

START_TEST(dump_round_trip)
{
    const char *doc = "{ \"type\" : \"deal.won\",\n \"client\": \"acme\", "
                      "\"data\": {\"amount\": 250000, \"deal\": \"D-1\"} }";
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    ck_assert_int_eq(parse_str(doc, &ev, &err), 0);
    char *s = suki_event_dump(ev);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(strchr(s, ' '));
    ck_assert_ptr_null(strchr(s, '\n'));
    /* the receive time is kept so a re-parse later gives the same event */
    ck_assert_ptr_nonnull(strstr(s, "\"at\":\"2026-11-27T10:00:00Z\""));
    struct suki_event *ev2 = NULL;
    ck_assert_int_eq(
        suki_event_parse(s, strlen(s), &lim, NOW_MS + 99999, &ev2, &err), 0);
    ck_assert_int_eq(ev2->at_ms, NOW_MS);
    ck_assert_str_eq(ev2->type, "deal.won");
    ck_assert_str_eq(suki_event_data_str(ev2, "amount"), "250000");
    ck_assert_str_eq(suki_event_data_str(ev2, "deal"), "D-1");
    /* the original document is not changed by dumping */
    ck_assert_ptr_null(json_object_get(ev->root, "at"));
    free(s);
    s = suki_event_dump(ev2);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "{\"type\":\"deal.won\",\"client\":\"acme\",\"data\":{"
                        "\"amount\":250000,\"deal\":\"D-1\"},\"at\":"
                        "\"2026-11-27T10:00:00Z\"}");
    free(s);
    suki_event_free(ev);
    suki_event_free(ev2);
}
END_TEST

/* suki_event_new: the member checks of the parser, a shared data object,
 * and a dump that parses back to the same event. */
START_TEST(from_parts)
{
    struct suki_err err = {{0}};
    struct suki_event *ev = NULL;
    json_t *data = json_pack("{s:s,s:i}", "deal", "D-1", "amount", 250000);
    struct suki_event_parts p = {.type = "deal.won",
                                 .client = "acme ph",
                                 .id = "e1",
                                 .manager = "maria@example.ph",
                                 .at_ms = NOW_MS,
                                 .data = data};
    ck_assert_int_eq(suki_event_new(&p, &ev, &err), 0);
    ck_assert_str_eq(ev->type, "deal.won");
    ck_assert_str_eq(ev->client, "acme ph");
    ck_assert_str_eq(ev->id, "e1");
    ck_assert_str_eq(ev->manager, "maria@example.ph");
    ck_assert_int_eq(ev->at_ms, NOW_MS);
    ck_assert_str_eq(suki_event_data_str(ev, "amount"), "250000");
    /* the event holds its own reference on data */
    json_decref(data);
    ck_assert_str_eq(suki_event_data_str(ev, "deal"), "D-1");
    char *s = suki_event_dump(ev);
    ck_assert_str_eq(s, "{\"type\":\"deal.won\",\"client\":\"acme ph\","
                        "\"id\":\"e1\",\"manager\":\"maria@example.ph\","
                        "\"at\":\"2026-11-27T10:00:00Z\",\"data\":{"
                        "\"deal\":\"D-1\",\"amount\":250000}}");
    struct suki_event *ev2 = NULL;
    ck_assert_int_eq(parse_str(s, &ev2, &err), 0);
    ck_assert_str_eq(ev2->client, "acme ph");
    ck_assert_int_eq(ev2->at_ms, NOW_MS);
    ck_assert_str_eq(suki_event_data_str(ev2, "deal"), "D-1");
    free(s);
    suki_event_free(ev2);
    suki_event_free(ev);

    /* no data, empty manager: an empty object, no manager */
    struct suki_event_parts q = {.type = "a.b", .client = "c", .manager = ""};
    ck_assert_int_eq(suki_event_new(&q, &ev, &err), 0);
    ck_assert_ptr_null(ev->manager);
    ck_assert_ptr_null(ev->id);
    ck_assert(json_is_object(ev->data));
    ck_assert_int_eq(json_object_size(ev->data), 0);
    suki_event_free(ev);

    /* refused like the parser refuses them */
    json_t *arr = json_array();
    char longs[300];
    memset(longs, 'x', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    struct {
        struct suki_event_parts p;
        const char *why;
    } bad[] = {
        {{.client = "c"}, "missing type"},
        {{.type = "Bad", .client = "c"}, "bad type"},
        {{.type = "a.b"}, "missing client"},
        {{.type = "a.b", .client = ""}, "client is empty"},
        {{.type = "a.b", .client = "c", .id = ""}, "id is empty"},
        {{.type = "a.b", .client = "c\n"}, "client contains control"},
        {{.type = "a.b", .client = "c", .manager = "m\x01"},
         "manager contains control"},
        {{.type = "a.b", .client = longs}, "client too long"},
        {{.type = "a.b", .client = "c\xff"}, "client is not valid UTF-8"},
        {{.type = "a.b", .client = "c", .data = arr}, "data is not an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ev = (struct suki_event *)1;
        ck_assert_int_eq(suki_event_new(&bad[i].p, &ev, &err), -EINVAL);
        ck_assert_ptr_null(ev);
        ck_assert_msg(strncmp(err.msg, bad[i].why, strlen(bad[i].why)) == 0,
                      "'%s' is not '%s'", err.msg, bad[i].why);
    }
    json_decref(arr);
}
END_TEST

static Suite *event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("invalid");
    tcase_add_test(tc, bad_inputs);
    tcase_add_test(tc, not_json_has_location);
    tcase_add_test(tc, oversize);
    tcase_add_test(tc, deep_nesting);
    suite_add_tcase(s, tc);
    tc = tcase_create("valid");
    tcase_add_test(tc, good_event);
    tcase_add_test(tc, good_event_minimal);
    tcase_add_test(tc, profile_fields);
    tcase_add_test(tc, dump_round_trip);
    tcase_add_test(tc, from_parts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(event_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
