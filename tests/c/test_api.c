/* Argument validation: NULL for every pointer parameter, invalid UTF-8, malformed and non-array
 * JSON, unknown enum values, wrong state; plus version, status names, last-error message and the
 * "userdata_free exactly once, before return, when registration fails" rule. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "tests.h"

static const char BAD_UTF8[] = "Ec\xff\xfeho";

/* A failed call must return `want` and leave a message naming the problem. */
#define CHECK_FAILS(expr, want)                                                               \
    do {                                                                                      \
        CHECK_RC(expr, want);                                                                 \
        if (*signalr_last_error_message() == '\0')                                            \
            check_fail(__FILE__, __LINE__, "%s: no last-error message", #expr);               \
    } while (0)

/* A registering call that fails: returns `want`, calls userdata_free(p) exactly once before it
 * returns and never the callback. The call uses the probe `p`. */
#define REJECTS_UD(want, ...)                                                                 \
    do {                                                                                      \
        probe *p = probe_new(NULL);                                                           \
        CHECK_FAILS(REG(__VA_ARGS__), want);                                                  \
        if (probe_frees(p) != 1)                                                              \
            check_fail(__FILE__, __LINE__, "%s: userdata freed %d times before return, want 1", \
                       #__VA_ARGS__, probe_frees(p));                                         \
        CHECK(probe_calls(p) == 0 && probe_completions(p) == 0);                              \
        PROBE_DONE(p);                                                                        \
    } while (0)

TEST(version_and_names) {
    CHECK_STR(signalr_version(), SIGNALR_VERSION);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", SIGNALR_VERSION_MAJOR, SIGNALR_VERSION_MINOR,
             SIGNALR_VERSION_PATCH);
    CHECK_CONTAINS(signalr_version(), v);
    CHECK_STR(signalr_result_name(SIGNALR_RESULT_OK), "SIGNALR_RESULT_OK");
    CHECK_STR(signalr_result_name(SIGNALR_RESULT_WOULD_DEADLOCK), "SIGNALR_RESULT_WOULD_DEADLOCK");
    CHECK_STR(signalr_result_name(SIGNALR_RESULT_INTERNAL), "SIGNALR_RESULT_INTERNAL");
    CHECK_STR(signalr_result_name(1000), "SIGNALR_RESULT_UNKNOWN");
    for (uint32_t code = 0; code <= SIGNALR_RESULT_INTERNAL; code++)
        CHECK(strncmp(signalr_result_name(code), "SIGNALR_RESULT_", 15) == 0 &&
              strcmp(signalr_result_name(code), "SIGNALR_RESULT_UNKNOWN") != 0);
    CHECK(SIGNALR_RESULT_WOULD_DEADLOCK == 15 && SIGNALR_RESULT_PANIC == 16);
    CHECK(SIGNALR_CONNECTION_STATE_DISCONNECTED == 0 && SIGNALR_CONNECTION_STATE_RECONNECTING == 4);
    CHECK(SIGNALR_TRANSPORT_WEBSOCKETS == 1 && SIGNALR_TRANSPORT_SERVER_SENT_EVENTS == 2 &&
          SIGNALR_TRANSPORT_LONG_POLLING == 4 && SIGNALR_TRANSPORT_NONE == 0);
    CHECK(SIGNALR_PROTOCOL_JSON == 0 && SIGNALR_PROTOCOL_MESSAGEPACK == 1);
    signalr_string_free(NULL);
}

static void *last_error_other_thread(void *arg) {
    /* The message is thread-local: this thread has seen no failure. */
    *(int *)arg = strcmp(signalr_last_error_message(), "") == 0;
    return NULL;
}

TEST(last_error_is_thread_local) {
    signalr_builder *b = NULL;
    CHECK_FAILS(signalr_builder_new(NULL, &b), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK(b == NULL); /* out-params untouched on failure */
    const char *msg = signalr_last_error_message();
    CHECK(msg != NULL && *msg != '\0');
    int other_empty = 0;
    run_on_thread(last_error_other_thread, &other_empty);
    CHECK(other_empty);
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_STR(signalr_last_error_message(), ""); /* a success clears it */
    signalr_builder_free(b);
}

TEST(builder_null_and_invalid_arguments) {
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    signalr_connection *c = NULL;

    CHECK_FAILS(signalr_builder_new(NULL, &b), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_new(url, NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_new("http://\xff\xfe/hub", &b), SIGNALR_RESULT_INVALID_UTF8);
    /* a URL that is no URL: rejected by _new or at the latest by _build */
    signalr_result rc = signalr_builder_new("no url at all", &b);
    if (rc == SIGNALR_RESULT_OK) {
        CHECK_FAILS(signalr_builder_build(b, &c), SIGNALR_RESULT_INVALID_ARGUMENT);
        CHECK(c == NULL);
    } else {
        CHECK_RC(rc, SIGNALR_RESULT_INVALID_ARGUMENT);
    }

    CHECK_FAILS(signalr_builder_set_transports(NULL, 0), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_skip_negotiation(NULL, true), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_header(NULL, "a", "b"), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_protocol(NULL, SIGNALR_PROTOCOL_JSON), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_http_timeout_ms(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_server_timeout_ms(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_keep_alive_interval_ms(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_handshake_timeout_ms(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_max_message_size(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_automatic_reconnect(NULL, NULL, 0), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_stateful_reconnect(NULL, true), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_set_stateful_reconnect_buffer_size(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_trusted_ca_pem(NULL, (const uint8_t *)"x", 1), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_trusted_ca_file(NULL, "/x.pem"), SIGNALR_RESULT_NULL_PARAMETER);
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER,
               signalr_builder_set_access_token_provider(NULL, probe_token_cb, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER,
               signalr_builder_set_reconnect_policy(NULL, probe_policy_cb, p, probe_free_cb));
    CHECK_FAILS(signalr_builder_build(NULL, &c), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_token_request_complete(NULL, "t", NULL), SIGNALR_RESULT_NULL_PARAMETER);
    signalr_builder_free(NULL);

    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_FAILS(signalr_builder_add_header(b, NULL, "v"), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_header(b, "n", NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_header(b, BAD_UTF8, "v"), SIGNALR_RESULT_INVALID_UTF8);
    CHECK_FAILS(signalr_builder_add_header(b, "n", BAD_UTF8), SIGNALR_RESULT_INVALID_UTF8);
    CHECK_FAILS(signalr_builder_set_transports(b, 8), SIGNALR_RESULT_INVALID_ARGUMENT);
    CHECK_FAILS(signalr_builder_set_transports(b, 0xffffffffu), SIGNALR_RESULT_INVALID_ARGUMENT);
    CHECK_FAILS(signalr_builder_set_protocol(b, 2), SIGNALR_RESULT_INVALID_ARGUMENT);
    CHECK_FAILS(signalr_builder_add_trusted_ca_pem(b, NULL, 10), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_trusted_ca_file(b, NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_builder_add_trusted_ca_file(b, "/tmp/\xff.pem"), SIGNALR_RESULT_INVALID_UTF8);
    /* NULL callbacks: rejected, or accepted as "no provider / default policy"; either way the
     * user data is released exactly once (checked when the probe is deleted below) */
    probe *nt = probe_new(NULL), *np = probe_new(NULL);
    signalr_result rt = REG(signalr_builder_set_access_token_provider(b, NULL, nt, probe_free_cb));
    signalr_result rp_ = REG(signalr_builder_set_reconnect_policy(b, NULL, np, probe_free_cb));
    CHECK(rt == SIGNALR_RESULT_OK || rt == SIGNALR_RESULT_NULL_PARAMETER);
    CHECK(rp_ == SIGNALR_RESULT_OK || rp_ == SIGNALR_RESULT_NULL_PARAMETER);
    /* the builder still works after all those rejections */
    CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_WEBSOCKETS | SIGNALR_TRANSPORT_LONG_POLLING));
    CHECK_OK(signalr_builder_build(b, &c));
    CHECK(c != NULL);
    signalr_connection_free(c);
    CHECK(probe_calls(nt) == 0 && probe_calls(np) == 0);
    PROBE_DONE(nt);
    PROBE_DONE(np);

    /* PEM text without a certificate: rejected when added or at the latest when built */
    static const char not_pem[] = "this is not a certificate";
    CHECK_OK(signalr_builder_new(url, &b));
    rc = signalr_builder_add_trusted_ca_pem(b, (const uint8_t *)not_pem, sizeof not_pem - 1);
    if (rc == SIGNALR_RESULT_OK) {
        c = NULL;
        CHECK_FAILS(signalr_builder_build(b, &c), SIGNALR_RESULT_INVALID_ARGUMENT);
        CHECK(c == NULL);
    } else {
        CHECK_FAILS(rc, SIGNALR_RESULT_INVALID_ARGUMENT);
        signalr_builder_free(b);
    }

    /* _build consumes the builder even when it fails (valgrind proves no leak, no double free) */
    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_FAILS(signalr_builder_build(b, NULL), SIGNALR_RESULT_NULL_PARAMETER);

    /* a missing CA file: rejected when added or at the latest when built */
    CHECK_OK(signalr_builder_new(url, &b));
    rc = signalr_builder_add_trusted_ca_file(b, "/nonexistent/signalr-ca.pem");
    if (rc == SIGNALR_RESULT_OK) {
        c = NULL;
        CHECK(signalr_builder_build(b, &c) != SIGNALR_RESULT_OK);
        CHECK(c == NULL);
        if (c) signalr_connection_free(c);
    } else {
        CHECK(*signalr_last_error_message() != '\0');
        signalr_builder_free(b);
    }

    /* a builder freed without building, with user data inside: released exactly once */
    CHECK_OK(signalr_builder_new(url, &b));
    probe *tp = probe_new(NULL), *rp = probe_new(NULL);
    CHECK_OK(signalr_builder_set_access_token_provider(b, probe_token_cb, tp, probe_free_cb));
    CHECK_OK(signalr_builder_set_reconnect_policy(b, probe_policy_cb, rp, probe_free_cb));
    signalr_builder_free(b);
    CHECK(probe_frees(tp) == 1 && probe_frees(rp) == 1);
    CHECK(probe_calls(tp) == 0 && probe_calls(rp) == 0);
    PROBE_DONE(tp);
    PROBE_DONE(rp);
}

TEST(connection_null_parameters) {
    signalr_connection *c = connect_started("/hub");
    signalr_stream *s = NULL;
    signalr_upload *u[1] = {NULL};
    uint64_t id = 0;
    char *out = NULL;
    const signalr_completion_callback done = probe_completion_cb;

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_start(NULL, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_start(c, NULL, p, probe_free_cb));
    CHECK_FAILS(signalr_connection_start_blocking(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stop(NULL, done, p, probe_free_cb));
    CHECK_FAILS(signalr_connection_stop_blocking(NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke(NULL, "Echo", "[1]", done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke(c, NULL, "[1]", done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke(c, "Echo", NULL, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke(c, "Echo", "[1]", NULL, p, probe_free_cb));
    CHECK_FAILS(signalr_connection_invoke_blocking(NULL, "Echo", "[1]", 1000, &out), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_invoke_blocking(c, NULL, "[1]", 1000, &out), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_invoke_blocking(c, "Echo", NULL, 1000, &out), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_invoke_blocking(c, "Echo", "[1]", 1000, NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK(out == NULL);

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send(NULL, "Record", "[1]", done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send(c, NULL, "[1]", done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send(c, "Record", NULL, done, p, probe_free_cb));
    CHECK_FAILS(signalr_connection_send_blocking(NULL, "Record", "[1]", 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_send_blocking(c, NULL, "[1]", 1000), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_send_blocking(c, "Record", NULL, 1000), SIGNALR_RESULT_NULL_PARAMETER);

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream(NULL, "Counter", "[1,0]", probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream(c, NULL, "[1,0]", probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream(c, "Counter", NULL, probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream(c, "Counter", "[1,0]", NULL, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream(c, "Counter", "[1,0]", probe_item_cb, NULL, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream(c, "Counter", "[1,0]", probe_item_cb, done, p, probe_free_cb, NULL));
    CHECK(s == NULL);
    CHECK_FAILS(signalr_stream_cancel(NULL), SIGNALR_RESULT_NULL_PARAMETER);
    signalr_stream_free(NULL);

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke_with_uploads(NULL, "Sum", "[]", 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke_with_uploads(c, NULL, "[]", 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke_with_uploads(c, "Sum", NULL, 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, NULL, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, NULL, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send_with_uploads(NULL, "Sum", "[]", 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send_with_uploads(c, NULL, "[]", 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send_with_uploads(c, "Sum", NULL, 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_send_with_uploads(c, "Sum", "[]", 1, NULL, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(NULL, "UploadEcho", "[]", 1, u, probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(c, NULL, "[]", 1, u, probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(c, "UploadEcho", NULL, 1, u, probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(c, "UploadEcho", "[]", 1, NULL, probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(c, "UploadEcho", "[]", 1, u, NULL, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(c, "UploadEcho", "[]", 1, u, probe_item_cb, NULL, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_stream_with_uploads(c, "UploadEcho", "[]", 1, u, probe_item_cb, done, p, probe_free_cb, NULL));
    CHECK(u[0] == NULL && s == NULL);
    CHECK_FAILS(signalr_upload_write(NULL, "1"), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_upload_complete(NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_upload_complete_with_error(NULL, "e"), SIGNALR_RESULT_NULL_PARAMETER);
    signalr_upload_free(NULL);

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on(NULL, "M", probe_handler_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on(c, NULL, probe_handler_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on(c, "M", NULL, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on(c, "M", probe_handler_cb, p, probe_free_cb, NULL));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_batch(NULL, "M", probe_batch_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_batch(c, NULL, probe_batch_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_batch(c, "M", NULL, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_batch(c, "M", probe_batch_cb, p, probe_free_cb, NULL));
    REJECTS_UD(SIGNALR_RESULT_INVALID_ARGUMENT, signalr_connection_on_batch(c, "", probe_batch_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_invocation(NULL, "M", probe_invocation_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_invocation(c, NULL, probe_invocation_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_invocation(c, "M", NULL, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_invocation(c, "M", probe_invocation_cb, p, probe_free_cb, NULL));
    CHECK_FAILS(signalr_connection_off(NULL, "M"), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_off(c, NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_remove_handler(NULL, 1), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_responder_complete(NULL, "1"), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_responder_complete_with_error(NULL, "e"), SIGNALR_RESULT_NULL_PARAMETER);
    signalr_responder_free(NULL);

    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_state_changed(NULL, probe_state_cb, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_state_changed(c, NULL, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_closed(NULL, probe_closed_cb, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_closed(c, NULL, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_reconnecting(NULL, probe_closed_cb, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_reconnecting(c, NULL, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_reconnected(NULL, probe_reconnected_cb, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_NULL_PARAMETER, signalr_connection_on_reconnected(c, NULL, p, probe_free_cb));

    CHECK(signalr_connection_get_state(NULL) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK(signalr_connection_get_transport(NULL) == SIGNALR_TRANSPORT_NONE);
    CHECK_FAILS(signalr_connection_get_connection_id(NULL, &out), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_connection_get_connection_id(c, NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK(out == NULL);
    signalr_connection_free(NULL);

    /* still fully usable after every rejection */
    char *r = invoke_ok(c, "Echo", "[\"still here\"]");
    CHECK_STR(r, "\"still here\"");
    free(r);
    signalr_connection_free(c);
}

TEST(invalid_utf8_and_json) {
    signalr_connection *c = connect_started("/hub");
    signalr_stream *s = NULL;
    signalr_upload *u[1] = {NULL};
    uint64_t id = 0;
    char *out = NULL;
    const signalr_completion_callback done = probe_completion_cb;
    const char *bad_json[] = {"", "[", "[1,]", "{\"a\":1}", "1", "\"x\"", "null", "[1] [2]", "[\xff]", NULL};

    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_invoke(c, BAD_UTF8, "[1]", done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_invoke(c, "Echo", "[\"\xc3\x28\"]", done, p, probe_free_cb));
    CHECK_FAILS(signalr_connection_invoke_blocking(c, BAD_UTF8, "[1]", 1000, &out), SIGNALR_RESULT_INVALID_UTF8);
    CHECK_FAILS(signalr_connection_send_blocking(c, BAD_UTF8, "[1]", 1000), SIGNALR_RESULT_INVALID_UTF8);
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_send(c, BAD_UTF8, "[1]", done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_stream(c, BAD_UTF8, "[1,0]", probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_invoke_with_uploads(c, BAD_UTF8, "[]", 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_send_with_uploads(c, BAD_UTF8, "[]", 1, u, done, p, probe_free_cb));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_stream_with_uploads(c, BAD_UTF8, "[]", 1, u, probe_item_cb, done, p, probe_free_cb, &s));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_on(c, BAD_UTF8, probe_handler_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_on_batch(c, BAD_UTF8, probe_batch_cb, p, probe_free_cb, &id));
    REJECTS_UD(SIGNALR_RESULT_INVALID_UTF8, signalr_connection_on_invocation(c, BAD_UTF8, probe_invocation_cb, p, probe_free_cb, &id));
    CHECK_FAILS(signalr_connection_off(c, BAD_UTF8), SIGNALR_RESULT_INVALID_UTF8);

    for (int i = 0; bad_json[i]; i++) {
        const char *j = bad_json[i];
        signalr_result want = strchr(j, '\xff') ? SIGNALR_RESULT_INVALID_UTF8 : SIGNALR_RESULT_INVALID_JSON;
        REJECTS_UD(want, signalr_connection_invoke(c, "Echo", j, done, p, probe_free_cb));
        CHECK_FAILS(signalr_connection_invoke_blocking(c, "Echo", j, 1000, &out), want);
        REJECTS_UD(want, signalr_connection_send(c, "Record", j, done, p, probe_free_cb));
        CHECK_FAILS(signalr_connection_send_blocking(c, "Record", j, 1000), want);
        REJECTS_UD(want, signalr_connection_stream(c, "Counter", j, probe_item_cb, done, p, probe_free_cb, &s));
        REJECTS_UD(want, signalr_connection_invoke_with_uploads(c, "Sum", j, 1, u, done, p, probe_free_cb));
        REJECTS_UD(want, signalr_connection_send_with_uploads(c, "Sum", j, 1, u, done, p, probe_free_cb));
        REJECTS_UD(want, signalr_connection_stream_with_uploads(c, "UploadEcho", j, 1, u, probe_item_cb, done, p, probe_free_cb, &s));
    }
    CHECK(out == NULL && s == NULL && u[0] == NULL);

    /* upload items are any JSON value; errors are text */
    probe *p = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, done, p, probe_free_cb)));
    CHECK_FAILS(signalr_upload_write(u[0], NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_upload_write(u[0], "[1,"), SIGNALR_RESULT_INVALID_JSON);
    CHECK_FAILS(signalr_upload_write(u[0], "\"\xff\""), SIGNALR_RESULT_INVALID_UTF8);
    CHECK_FAILS(signalr_upload_complete_with_error(u[0], NULL), SIGNALR_RESULT_NULL_PARAMETER);
    CHECK_FAILS(signalr_upload_complete_with_error(u[0], BAD_UTF8), SIGNALR_RESULT_INVALID_UTF8);
    CHECK_OK(signalr_upload_write(u[0], "40"));
    CHECK_OK(signalr_upload_write(u[0], "2"));
    CHECK_OK(signalr_upload_complete(u[0]));
    WAIT_DONE(p);
    CHECK_RC(p->result, SIGNALR_RESULT_OK);
    CHECK_STR(p->json, "42");
    signalr_upload_free(u[0]);

    /* the connection is unharmed */
    char *r = invoke_ok(c, "Add", "[1, 2]");
    CHECK_STR(r, "3");
    free(r);
    signalr_connection_free(c);
    PROBE_DONE(p);
}

/* Either rejected at once with `want` (user data released before return, no completion) or
 * accepted and completed exactly once with `want`. */
static void expect_status(signalr_result rc, probe *p, signalr_result want, const char *what) {
    if (rc == SIGNALR_RESULT_OK) {
        if (probe_wait_completions(p, 1, __FILE__, __LINE__) && p->result != want)
            check_fail(__FILE__, __LINE__, "%s completed with %s (%s), want %s", what,
                       signalr_result_name(p->result), p->error ? p->error : "", signalr_result_name(want));
    } else if (rc != want) {
        check_fail(__FILE__, __LINE__, "%s returned %s (%s), want %s", what, signalr_result_name(rc),
                   signalr_last_error_message(), signalr_result_name(want));
    } else if (probe_frees(p) != 1 || probe_completions(p) != 0) {
        check_fail(__FILE__, __LINE__, "%s rejected but user data not released/completion ran", what);
    }
}

TEST(wrong_state) {
    signalr_connection *c = connect_new("/hub");
    char *out = NULL;
    signalr_stream *s = NULL;
    signalr_upload *u[1] = {NULL};
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK_FAILS(signalr_connection_invoke_blocking(c, "Echo", "[1]", 5000, &out), SIGNALR_RESULT_INVALID_STATE);
    CHECK_FAILS(signalr_connection_send_blocking(c, "Echo", "[1]", 5000), SIGNALR_RESULT_INVALID_STATE);
    probe *p1 = probe_new(NULL), *p2 = probe_new(NULL), *p3 = probe_new(NULL), *p4 = probe_new(NULL);
    expect_status(REG(signalr_connection_invoke(c, "Echo", "[1]", probe_completion_cb, p1, probe_free_cb)),
                  p1, SIGNALR_RESULT_INVALID_STATE, "invoke before start");
    expect_status(REG(signalr_connection_send(c, "Echo", "[1]", probe_completion_cb, p2, probe_free_cb)),
                  p2, SIGNALR_RESULT_INVALID_STATE, "send before start");
    signalr_result rc = REG(signalr_connection_stream(c, "Counter", "[1,0]", probe_item_cb, probe_completion_cb, p3, probe_free_cb, &s));
    expect_status(rc, p3, SIGNALR_RESULT_INVALID_STATE, "stream before start");
    if (rc == SIGNALR_RESULT_OK) signalr_stream_free(s);
    rc = REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, p4, probe_free_cb));
    expect_status(rc, p4, SIGNALR_RESULT_INVALID_STATE, "invoke_with_uploads before start");
    if (rc == SIGNALR_RESULT_OK) signalr_upload_free(u[0]);

    /* stop when disconnected is a no-op */
    CHECK_OK(signalr_connection_stop_blocking(c, 5000));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    CHECK_FAILS(signalr_connection_start_blocking(c, 5000), SIGNALR_RESULT_INVALID_STATE);
    probe *p5 = probe_new(NULL);
    expect_status(REG(signalr_connection_start(c, probe_completion_cb, p5, probe_free_cb)), p5,
                  SIGNALR_RESULT_INVALID_STATE, "start while connected");
    CHECK_OK(signalr_connection_stop_blocking(c, WAIT_GUARD_MS));
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK_FAILS(signalr_connection_invoke_blocking(c, "Echo", "[1]", 5000, &out), SIGNALR_RESULT_INVALID_STATE);
    CHECK(out == NULL);
    signalr_connection_free(c);
    PROBE_DONE(p1);
    PROBE_DONE(p2);
    PROBE_DONE(p3);
    PROBE_DONE(p4);
    PROBE_DONE(p5);
}
