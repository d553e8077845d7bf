/* The connection against the hub: start/stop (async and blocking), state, connection id,
 * transport, invoke, send, streams with cancel, upload streams, handlers, client results,
 * lifecycle callbacks, logging. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "harness.h"
#include "tests.h"

TEST(start_stop_async_with_state_callbacks) {
    conn_watch w = {0};
    signalr_connection *c = connect_new("/hub");
    probe *states = probe_new(&w), *closed = probe_new(&w), *start = probe_new(&w), *stop = probe_new(&w);
    CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, states, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    CHECK(signalr_connection_get_transport(c) == SIGNALR_TRANSPORT_NONE);
    char *id = (char *)"x";
    CHECK_OK(signalr_connection_get_connection_id(c, &id));
    CHECK(id == NULL); /* none before start */

    CHECK_OK(REG(signalr_connection_start(c, probe_completion_cb, start, probe_free_cb)));
    WAIT_DONE(start);
    CHECK_RC(start->result, SIGNALR_RESULT_OK);
    CHECK(start->json == NULL && start->error == NULL);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_CONNECTED);
    CHECK(signalr_connection_get_transport(c) == SIGNALR_TRANSPORT_WEBSOCKETS);
    CHECK_OK(signalr_connection_get_connection_id(c, &id));
    char *server_id = invoke_ok(c, "GetConnectionId", "[]");
    char quoted[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", id ? id : "");
    CHECK(id != NULL && *id != '\0');
    CHECK_STR(server_id, quoted);
    free(server_id);
    signalr_string_free(id);

    CHECK_OK(REG(signalr_connection_stop(c, probe_completion_cb, stop, probe_free_cb)));
    WAIT_DONE(stop);
    CHECK_RC(stop->result, SIGNALR_RESULT_OK);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK(signalr_connection_get_transport(c) == SIGNALR_TRANSPORT_NONE);
    WAIT_CALLS(closed, 1);
    CHECK_STR(closed->log, "SIGNALR_RESULT_OK (null)"); /* clean stop: OK, NULL, 0 */
    WAIT_CALLS(states, 4);
    CHECK_STR(states->log, "0>1\n1>2\n2>3\n3>0");

    /* a stop without completion callback, and a second start on the same connection */
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    CHECK_OK(signalr_connection_stop(c, NULL, NULL, NULL));
    WAIT_CALLS(closed, 2);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    CHECK(probe_completions(start) == 1 && probe_completions(stop) == 1);
    PROBE_DONE(states);
    PROBE_DONE(closed);
    PROBE_DONE(start);
    PROBE_DONE(stop);
}

TEST(lifecycle_create_start_stop_free_repeated) {
    for (int i = 0; i < 5; i++) {
        signalr_connection *c = connect_started("/hub");
        char *r = invoke_ok(c, "Add", "[40, 2]");
        CHECK_STR(r, "42");
        free(r);
        CHECK_OK(signalr_connection_stop_blocking(c, WAIT_GUARD_MS));
        signalr_connection_free(c);
    }
    /* free while connected, without stop */
    for (int i = 0; i < 3; i++) signalr_connection_free(connect_started("/hub"));
    /* free a never-started connection */
    signalr_connection_free(connect_new("/hub"));
}

