/* Builder options, each observed at the hub (GetRequestInfo) or through its effect: headers,
 * transports, skip negotiation, protocol, access-token provider, timeouts, keep-alive, maximum
 * message size, trusted CAs, stateful reconnect. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "tests.h"

static signalr_builder *builder_for(const hub *h, const char *path) {
    char url[256];
    hub_url(h, path, url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    return b;
}

static signalr_connection *build(signalr_builder *b) {
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    if (!c) {
        fprintf(stderr, "cannot build\n");
        exit(2);
    }
    return c;
}

TEST(option_headers_transports_protocol) {
    static const struct {
        uint32_t mask;
        uint32_t protocol;
        uint32_t want_transport;
        const char *want_info;
    } cases[] = {
        {0, SIGNALR_PROTOCOL_JSON, SIGNALR_TRANSPORT_WEBSOCKETS, "\"transport\":\"WebSockets\""},
        {SIGNALR_TRANSPORT_SERVER_SENT_EVENTS, SIGNALR_PROTOCOL_JSON, SIGNALR_TRANSPORT_SERVER_SENT_EVENTS, "\"transport\":\"ServerSentEvents\""},
        {SIGNALR_TRANSPORT_LONG_POLLING, SIGNALR_PROTOCOL_JSON, SIGNALR_TRANSPORT_LONG_POLLING, "\"transport\":\"LongPolling\""},
        {SIGNALR_TRANSPORT_WEBSOCKETS, SIGNALR_PROTOCOL_MESSAGEPACK, SIGNALR_TRANSPORT_WEBSOCKETS, "\"protocol\":\"messagepack\""},
        {SIGNALR_TRANSPORT_LONG_POLLING, SIGNALR_PROTOCOL_MESSAGEPACK, SIGNALR_TRANSPORT_LONG_POLLING, "\"protocol\":\"messagepack\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        signalr_builder *b = builder_for(&the_hub, "/hub");
        CHECK_OK(signalr_builder_add_header(b, "X-Ctest", "value-1"));
        CHECK_OK(signalr_builder_set_transports(b, cases[i].mask));
        CHECK_OK(signalr_builder_set_protocol(b, cases[i].protocol));
        CHECK_OK(signalr_builder_set_http_timeout_ms(b, 30000));
        CHECK_OK(signalr_builder_set_handshake_timeout_ms(b, 30000));
        signalr_connection *c = build(b);
        CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
        CHECK(signalr_connection_get_transport(c) == cases[i].want_transport);
        char *info = invoke_ok(c, "GetRequestInfo", "[]");
        CHECK_CONTAINS(info, cases[i].want_info);
        CHECK_CONTAINS(info, "\"x-ctest\":\"value-1\"");
        free(info);
        /* JSON in and out whatever the wire protocol */
        char *r = invoke_ok(c, "Echo", "[{\"n\":-12,\"f\":1.5,\"s\":\"\xe2\x82\xac\",\"l\":[true,false,null],\"o\":{}}]");
        CHECK_STR(r, "{\"n\":-12,\"f\":1.5,\"s\":\"\xe2\x82\xac\",\"l\":[true,false,null],\"o\":{}}");
        free(r);
        signalr_stream *s = NULL;
        probe *p = probe_new(NULL);
        CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[3, 0]", probe_item_cb, probe_completion_cb, p, probe_free_cb, &s)));
        WAIT_DONE(p);
        CHECK_STR(p->log, "0\n1\n2");
        signalr_stream_free(s);
        signalr_connection_free(c);
        PROBE_DONE(p);
    }
}

