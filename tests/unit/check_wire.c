/* check_wire.c - the delivery agent's frames (daemon/deliver/wire.h): every
 * frame type goes through its one encoder and comes back from its one
 * decoder unchanged, and a frame one byte longer or shorter than its
 * fields (a layout the two ends disagree on) is refused, never read as
 * half a message. */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "store/keys.h"

#include "conf.h"
#include "lane.h"
#include "util.h"
#include "wire.h"

/* Split b (one whole frame) into a reader; checks the type. */
static struct deliver_wire_rd split(const struct suki_buf *b, char want)
{
    struct deliver_wire_rd r;
    char type = 0;
    size_t whole = 0;
    ck_assert_int_eq(deliver_wire_split(b->p, b->len, &type, &r, &whole), 1);
    ck_assert_int_eq(type, want);
    ck_assert_uint_eq(whole, b->len);
    return r;
}

/* b with its fields one byte longer (d = 1, a zero byte appended) or
 * shorter (d = -1), the length fixed up to match: owned. */
static struct suki_buf resized(const struct suki_buf *b, int d)
{
    struct suki_buf c = {0};
    suki_buf_add(&c, b->p, b->len);
    if (d > 0)
        suki_buf_add(&c, "", 1);
    else
        c.len--;
    uint32_t n = (uint32_t)(c.len - sizeof(n));
    memcpy(c.p, &n, sizeof(n));
    return c;
}

START_TEST(split_partial_and_garbage)
{
    struct suki_buf b = {0};
    struct deliver_wire_rd r;
    char type;
    size_t whole;
    deliver_wire_put_id(&b, DELIVER_WIRE_LANE, 7);
    for (size_t n = 0; n < b.len; n++)
        ck_assert_int_eq(deliver_wire_split(b.p, n, &type, &r, &whole), 0);
    uint32_t zero = 0;
    memcpy(b.p, &zero, sizeof(zero));
    ck_assert_int_eq(deliver_wire_split(b.p, b.len, &type, &r, &whole), -1);
    free(b.p);
}
END_TEST

START_TEST(ids_and_stop)
{
    static const char types[] = {DELIVER_WIRE_LANE, DELIVER_WIRE_UNCONF,
                                 DELIVER_WIRE_EXITED};
    struct suki_buf b = {0};
    for (size_t i = 0; i < sizeof(types); i++) {
        uint64_t id = 0;
        deliver_wire_put_id(&b, types[i], UINT64_C(0x1122334455667788) + i);
        struct deliver_wire_rd r = split(&b, types[i]);
        ck_assert(deliver_wire_get_id(&r, &id));
        ck_assert_uint_eq(id, UINT64_C(0x1122334455667788) + i);
        for (int d = 1; d >= -1; d -= 2) {
            struct suki_buf c = resized(&b, d);
            r = split(&c, types[i]);
            ck_assert(!deliver_wire_get_id(&r, &id));
            ck_assert(r.bad);
            free(c.p);
        }
    }
    uint64_t lane = 0;
    bool abort = false;
    deliver_wire_put_stop(&b, 42, true);
    struct deliver_wire_rd r = split(&b, DELIVER_WIRE_STOP);
    ck_assert(deliver_wire_get_stop(&r, &lane, &abort));
    ck_assert_uint_eq(lane, 42);
    ck_assert(abort);
    struct suki_buf c = resized(&b, 1);
    r = split(&c, DELIVER_WIRE_STOP);
    ck_assert(!deliver_wire_get_stop(&r, &lane, &abort));
    free(c.p);
    /* a bool is 0 or 1, nothing else */
    deliver_wire_begin(&b, DELIVER_WIRE_STOP);
    deliver_wire_put_u64(&b, 1);
    deliver_wire_put_u64(&b, 2);
    deliver_wire_close(&b);
    r = split(&b, DELIVER_WIRE_STOP);
    ck_assert(!deliver_wire_get_stop(&r, &lane, &abort));
    free(b.p);
}
END_TEST