TEST(invoke_async_and_blocking) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *echo = probe_new(&w), *add = probe_new(&w), *fail = probe_new(&w), *nope = probe_new(&w),
          *vd = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "Echo", "[{\"a\":[1,\"\xc3\xa9\",null]}]", probe_completion_cb, echo, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_invoke(c, "add", "[2, 3]", probe_completion_cb, add, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_invoke(c, "Fail", "[\"boom\"]", probe_completion_cb, fail, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_invoke(c, "Nope", "[]", probe_completion_cb, nope, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_invoke(c, "Record", "[1]", probe_completion_cb, vd, probe_free_cb)));
    WAIT_DONE(echo);
    WAIT_DONE(add);
    WAIT_DONE(fail);
    WAIT_DONE(nope);
    WAIT_DONE(vd);
    CHECK_RC(echo->result, SIGNALR_RESULT_OK);
    CHECK_STR(echo->json, "{\"a\":[1,\"\xc3\xa9\",null]}");
    CHECK_STR(add->json, "5");
    CHECK_RC(fail->result, SIGNALR_RESULT_HUB_ERROR);
    CHECK_STR(fail->error, "An unexpected error occurred invoking 'Fail' on the server. HubException: boom");
    CHECK(fail->json == NULL);
    CHECK_RC(nope->result, SIGNALR_RESULT_HUB_ERROR);
    CHECK_STR(nope->error, "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.");
    CHECK_RC(vd->result, SIGNALR_RESULT_OK);
    CHECK_STR(vd->json, "null");

    char *out = NULL;
    CHECK_OK(signalr_connection_invoke_blocking(c, "Echo", "[[1,2,3]]", WAIT_GUARD_MS, &out));
    CHECK_STR(out, "[1,2,3]");
    signalr_string_free(out);
    out = NULL;
    CHECK_RC(signalr_connection_invoke_blocking(c, "Fail", "[\"bad\"]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_HUB_ERROR);
    CHECK_STR(signalr_last_error_message(), "An unexpected error occurred invoking 'Fail' on the server. HubException: bad");
    CHECK(out == NULL);
    /* a timeout that cannot be met: Delay answers after 2 s, the call gives up after 50 ms (the
     * hub runs one invocation at a time: the calls below wait for the Delay to end) */
    CHECK_RC(signalr_connection_invoke_blocking(c, "Delay", "[2000]", 50, &out), SIGNALR_RESULT_TIMEOUT);
    CHECK(out == NULL);
    /* many concurrent invocations, each completed exactly once with its own result */
    enum { N = 50 };
    probe *many[N];
    for (int i = 0; i < N; i++) {
        many[i] = probe_new(&w);
        char args[32];
        snprintf(args, sizeof args, "[%d, 1000]", i);
        CHECK_OK(REG(signalr_connection_invoke(c, "Add", args, probe_completion_cb, many[i], probe_free_cb)));
    }
    for (int i = 0; i < N; i++) {
        WAIT_DONE(many[i]);
        char want[16];
        snprintf(want, sizeof want, "%d", 1000 + i);
        CHECK_STR(many[i]->json, want);
    }
    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    for (int i = 0; i < N; i++) {
        CHECK(probe_completions(many[i]) == 1);
        PROBE_DONE(many[i]);
    }
    PROBE_DONE(echo);
    PROBE_DONE(add);
    PROBE_DONE(fail);
    PROBE_DONE(nope);
    PROBE_DONE(vd);
}

TEST(send_async_and_blocking) {
    signalr_connection *c = connect_started("/hub");
    probe *s1 = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_send(c, "Record", "[\"a\"]", probe_completion_cb, s1, probe_free_cb)));
    CHECK_OK(signalr_connection_send(c, "Record", "[\"b\"]", NULL, NULL, NULL));
    CHECK_OK(signalr_connection_send_blocking(c, "Record", "[\"c\"]", WAIT_GUARD_MS));
    /* a NULL callback with user data: the user data is still released exactly once */
    probe *s2 = probe_new(NULL);
    CHECK_OK(signalr_connection_send(c, "Record", "[\"d\"]", NULL, s2, probe_free_cb));
    WAIT_DONE(s1);
    CHECK_RC(s1->result, SIGNALR_RESULT_OK);
    CHECK(s1->json == NULL);
    char *r = invoke_ok(c, "GetRecorded", "[]");
    CHECK_STR(r, "[\"a\",\"b\",\"c\",\"d\"]");
    free(r);
    signalr_connection_free(c);
    PROBE_DONE(s1);
    PROBE_DONE(s2);
}

static void cancel_after_first_item(probe *p, const char *s, size_t len) {
    (void)s;
    (void)len;
    pthread_mutex_lock(&p->mu);
    signalr_stream *s_ = p->flag ? NULL : p->user;
    if (s_) p->flag = 1;
    pthread_mutex_unlock(&p->mu);
    if (s_) CHECK_OK(signalr_stream_cancel(s_));
}