TEST(option_skip_negotiation) {
    signalr_builder *b = builder_for(&the_hub, "/hub");
    CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_WEBSOCKETS));
    CHECK_OK(signalr_builder_set_skip_negotiation(b, true));
    signalr_connection *c = build(b);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *id = (char *)"x";
    CHECK_OK(signalr_connection_get_connection_id(c, &id));
    CHECK(id == NULL); /* no negotiation, no id */
    char *info = invoke_ok(c, "GetRequestInfo", "[]");
    CHECK_CONTAINS(info, "\"negotiate\":null");
    free(info);
    signalr_connection_free(c);

    /* skipping negotiation needs WebSockets only */
    b = builder_for(&the_hub, "/hub");
    CHECK_OK(signalr_builder_set_skip_negotiation(b, true));
    CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_LONG_POLLING));
    c = NULL;
    signalr_result rc = signalr_builder_build(b, &c);
    if (rc == SIGNALR_RESULT_OK) {
        CHECK(signalr_connection_start_blocking(c, WAIT_GUARD_MS) != SIGNALR_RESULT_OK);
        signalr_connection_free(c);
    } else {
        CHECK_RC(rc, SIGNALR_RESULT_INVALID_ARGUMENT);
    }
}

/* ---- access tokens ---- */

typedef enum { TOKEN_NOW, TOKEN_LATER, TOKEN_ERROR, TOKEN_NONE } token_mode;
typedef struct token_source {
    probe *p;
    token_mode mode;
    pthread_t threads[8];
    int nthreads;
} token_source;

static void *complete_later(void *arg) {
    CHECK_OK(signalr_token_request_complete(arg, "bob", NULL));
    return NULL;
}

static void token_cb(void *ud, signalr_token_request *req) {
    token_source *t = ud;
    probe_enter(t->p);
    switch (t->mode) {
    case TOKEN_NOW:
        CHECK_OK(signalr_token_request_complete(req, "alice", NULL));
        break;
    case TOKEN_LATER:
        if (t->nthreads < 8 && pthread_create(&t->threads[t->nthreads], NULL, complete_later, req) == 0) t->nthreads++;
        break;
    case TOKEN_ERROR:
        CHECK_OK(signalr_token_request_complete(req, NULL, "vault is locked"));
        break;
    case TOKEN_NONE:
        CHECK_OK(signalr_token_request_complete(req, "", NULL));
        break;
    }
    pthread_mutex_lock(&t->p->mu);
    t->p->calls++;
    pthread_mutex_unlock(&t->p->mu);
    probe_leave(t->p);
}
static void token_free(void *ud) { probe_free_cb(((token_source *)ud)->p); }

static signalr_result connect_with_token(token_mode mode, const char *path, const char *want_user) {
    signalr_builder *b = builder_for(&the_hub, path);
    token_source t = {probe_new(NULL), mode, {0}, 0};
    CHECK_OK(signalr_builder_set_access_token_provider(b, token_cb, &t, token_free));
    signalr_connection *c = build(b);
    signalr_result rc = signalr_connection_start_blocking(c, WAIT_GUARD_MS);
    if (rc == SIGNALR_RESULT_OK) {
        CHECK(probe_calls(t.p) >= 1);
        char *user = invoke_ok(c, "GetUser", "[]");
        CHECK_STR(user, want_user);
        free(user);
    } else if (mode == TOKEN_ERROR) {
        CHECK_CONTAINS(signalr_last_error_message(), "vault is locked");
    }
    signalr_connection_free(c);
    for (int i = 0; i < t.nthreads; i++) pthread_join(t.threads[i], NULL);
    PROBE_DONE(t.p);
    return rc;
}

TEST(option_access_token_provider) {
    CHECK_OK(connect_with_token(TOKEN_NOW, "/auth-hub", "\"alice\""));
    CHECK_OK(connect_with_token(TOKEN_LATER, "/auth-hub", "\"bob\""));
    CHECK_RC(connect_with_token(TOKEN_NONE, "/auth-hub", ""), SIGNALR_RESULT_UNAUTHORIZED);
    signalr_result rc = connect_with_token(TOKEN_ERROR, "/auth-hub", "");
    CHECK(rc != SIGNALR_RESULT_OK);
    /* redirect-hub: negotiate answers a URL and its own token, which replaces ours */
    CHECK_OK(connect_with_token(TOKEN_NOW, "/redirect-hub", "\"redirected-user\""));
    /* without a provider the auth hub refuses */
    signalr_connection *c = build(builder_for(&the_hub, "/auth-hub"));
    CHECK_RC(signalr_connection_start_blocking(c, WAIT_GUARD_MS), SIGNALR_RESULT_UNAUTHORIZED);
    signalr_connection_free(c);
}