START_TEST(redis_settings)
{
    struct suki_conf c = {0};
    c.redis_url = (char *)"redis://h:1/2";
    c.redis_host = NULL;
    c.redis_port = 6390;
    c.redis_unix = (char *)"/run/r.sock";
    c.redis_db = 3;
    c.redis_password = (char *)"pw";
    c.redis_connect_timeout_ms = 1500;
    c.redis_command_timeout_ms = 2500;
    char *sents[] = {(char *)"10.0.0.1:26379", (char *)"[::1]:26380"};
    c.redis_sentinels = sents;
    c.n_redis_sentinels = 2;
    c.redis_master = (char *)"suki";
    c.redis_username = (char *)"u";
    c.redis_sentinel_password = (char *)"spw";
    c.redis_min_replicas = 2;
    c.redis_wait_timeout_ms = 750;
    struct suki_buf b = {0};
    int level = 0;
    deliver_wire_put_redis(&b, &c, 7);
    struct deliver_wire_rd r = split(&b, DELIVER_WIRE_REDIS);
    struct suki_conf *got = deliver_wire_get_redis(&r, &level);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got->redis_url, "redis://h:1/2");
    ck_assert_ptr_null(got->redis_host);
    ck_assert_int_eq(got->redis_port, 6390);
    ck_assert_str_eq(got->redis_unix, "/run/r.sock");
    ck_assert_int_eq(got->redis_db, 3);
    ck_assert_str_eq(got->redis_password, "pw");
    ck_assert_int_eq(got->redis_connect_timeout_ms, 1500);
    ck_assert_int_eq(got->redis_command_timeout_ms, 2500);
    ck_assert_int_eq(level, 7);
    ck_assert_int_eq((int)got->n_redis_sentinels, 2);
    ck_assert_str_eq(got->redis_sentinels[0], "10.0.0.1:26379");
    ck_assert_str_eq(got->redis_sentinels[1], "[::1]:26380");
    ck_assert_str_eq(got->redis_master, "suki");
    ck_assert_str_eq(got->redis_username, "u");
    ck_assert_ptr_null(got->redis_sentinel_username);
    ck_assert_str_eq(got->redis_sentinel_password, "spw");
    ck_assert_int_eq(got->redis_min_replicas, 2);
    ck_assert_int_eq(got->redis_wait_timeout_ms, 750);
    suki_conf_unref(got);
    for (int d = 1; d >= -1; d -= 2) {
        struct suki_buf x = resized(&b, d);
        r = split(&x, DELIVER_WIRE_REDIS);
        ck_assert_ptr_null(deliver_wire_get_redis(&r, &level));
        free(x.p);
    }
    free(b.p);
}
END_TEST

START_TEST(transport_settings)
{
    struct deliver_tconf c = {0};
    c.name = (char *)"hook";
    c.kind = SUKI_TRANSPORT_HTTP;
    c.url = (char *)"https://example.invalid/h";
    c.username = (char *)"u";
    c.tls_verify = true;
    c.max_connections = 9;
    c.timeout_ms = 12345;
    c.headers = curl_slist_append(NULL, "Content-Type: application/json");
    c.headers = curl_slist_append(c.headers, "X-A: b");
    struct suki_buf b = {0};
    uint64_t id = 0;
    deliver_wire_put_conf(&b, 5, &c);
    struct deliver_wire_rd r = split(&b, DELIVER_WIRE_CONF);
    struct deliver_tconf *got = deliver_wire_get_conf(&r, &id);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(id, 5);
    ck_assert_int_eq(got->refs, 1);
    ck_assert_str_eq(got->name, "hook");
    ck_assert_int_eq(got->kind, SUKI_TRANSPORT_HTTP);
    ck_assert_str_eq(got->url, "https://example.invalid/h");
    ck_assert_ptr_null(got->spool_dir);
    ck_assert_str_eq(got->username, "u");
    ck_assert_ptr_null(got->password);
    ck_assert(got->tls_verify);
    ck_assert_int_eq(got->max_connections, 9);
    ck_assert_int_eq(got->timeout_ms, 12345);
    ck_assert_str_eq(got->headers->data, "Content-Type: application/json");
    ck_assert_str_eq(got->headers->next->data, "X-A: b");
    ck_assert_ptr_null(got->headers->next->next);
    ck_assert_ptr_null(got->be);
    deliver_tconf_unref(got);
    for (int d = 1; d >= -1; d -= 2) {
        struct suki_buf x = resized(&b, d);
        r = split(&x, DELIVER_WIRE_CONF);
        ck_assert_ptr_null(deliver_wire_get_conf(&r, &id));
        free(x.p);
    }
    curl_slist_free_all(c.headers);
    free(b.p);
}
END_TEST