TEST(streams_items_completion_cancel) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    signalr_stream *s = NULL;
    probe *p = probe_new(&w);
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[5, 0]", probe_item_cb, probe_completion_cb, p, probe_free_cb, &s)));
    CHECK(s != NULL);
    WAIT_DONE(p);
    CHECK_RC(p->result, SIGNALR_RESULT_OK);
    CHECK(p->json == NULL);
    CHECK_STR(p->log, "0\n1\n2\n3\n4");
    CHECK_RC(signalr_stream_cancel(s), signalr_stream_cancel(s)); /* after the end: same answer twice, no crash */
    signalr_stream_free(s);
    WAIT_FREED(p);

    /* a hub error ends the stream with HUB_ERROR */
    probe *e = probe_new(&w);
    CHECK_OK(REG(signalr_connection_stream(c, "Nope", "[]", probe_item_cb, probe_completion_cb, e, probe_free_cb, &s)));
    WAIT_DONE(e);
    CHECK_RC(e->result, SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(e->error, "Method does not exist");
    signalr_stream_free(s);

    /* cancel from the caller's thread: done exactly once with CANCELED; the hub stops */
    probe *q = probe_new(&w);
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[100000, 1]", probe_item_cb, probe_completion_cb, q, probe_free_cb, &s)));
    WAIT_CALLS(q, 1);
    CHECK_OK(signalr_stream_cancel(s));
    WAIT_DONE(q);
    CHECK_RC(q->result, SIGNALR_RESULT_CANCELED);
    int items = probe_calls(q);
    char *r = invoke_ok(c, "Echo", "[1]"); /* a round trip: no item arrives after CANCELED */
    free(r);
    CHECK(probe_calls(q) == items);
    signalr_stream_free(s);

    /* cancel from inside the item callback */
    probe *k = probe_new(&w);
    k->on_call = cancel_after_first_item;
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[100000, 1]", probe_item_cb, probe_completion_cb, k, probe_free_cb, &s)));
    pthread_mutex_lock(&k->mu);
    k->user = s; /* the next item after this cancels from inside the item callback */
    pthread_mutex_unlock(&k->mu);
    WAIT_DONE(k);
    CHECK_RC(k->result, SIGNALR_RESULT_CANCELED);
    signalr_stream_free(s);

    /* free while running: cancels, done exactly once with CANCELED, user data released */
    probe *f = probe_new(&w);
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[100000, 1]", probe_item_cb, probe_completion_cb, f, probe_free_cb, &s)));
    WAIT_CALLS(f, 1);
    signalr_stream_free(s);
    WAIT_DONE(f);
    CHECK_RC(f->result, SIGNALR_RESULT_CANCELED);
    WAIT_FREED(f);

    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    CHECK(probe_completions(p) == 1 && probe_completions(q) == 1 && probe_completions(k) == 1 &&
          probe_completions(f) == 1 && probe_completions(e) == 1);
    PROBE_DONE(p);
    PROBE_DONE(e);
    PROBE_DONE(q);
    PROBE_DONE(k);
    PROBE_DONE(f);
}