/* ---- timeouts and keep-alive against a hub with short timers ---- */

TEST(option_timeouts_and_keep_alive) {
    /* A hub that closes clients silent for 1 s and pings every 15 s (the default). */
    static const char *const quiet_args[] = {"--client-timeout-ms", "1000", NULL};
    hub quiet;
    hub_start(&quiet, false, quiet_args);
    char *out = NULL;

    /* keep-alive 200 ms keeps the connection alive through a 2.5 s server-side wait */
    signalr_builder *b = builder_for(&quiet, "/hub");
    CHECK_OK(signalr_builder_set_keep_alive_interval_ms(b, 200));
    signalr_connection *c = build(b);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    CHECK_OK(signalr_connection_invoke_blocking(c, "Delay", "[2500]", WAIT_GUARD_MS, &out));
    CHECK_STR(out, "2500");
    signalr_string_free(out);
    out = NULL;
    signalr_connection_free(c);

    /* the default keep-alive (15 s) does not: the hub closes the silent client */
    c = build(builder_for(&quiet, "/hub"));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    signalr_result rc = signalr_connection_invoke_blocking(c, "Delay", "[2500]", WAIT_GUARD_MS, &out);
    CHECK(rc == SIGNALR_RESULT_CONNECTION_CLOSED || rc == SIGNALR_RESULT_CANCELED);
    CHECK(out == NULL);
    signalr_connection_free(c);
    hub_stop(&quiet);

    /* server timeout 1 s against a hub that pings every 15 s: the client gives up by itself */
    b = builder_for(&the_hub, "/hub");
    CHECK_OK(signalr_builder_set_server_timeout_ms(b, 1000));
    CHECK_OK(signalr_builder_set_keep_alive_interval_ms(b, 500));
    c = build(b);
    probe *closed = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    WAIT_CALLS(closed, 1);
    CHECK(closed->result != SIGNALR_RESULT_OK);
    CHECK(closed->error != NULL && *closed->error != '\0');
    signalr_connection_free(c);
    PROBE_DONE(closed);

    /* ... and stays connected when the hub pings every 200 ms */
    static const char *const chatty_args[] = {"--keep-alive-ms", "200", NULL};
    hub chatty;
    hub_start(&chatty, false, chatty_args);
    b = builder_for(&chatty, "/hub");
    CHECK_OK(signalr_builder_set_server_timeout_ms(b, 1000));
    c = build(b);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    CHECK_OK(signalr_connection_invoke_blocking(c, "Delay", "[2500]", WAIT_GUARD_MS, &out));
    CHECK_STR(out, "2500");
    signalr_string_free(out);
    signalr_connection_free(c);
    hub_stop(&chatty);
}