START_TEST(message_and_outcome)
{
    char *rcpt[2] = {(char *)"a@example.org", (char *)"b@example.org"};
    static const char body[] = "Subject: x\r\n\r\nwith a \0 byte\r\n";
    struct deliver_xfer x = {0};
    x.token = 99;
    x.message_id = (char *)"<m@x>";
    x.from = (char *)"";
    x.rcpt = rcpt;
    x.n_rcpt = 2;
    x.body = (char *)body;
    x.body_len = sizeof(body) - 1;
    x.sent_marker = (char *)"P:sent:m@x";
    x.sent_marker_ttl_s = SUKI_KEY_SENT_TTL_S;
    struct suki_buf b = {0};
    uint64_t lane = 0, conf = 0;
    deliver_wire_put_post(&b, 3, 4, &x);
    struct deliver_wire_rd r = split(&b, DELIVER_WIRE_POST);
    struct deliver_xfer *got = deliver_wire_get_post(&r, &lane, &conf);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(lane, 3);
    ck_assert_uint_eq(conf, 4);
    ck_assert_uint_eq(got->token, 99);
    ck_assert_str_eq(got->message_id, "<m@x>");
    ck_assert_str_eq(got->from, "");
    ck_assert_uint_eq(got->n_rcpt, 2);
    ck_assert_str_eq(got->rcpt[1], "b@example.org");
    ck_assert_str_eq(got->rcpt_list->next->data, "b@example.org");
    ck_assert_uint_eq(got->body_len, sizeof(body) - 1);
    ck_assert_mem_eq(got->body, body, sizeof(body) - 1);
    ck_assert_str_eq(got->sent_marker, "P:sent:m@x");
    ck_assert_int_eq(got->sent_marker_ttl_s, 30 * 86400);
    ck_assert_int_eq(got->stage, SUKI_SMTP_CONNECT);
    ck_assert_ptr_nonnull(got->rcpt_code);

    /* the agent's answer for it */
    got->res_status = SUKI_DISPATCH_SENT;
    got->res_code = 250;
    got->res_reply = suki_strdup("250 ok");
    got->rcpt_sent = 2;
    got->rcpt_code[0] = 250;
    got->rcpt_code[1] = 550;
    got->rcpt_reply[1] = suki_strdup("550 no such user");
    struct suki_buf o = {0};
    deliver_wire_put_result(&o, lane, got);
    r = split(&o, DELIVER_WIRE_RESULT);
    struct deliver_wire_result res;
    ck_assert(deliver_wire_get_result(&r, &res));
    ck_assert_uint_eq(res.lane_id, 3);
    ck_assert_uint_eq(res.token, 99);
    ck_assert_int_eq(res.st, SUKI_DISPATCH_SENT);
    ck_assert_int_eq(res.code, 250);
    ck_assert_str_eq(res.reply, "250 ok");
    ck_assert_uint_eq(res.rcpt_sent, 2);
    ck_assert_uint_eq(res.n, 2);
    ck_assert_int_eq(res.codes[1], 550);
    ck_assert_ptr_null(res.replies[0]);
    ck_assert_str_eq(res.replies[1], "550 no such user");
    deliver_wire_result_clear(&res);
    deliver_xfer_clear(got);
    free(got);

    for (int d = 1; d >= -1; d -= 2) {
        struct suki_buf c = resized(&b, d);
        r = split(&c, DELIVER_WIRE_POST);
        ck_assert_ptr_null(deliver_wire_get_post(&r, &lane, &conf));
        free(c.p);
        c = resized(&o, d);
        r = split(&c, DELIVER_WIRE_RESULT);
        ck_assert(!deliver_wire_get_result(&r, &res));
        deliver_wire_result_clear(&res);
        free(c.p);
    }
    free(b.p);
    free(o.p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, split_partial_and_garbage);
    tcase_add_test(tc, ids_and_stop);
    tcase_add_test(tc, redis_settings);
    tcase_add_test(tc, transport_settings);
    tcase_add_test(tc, message_and_outcome);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