TEST(upload_streams) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    signalr_upload *u[2] = {NULL, NULL};
    signalr_stream *s = NULL;

    /* invoke with an upload: Sum */
    probe *sum = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, sum, probe_free_cb)));
    CHECK(u[0] != NULL);
    for (int i = 1; i <= 10; i++) {
        char item[8];
        snprintf(item, sizeof item, "%d", i);
        CHECK_OK(signalr_upload_write(u[0], item));
    }
    CHECK_OK(signalr_upload_complete(u[0]));
    CHECK_RC(signalr_upload_write(u[0], "1"), SIGNALR_RESULT_INVALID_STATE);
    CHECK_RC(signalr_upload_complete(u[0]), SIGNALR_RESULT_INVALID_STATE);
    WAIT_DONE(sum);
    CHECK_RC(sum->result, SIGNALR_RESULT_OK);
    CHECK_STR(sum->json, "55");
    signalr_upload_free(u[0]);

    /* an upload ending with an error: Sum throws it */
    probe *err = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, err, probe_free_cb)));
    CHECK_OK(signalr_upload_write(u[0], "1"));
    CHECK_OK(signalr_upload_complete_with_error(u[0], "sensor broke"));
    CHECK_RC(signalr_upload_complete_with_error(u[0], "again"), SIGNALR_RESULT_INVALID_STATE);
    WAIT_DONE(err);
    CHECK_RC(err->result, SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(err->error, "sensor broke");
    signalr_upload_free(u[0]);

    /* an upload freed unfinished: completed with "Stream canceled by client." */
    probe *dropped = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, dropped, probe_free_cb)));
    CHECK_OK(signalr_upload_write(u[0], "5"));
    signalr_upload_free(u[0]);
    WAIT_DONE(dropped);
    CHECK_RC(dropped->result, SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(dropped->error, "Stream canceled by client.");

    /* stream with an upload: UploadEcho yields back each item in order */
    probe *echo = probe_new(&w);
    CHECK_OK(REG(signalr_connection_stream_with_uploads(c, "UploadEcho", "[]", 1, u, probe_item_cb, probe_completion_cb, echo, probe_free_cb, &s)));
    CHECK_OK(signalr_upload_write(u[0], "\"one\""));
    CHECK_OK(signalr_upload_write(u[0], "{\"two\":2}"));
    WAIT_CALLS(echo, 2);
    CHECK_OK(signalr_upload_write(u[0], "[3]"));
    CHECK_OK(signalr_upload_complete(u[0]));
    WAIT_DONE(echo);
    CHECK_RC(echo->result, SIGNALR_RESULT_OK);
    CHECK_STR(echo->log, "\"one\"\n{\"two\":2}\n[3]");
    signalr_upload_free(u[0]);
    signalr_stream_free(s);

    /* send with an upload: Sum's result is dropped by the hub; done reports the send */
    probe *sent = probe_new(&w);
    CHECK_OK(REG(signalr_connection_send_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, sent, probe_free_cb)));
    CHECK_OK(signalr_upload_write(u[0], "1"));
    CHECK_OK(signalr_upload_complete(u[0]));
    WAIT_DONE(sent);
    CHECK_RC(sent->result, SIGNALR_RESULT_OK);
    signalr_upload_free(u[0]);

    /* two uploads in one call: the stream ids follow the arguments (Sum takes one: hub error) */
    probe *two = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Echo", "[]", 2, u, probe_completion_cb, two, probe_free_cb)));
    CHECK(u[0] != NULL && u[1] != NULL && u[0] != u[1]);
    signalr_upload_free(u[0]);
    signalr_upload_free(u[1]);
    WAIT_DONE(two);
    CHECK(two->result != SIGNALR_RESULT_OK);

    char *r = invoke_ok(c, "Echo", "[\"alive\"]");
    CHECK_STR(r, "\"alive\"");
    free(r);
    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(sum);
    PROBE_DONE(err);
    PROBE_DONE(dropped);
    PROBE_DONE(echo);
    PROBE_DONE(sent);
    PROBE_DONE(two);
}

TEST(handlers_on_off_remove) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *a = probe_new(&w), *b = probe_new(&w), *other = probe_new(&w), *sentinel = probe_new(&w);
    uint64_t ida = 0, idb = 0, ido = 0, ids = 0;
    CHECK_OK(REG(signalr_connection_on(c, "news", probe_handler_cb, a, probe_free_cb, &ida)));
    CHECK_OK(REG(signalr_connection_on(c, "NEWS", probe_handler_cb, b, probe_free_cb, &idb)));
    CHECK_OK(REG(signalr_connection_on(c, "Other", probe_handler_cb, other, probe_free_cb, &ido)));
    CHECK_OK(REG(signalr_connection_on(c, "Sentinel", probe_handler_cb, sentinel, probe_free_cb, &ids)));
    CHECK(ida != idb && ida != ido && idb != ido);

    char *r = invoke_ok(c, "SendToCaller", "[\"News\", 1, \"two\", {\"three\":3}]");
    free(r);
    WAIT_CALLS(a, 1);
    WAIT_CALLS(b, 1);
    /* the method name arrives as registered or as sent: equal but for case */
    CHECK(a->log && strcasecmp(a->log, "News [1,\"two\",{\"three\":3}]") == 0);
    CHECK(b->log && strcasecmp(b->log, "News [1,\"two\",{\"three\":3}]") == 0);
    r = invoke_ok(c, "SendToCaller", "[\"Other\"]");
    free(r);
    WAIT_CALLS(other, 1);
    CHECK_STR(other->log, "Other []");

    /* remove one handler of "news": only the other is called; its user data is released */
    CHECK_OK(signalr_connection_remove_handler(c, ida));
    WAIT_FREED(a);
    r = invoke_ok(c, "SendToCaller", "[\"news\", 2]");
    free(r);
    r = invoke_ok(c, "SendToCaller", "[\"Sentinel\"]");
    free(r);
    WAIT_CALLS(sentinel, 1); /* protocol order: "news" was handled before the sentinel */
    CHECK(probe_calls(a) == 1 && probe_calls(b) == 2);

    /* off removes every handler of the method, case-insensitively */
    CHECK_OK(signalr_connection_off(c, "nEwS"));
    WAIT_FREED(b);
    CHECK_OK(signalr_connection_off(c, "NeverRegistered"));
    r = invoke_ok(c, "SendToCaller", "[\"news\", 3]");
    free(r);
    r = invoke_ok(c, "SendToCaller", "[\"Sentinel\"]");
    free(r);
    WAIT_CALLS(sentinel, 2);
    CHECK(probe_calls(b) == 2);

    /* an invocation nobody handles is ignored; the connection carries on */
    r = invoke_ok(c, "SendToCaller", "[\"Nobody\", 1]");
    free(r);
    /* broadcast reaches a second connection's handler */
    signalr_connection *c2 = connect_started("/hub");
    probe *bc = probe_new(NULL);
    uint64_t idbc;
    CHECK_OK(REG(signalr_connection_on(c2, "Hello", probe_handler_cb, bc, probe_free_cb, &idbc)));
    r = invoke_ok(c, "Broadcast", "[\"Hello\", \"everyone\"]");
    free(r);
    WAIT_CALLS(bc, 1);
    CHECK_STR(bc->log, "Hello [\"everyone\"]");
    signalr_connection_free(c2);
    PROBE_DONE(bc);

    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(a);
    PROBE_DONE(b);
    PROBE_DONE(other);
    PROBE_DONE(sentinel);
}