TEST(option_max_message_size) {
    signalr_builder *b = builder_for(&the_hub, "/hub");
    CHECK_OK(signalr_builder_set_max_message_size(b, 1000));
    signalr_connection *c = build(b);
    probe *closed = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *r = invoke_ok(c, "Echo", "[\"small\"]");
    CHECK_STR(r, "\"small\"");
    free(r);
    /* a 5000-byte message from the hub exceeds the limit: the connection closes with an error */
    char *out = NULL;
    CHECK(signalr_connection_invoke_blocking(c, "Flood", "[1, 5000]", WAIT_GUARD_MS, &out) != SIGNALR_RESULT_OK);
    CHECK(out == NULL);
    WAIT_CALLS(closed, 1);
    CHECK(closed->result != SIGNALR_RESULT_OK);
    signalr_connection_free(c);
    PROBE_DONE(closed);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(65536);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

TEST(option_trusted_ca) {
    hub tls;
    hub_start(&tls, true, NULL);
    CHECK(strncmp(tls.base, "https://", 8) == 0);

    /* not trusted: the TLS handshake fails, start reports it */
    signalr_connection *c = build(builder_for(&tls, "/hub"));
    signalr_result rc = signalr_connection_start_blocking(c, WAIT_GUARD_MS);
    CHECK(rc == SIGNALR_RESULT_NEGOTIATION_FAILED || rc == SIGNALR_RESULT_TRANSPORT_FAILED);
    signalr_connection_free(c);

    /* trusted from the file */
    signalr_builder *b = builder_for(&tls, "/hub");
    CHECK_OK(signalr_builder_add_trusted_ca_file(b, tls.cert_path));
    c = build(b);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *r = invoke_ok(c, "Echo", "[\"secure\"]");
    CHECK_STR(r, "\"secure\"");
    free(r);
    signalr_connection_free(c);

    /* trusted from PEM bytes, over Server-Sent Events this time */
    size_t len = 0;
    char *pem = read_file(tls.cert_path, &len);
    CHECK(pem != NULL && len > 0);
    b = builder_for(&tls, "/hub");
    CHECK_OK(signalr_builder_add_trusted_ca_pem(b, (const uint8_t *)pem, len));
    CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_SERVER_SENT_EVENTS));
    free(pem);
    c = build(b);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    CHECK(signalr_connection_get_transport(c) == SIGNALR_TRANSPORT_SERVER_SENT_EVENTS);
    r = invoke_ok(c, "Add", "[1, 1]");
    CHECK_STR(r, "2");
    free(r);
    signalr_connection_free(c);
    hub_stop(&tls);
}

TEST(option_stateful_reconnect) {
    signalr_builder *b = builder_for(&the_hub, "/hub");
    CHECK_OK(signalr_builder_set_stateful_reconnect(b, true));
    CHECK_OK(signalr_builder_set_stateful_reconnect_buffer_size(b, 200000));
    signalr_connection *c = NULL;
    signalr_result rc = signalr_builder_build(b, &c);
    if (rc != SIGNALR_RESULT_OK) {
        /* the core may not support it yet: then the message must say so */
        CHECK_RC(rc, SIGNALR_RESULT_INVALID_ARGUMENT);
        CHECK_CONTAINS(signalr_last_error_message(), "not supported");
        return;
    }
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *info = invoke_ok(c, "GetRequestInfo", "[]");
    CHECK_CONTAINS(info, "\"handshakeVersion\":2");
    CHECK_CONTAINS(info, "\"useStatefulReconnect\":\"true\"");
    free(info);
    /* a dropped transport is bridged: same connection id, messages not lost */
    char *id1 = NULL, *id2 = NULL, *out = NULL;
    CHECK_OK(signalr_connection_get_connection_id(c, &id1));
    CHECK_OK(signalr_connection_send_blocking(c, "Record", "[1]", WAIT_GUARD_MS));
    signalr_connection_invoke_blocking(c, "DropTransport", "[]", WAIT_GUARD_MS, &out);
    signalr_string_free(out);
    CHECK_OK(signalr_connection_send_blocking(c, "Record", "[2]", WAIT_GUARD_MS));
    char *rec = invoke_ok(c, "GetRecorded", "[]");
    CHECK_STR(rec, "[1,2]");
    free(rec);
    CHECK_OK(signalr_connection_get_connection_id(c, &id2));
    CHECK(id1 && id2 && strcmp(id1, id2) == 0);
    signalr_string_free(id1);
    signalr_string_free(id2);
    signalr_connection_free(c);
}