/* ---- client results ---- */

typedef enum { ANSWER_NOW, ANSWER_LATER, ANSWER_ERROR, ANSWER_DROP } answer_mode;

typedef struct answerer {
    probe *p;
    answer_mode mode;
    pthread_t thread;
    bool thread_started;
} answerer;

static void *answer_later(void *arg) {
    signalr_responder *r = arg;
    CHECK_OK(signalr_responder_complete(r, "{\"later\":true}"));
    return NULL;
}

static void answer_cb(void *ud, const char *method, size_t method_len, const char *args, size_t args_len,
                      signalr_responder *responder) {
    answerer *a = ud;
    probe_enter(a->p);
    char *m = copy_borrowed(method, method_len), *j = copy_borrowed(args, args_len);
    char line[256];
    snprintf(line, sizeof line, "%s %s", m, j);
    free(m);
    free(j);
    switch (a->mode) {
    case ANSWER_NOW:
        CHECK_RC(signalr_responder_complete(responder, "[1,\"now\"]"), SIGNALR_RESULT_OK);
        break;
    case ANSWER_LATER: /* from another thread, after this callback returned */
        if (pthread_create(&a->thread, NULL, answer_later, responder) == 0) a->thread_started = true;
        break;
    case ANSWER_ERROR:
        CHECK_OK(signalr_responder_complete_with_error(responder, "no can do"));
        break;
    case ANSWER_DROP:
        signalr_responder_free(responder);
        break;
    }
    pthread_mutex_lock(&a->p->mu);
    free(a->p->log);
    a->p->log = strdup(line);
    a->p->calls++;
    pthread_cond_broadcast(&a->p->cv);
    pthread_mutex_unlock(&a->p->mu);
    probe_leave(a->p);
}

static void answerer_free(void *ud) { probe_free_cb(((answerer *)ud)->p); }

TEST(client_results) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    answerer now = {0}, later = {0}, error = {0}, drop = {0};
    now.p = probe_new(&w), now.mode = ANSWER_NOW;
    later.p = probe_new(&w), later.mode = ANSWER_LATER;
    error.p = probe_new(&w), error.mode = ANSWER_ERROR;
    drop.p = probe_new(&w), drop.mode = ANSWER_DROP;
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on_invocation(c, "Now", answer_cb, &now, answerer_free, &id)));
    CHECK_OK(REG(signalr_connection_on_invocation(c, "Later", answer_cb, &later, answerer_free, &id)));
    CHECK_OK(REG(signalr_connection_on_invocation(c, "Error", answer_cb, &error, answerer_free, &id)));
    CHECK_OK(REG(signalr_connection_on_invocation(c, "Drop", answer_cb, &drop, answerer_free, &id)));
    /* one client-result handler per method (names case-insensitive) */
    probe *dup = probe_new(NULL);
    CHECK_RC(REG(signalr_connection_on_invocation(c, "now", probe_invocation_cb, dup, probe_free_cb, &id)), SIGNALR_RESULT_INVALID_STATE);
    CHECK(probe_frees(dup) == 1);
    PROBE_DONE(dup);

    char *r = invoke_ok(c, "AskClient", "[\"Now\", 7]");
    CHECK_STR(r, "[1,\"now\"]");
    CHECK_STR(now.p->log, "Now [7]");
    free(r);
    r = invoke_ok(c, "AskClient", "[\"later\", \"x\"]");
    CHECK_STR(r, "{\"later\":true}");
    free(r);
    char *out = NULL;
    CHECK_RC(signalr_connection_invoke_blocking(c, "AskClient", "[\"Error\", 1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(signalr_last_error_message(), "no can do");
    CHECK_RC(signalr_connection_invoke_blocking(c, "AskClient", "[\"Drop\", 1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(signalr_last_error_message(), "Client didn't provide a result.");
    /* no handler at all: the same error reaches the server */
    CHECK_RC(signalr_connection_invoke_blocking(c, "AskClient", "[\"Unhandled\", 1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(signalr_last_error_message(), "Client didn't provide a result.");
    /* off removes the client-result handler too */
    CHECK_OK(signalr_connection_off(c, "NOW"));
    WAIT_FREED(now.p);
    CHECK_RC(signalr_connection_invoke_blocking(c, "AskClient", "[\"Now\", 1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_HUB_ERROR);
    CHECK(out == NULL);
    if (later.thread_started) pthread_join(later.thread, NULL);
    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(now.p);
    PROBE_DONE(later.p);
    PROBE_DONE(error.p);
    PROBE_DONE(drop.p);
}

/* Responders kept by the test (the handler answers nothing itself). */
static signalr_responder *kept[3];
static void keep_cb(void *ud, const char *m, size_t ml, const char *a, size_t al, signalr_responder *r) {
    (void)m, (void)ml, (void)a, (void)al;
    probe *p = ud;
    probe_enter(p);
    pthread_mutex_lock(&p->mu);
    if (p->calls < 3) kept[p->calls] = r;
    else signalr_responder_free(r);
    p->calls++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    probe_leave(p);
}

TEST(responder_invalid_answers_and_outliving_connection) {
    signalr_connection *c = connect_started("/hub");
    probe *h = probe_new(NULL), *ask[3];
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on_invocation(c, "Keep", keep_cb, h, probe_free_cb, &id)));
    for (int i = 0; i < 3; i++) {
        ask[i] = probe_new(NULL);
        CHECK_OK(REG(signalr_connection_invoke(c, "AskClient", "[\"Keep\", 1]", probe_completion_cb, ask[i], probe_free_cb)));
        WAIT_CALLS(h, i + 1);
    }
    /* an invalid answer is rejected and still consumes the responder: the server gets an error */
    CHECK_RC(signalr_responder_complete(kept[0], "{oops"), SIGNALR_RESULT_INVALID_JSON);
    CHECK_RC(signalr_responder_complete_with_error(kept[1], "\xff"), SIGNALR_RESULT_INVALID_UTF8);
    WAIT_DONE(ask[0]);
    WAIT_DONE(ask[1]);
    CHECK_RC(ask[0]->result, SIGNALR_RESULT_HUB_ERROR);
    CHECK_RC(ask[1]->result, SIGNALR_RESULT_HUB_ERROR);
    signalr_connection_free(c);
    /* the third AskClient was pending: completed exactly once with CANCELED before free returned */
    CHECK(probe_completions(ask[2]) == 1);
    CHECK_RC(ask[2]->result, SIGNALR_RESULT_CANCELED);
    CHECK(probe_frees(h) == 1);
    /* its responder is still valid to answer (which consumes it; nobody is listening) */
    signalr_result rc = signalr_responder_complete(kept[2], "1");
    CHECK(rc == SIGNALR_RESULT_OK || rc == SIGNALR_RESULT_CONNECTION_CLOSED || rc == SIGNALR_RESULT_INVALID_STATE);
    PROBE_DONE(h);
    for (int i = 0; i < 3; i++) PROBE_DONE(ask[i]);
}

TEST(lifecycle_close_with_error_and_reconnect) {
    conn_watch w = {0};
    /* server closes with an error: closed callback gets a status and the server's text */
    signalr_connection *c = connect_started("/hub");
    probe *closed = probe_new(&w);
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    char *out = NULL;
    signalr_connection_invoke_blocking(c, "CloseWithError", "[\"go away\", false]", WAIT_GUARD_MS, &out);
    signalr_string_free(out);
    WAIT_CALLS(closed, 1);
    CHECK(closed->result != SIGNALR_RESULT_OK);
    CHECK_CONTAINS(closed->error, "go away");
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    signalr_connection_free(c);
    PROBE_DONE(closed);

    /* automatic reconnect after a dropped transport */
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    const uint64_t delays[] = {0, 0, 0};
    CHECK_OK(signalr_builder_set_automatic_reconnect(b, delays, 3));
    CHECK_OK(signalr_builder_build(b, &c));
    probe *states = probe_new(&w), *reconnecting = probe_new(&w), *reconnected = probe_new(&w);
    closed = probe_new(&w);
    CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, states, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_on_reconnecting(c, probe_closed_cb, reconnecting, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_on_reconnected(c, probe_reconnected_cb, reconnected, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *first_id = NULL;
    CHECK_OK(signalr_connection_get_connection_id(c, &first_id));
    signalr_connection_invoke_blocking(c, "DropTransport", "[]", WAIT_GUARD_MS, &out);
    signalr_string_free(out);
    WAIT_CALLS(reconnected, 1);
    CHECK(probe_calls(reconnecting) == 1);
    CHECK(reconnecting->result != SIGNALR_RESULT_OK);
    char *new_id = NULL;
    CHECK_OK(signalr_connection_get_connection_id(c, &new_id));
    CHECK(new_id != NULL && first_id != NULL && strcmp(new_id, first_id) != 0);
    CHECK_STR(reconnected->log, new_id ? new_id : "?");
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_CONNECTED);
    char *r = invoke_ok(c, "Echo", "[\"back\"]");
    CHECK_STR(r, "\"back\"");
    free(r);
    CHECK(probe_calls(closed) == 0);
    CHECK_CONTAINS(states->log, "2>4\n4>2");
    signalr_string_free(first_id);
    signalr_string_free(new_id);
    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(states);
    PROBE_DONE(reconnecting);
    PROBE_DONE(reconnected);
    PROBE_DONE(closed);
}

/* Reconnect policy: records each call and gives up on the third. */
typedef struct policy_data {
    probe *p;
    uint64_t counts[8];
    int n;
} policy_data;

static int64_t policy_cb(void *ud, uint64_t previous_retry_count, uint64_t elapsed_ms, const char *reason, size_t reason_len) {
    (void)elapsed_ms;
    policy_data *d = ud;
    probe_enter(d->p);
    char *why = copy_borrowed(reason, reason_len);
    CHECK(why != NULL && *why != '\0');
    free(why);
    if (d->n < 8) d->counts[d->n++] = previous_retry_count;
    pthread_mutex_lock(&d->p->mu);
    d->p->calls++;
    pthread_cond_broadcast(&d->p->cv);
    pthread_mutex_unlock(&d->p->mu);
    probe_leave(d->p);
    return previous_retry_count < 2 ? 0 : -1;
}
static void policy_free(void *ud) { probe_free_cb(((policy_data *)ud)->p); }

TEST(reconnect_policy_callback) {
    /* a hub we can kill: reconnect attempts then fail, the policy decides when to stop */
    hub h;
    hub_start(&h, false, NULL);
    char url[256];
    hub_url(&h, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    policy_data d = {probe_new(NULL), {0}, 0};
    CHECK_OK(signalr_builder_set_reconnect_policy(b, policy_cb, &d, policy_free));
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    probe *closed = probe_new(NULL), *reconnecting = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_on_reconnecting(c, probe_closed_cb, reconnecting, probe_free_cb)));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    hub_stop(&h);
    WAIT_CALLS(closed, 1);
    CHECK(closed->result != SIGNALR_RESULT_OK);
    CHECK(probe_calls(reconnecting) == 1);
    CHECK(d.n == 3);
    CHECK(d.counts[0] == 0 && d.counts[1] == 1 && d.counts[2] == 2);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    signalr_connection_free(c);
    PROBE_DONE(d.p);
    PROBE_DONE(closed);
    PROBE_DONE(reconnecting);
}

/* ---- logging ---- */

typedef struct log_sink {
    atomic_int records;
    atomic_int bad;
    atomic_int frees;
    atomic_int min_seen;
    atomic_int ours; /* records whose target is a module of this library */
} log_sink;

static void log_cb(void *ud, uint32_t level, const char *target, size_t target_len, const char *message, size_t message_len) {
    log_sink *s = ud;
    if (level > SIGNALR_LOG_LEVEL_CRITICAL || target == NULL || message == NULL || target[target_len] != '\0' ||
        message[message_len] != '\0' || strlen(target) != target_len || strlen(message) != message_len ||
        target_len == 0)
        atomic_fetch_add(&s->bad, 1);
    if (target && strncmp(target, "signalr_native", 14) == 0) atomic_fetch_add(&s->ours, 1);
    if ((int)level < atomic_load(&s->min_seen)) atomic_store(&s->min_seen, (int)level);
    atomic_fetch_add(&s->records, 1);
}
static void log_free(void *ud) { atomic_fetch_add(&((log_sink *)ud)->frees, 1); }

/* The old sink is released once no call of it runs any more, which may be a moment after the
 * replacing call returned if a library thread was logging: poll (1 ms steps, guarded). */
static bool released(log_sink *s) {
    for (int i = 0; i < WAIT_GUARD_MS && atomic_load(&s->frees) == 0; i++) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    return atomic_load(&s->frees) == 1;
}

/* Builds (and with `start`, starts and stops) a connection that makes the library log: a server
 * timeout not above the keep-alive interval is a warning (signalr_native::builder), a transport
 * skipped because of the transport mask a debug record (signalr_native::connection). */
static void make_library_log(bool start) {
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_OK(signalr_builder_set_keep_alive_interval_ms(b, 20000));
    CHECK_OK(signalr_builder_set_server_timeout_ms(b, 20000));
    CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_LONG_POLLING));
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    if (start) {
        CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
        CHECK_OK(signalr_connection_stop_blocking(c, WAIT_GUARD_MS));
    }
    signalr_connection_free(c);
}

TEST(logging_callback_and_levels) {
    log_sink s1 = {0}, s2 = {0}, bad = {0};
    atomic_store(&s1.min_seen, 99);
    atomic_store(&s2.min_seen, 99);
    CHECK_RC(signalr_log_set_callback(log_cb, &bad, log_free, 7), SIGNALR_RESULT_INVALID_ARGUMENT);
    CHECK(atomic_load(&bad.frees) == 1); /* released before the failing call returned */
    CHECK_RC(signalr_log_set_level(7), SIGNALR_RESULT_INVALID_ARGUMENT);

    /* TRACE: the library's debug and warning records arrive, with level, target and message */
    CHECK_OK(signalr_log_set_callback(log_cb, &s1, log_free, SIGNALR_LOG_LEVEL_TRACE));
    make_library_log(true);
    CHECK(atomic_load(&s1.ours) >= 2);
    CHECK(atomic_load(&s1.min_seen) <= SIGNALR_LOG_LEVEL_DEBUG);
    CHECK(atomic_load(&s1.bad) == 0);

    /* NONE: nothing is produced (the builder's warning is emitted on this thread, synchronously) */
    CHECK_OK(signalr_log_set_level(SIGNALR_LOG_LEVEL_NONE));
    int before = atomic_load(&s1.records);
    make_library_log(false);
    CHECK(atomic_load(&s1.records) == before);

    /* replacing the callback releases the old user data exactly once; WARNING filters debug out */
    CHECK_OK(signalr_log_set_callback(log_cb, &s2, log_free, SIGNALR_LOG_LEVEL_WARNING));
    CHECK(released(&s1));
    make_library_log(true);
    CHECK(atomic_load(&s2.ours) >= 1);
    CHECK(atomic_load(&s2.min_seen) == SIGNALR_LOG_LEVEL_WARNING);
    CHECK(atomic_load(&s2.bad) == 0);
    /* removing it releases the user data */
    CHECK_OK(signalr_log_set_callback(NULL, NULL, NULL, SIGNALR_LOG_LEVEL_NONE));
    CHECK(released(&s2));
    CHECK(atomic_load(&s1.frees) == 1);
}
