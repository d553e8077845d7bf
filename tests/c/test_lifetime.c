/* Lifetime rules: free with calls in flight, free from inside a handler / completion / item /
 * closed callback, exactly-once completion with CANCELED, userdata_free exactly once everywhere,
 * handles that outlive their connection, blocking calls inside callbacks → WOULD_DEADLOCK. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "tests.h"

/* Everything a connection can have pending at once. The hub runs one non-streaming invocation
 * of a connection at a time (as ASP.NET's MaximumParallelInvocationsPerClient = 1) and stops
 * reading that connection while a second one waits, so one long Delay is the pending invoke; the
 * others are a running stream and an invoke waiting for its upload stream (neither holds the
 * hub's invocation slot). */
enum { N_DELAYS = 1 };
typedef struct in_flight {
    conn_watch w;
    probe *delays[N_DELAYS];
    probe *stream;
    probe *upload_call;
    probe *handler;
    probe *closed;
    probe *states;
    signalr_stream *s;
    signalr_upload *u[1];
} in_flight;

static void start_in_flight(signalr_connection *c, in_flight *f) {
    for (int i = 0; i < N_DELAYS; i++) {
        f->delays[i] = probe_new(&f->w);
        CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, f->delays[i], probe_free_cb)));
    }
    f->stream = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[1000000, 2]", probe_item_cb, probe_completion_cb, f->stream, probe_free_cb, &f->s)));
    f->upload_call = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, f->u, probe_completion_cb, f->upload_call, probe_free_cb)));
    CHECK_OK(signalr_upload_write(f->u[0], "1"));
    uint64_t id;
    f->handler = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_on(c, "Tick", probe_handler_cb, f->handler, probe_free_cb, &id)));
    f->closed = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, f->closed, probe_free_cb)));
    f->states = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, f->states, probe_free_cb)));
    WAIT_CALLS(f->stream, 1); /* the calls have reached the hub */
}

/* After the connection's teardown: each pending completion ran exactly once with CANCELED, all
 * user data released exactly once, the leftover handles still safe to use and free. */
static void finish_in_flight(in_flight *f, bool teardown_done) {
    probe *pending[] = {f->delays[0], f->stream, f->upload_call};
    for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++) {
        if (!teardown_done) WAIT_FREED(pending[i]);
        CHECK(probe_completions(pending[i]) == 1);
        CHECK_RC(pending[i]->result, SIGNALR_RESULT_CANCELED);
    }
    if (!teardown_done) {
        WAIT_FREED(f->handler);
        WAIT_FREED(f->closed);
        WAIT_FREED(f->states);
    }
    int items = probe_calls(f->stream);
    /* handles of a freed connection: operations fail with CONNECTION_CLOSED or INVALID_STATE */
    signalr_result rc = signalr_upload_write(f->u[0], "2");
    if (rc != SIGNALR_RESULT_CONNECTION_CLOSED && rc != SIGNALR_RESULT_INVALID_STATE)
        check_fail(__FILE__, __LINE__, "upload_write after free = %s", signalr_result_name(rc));
    rc = signalr_upload_complete(f->u[0]);
    if (rc != SIGNALR_RESULT_CONNECTION_CLOSED && rc != SIGNALR_RESULT_INVALID_STATE)
        check_fail(__FILE__, __LINE__, "upload_complete after free = %s", signalr_result_name(rc));
    signalr_upload_free(f->u[0]);
    rc = signalr_stream_cancel(f->s);
    CHECK(rc == SIGNALR_RESULT_OK || rc == SIGNALR_RESULT_CONNECTION_CLOSED || rc == SIGNALR_RESULT_INVALID_STATE);
    signalr_stream_free(f->s);
    CHECK(probe_calls(f->stream) == items);
    CHECK(atomic_load(&f->w.overlaps) == 0);
    for (int i = 0; i < N_DELAYS; i++) PROBE_DONE(f->delays[i]);
    PROBE_DONE(f->stream);
    PROBE_DONE(f->upload_call);
    PROBE_DONE(f->handler);
    PROBE_DONE(f->closed);
    PROBE_DONE(f->states);
}

TEST(free_with_calls_in_flight) {
    in_flight f = {0};
    signalr_connection *c = connect_started("/hub");
    start_in_flight(c, &f);
    signalr_connection_free(c);
    /* From outside a callback, free waited for every completion and userdata_free. */
    for (int i = 0; i < N_DELAYS; i++) CHECK(probe_frees(f.delays[i]) == 1);
    CHECK(probe_frees(f.stream) == 1 && probe_frees(f.upload_call) == 1 && probe_frees(f.handler) == 1 &&
          probe_frees(f.closed) == 1 && probe_frees(f.states) == 1);
    finish_in_flight(&f, true);
}

/* Frees the connection kept in p->user from inside whatever callback calls it. */
static void free_conn_inside(probe *p) {
    pthread_mutex_lock(&p->mu);
    signalr_connection *c = p->flag ? NULL : p->user;
    p->flag = 1;
    pthread_mutex_unlock(&p->mu);
    if (c) {
        signalr_connection_free(c);
        /* after free (inside a callback) no new callback starts; this one carries on */
    }
}
static void free_on_call(probe *p, const char *s, size_t len) {
    (void)s, (void)len;
    free_conn_inside(p);
}
static void free_on_done(probe *p, signalr_result r) {
    (void)r;
    free_conn_inside(p);
}

TEST(free_inside_handler) {
    in_flight f = {0};
    signalr_connection *c = connect_started("/hub");
    char *r = invoke_ok(c, "JoinGroup", "[\"free-inside-handler\"]");
    free(r);
    probe *h = probe_new(&f.w);
    uint64_t id;
    h->user = c;
    h->on_call = free_on_call;
    CHECK_OK(REG(signalr_connection_on(c, "FreeMe", probe_handler_cb, h, probe_free_cb, &id)));
    start_in_flight(c, &f);
    /* c's own invocation slot is taken by the Delay: a second connection triggers the handler */
    signalr_connection *other = connect_started("/hub");
    r = invoke_ok(other, "SendToGroup", "[\"free-inside-handler\", \"FreeMe\"]");
    free(r);
    signalr_connection_free(other);
    WAIT_FREED(h);
    CHECK(probe_calls(h) == 1);
    finish_in_flight(&f, false);
    PROBE_DONE(h);
}

TEST(free_inside_completion) {
    in_flight f = {0};
    signalr_connection *c = connect_started("/hub");
    start_in_flight(c, &f);
    /* a second upload invoke whose completion frees the connection (uploads do not wait for the
     * Delay holding the hub's invocation slot) */
    probe *e = probe_new(&f.w);
    e->user = c;
    e->on_done = free_on_done;
    signalr_upload *u[1] = {NULL};
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, e, probe_free_cb)));
    CHECK_OK(signalr_upload_write(u[0], "20"));
    CHECK_OK(signalr_upload_write(u[0], "22"));
    CHECK_OK(signalr_upload_complete(u[0]));
    WAIT_FREED(e);
    CHECK(probe_completions(e) == 1);
    CHECK_RC(e->result, SIGNALR_RESULT_OK);
    CHECK_STR(e->json, "42");
    signalr_upload_free(u[0]);
    finish_in_flight(&f, false);
    PROBE_DONE(e);
}

TEST(free_inside_stream_item) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *d = probe_new(&w), *s = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, d, probe_free_cb)));
    s->user = c;
    s->on_call = free_on_call;
    signalr_stream *st = NULL;
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[1000000, 1]", probe_item_cb, probe_completion_cb, s, probe_free_cb, &st)));
    WAIT_FREED(s);
    WAIT_FREED(d);
    CHECK(probe_calls(s) == 1); /* no item after the one that freed */
    CHECK(probe_completions(s) == 1 && probe_completions(d) == 1);
    CHECK_RC(s->result, SIGNALR_RESULT_CANCELED);
    CHECK_RC(d->result, SIGNALR_RESULT_CANCELED);
    signalr_stream_free(st);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(d);
    PROBE_DONE(s);
}

static void free_in_closed(void *ud, signalr_result result, const char *error, size_t error_len) {
    probe_closed_cb(ud, result, error, error_len);
    free_conn_inside(ud);
}

TEST(free_inside_closed_callback) {
    signalr_connection *c = connect_started("/hub");
    probe *cl = probe_new(NULL);
    cl->user = c;
    CHECK_OK(REG(signalr_connection_on_closed(c, free_in_closed, cl, probe_free_cb)));
    probe *d = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_invoke(c, "CloseWithError", "[\"bye\", false]", probe_completion_cb, d, probe_free_cb)));
    WAIT_FREED(cl);
    WAIT_FREED(d);
    CHECK(probe_calls(cl) == 1 && probe_completions(d) == 1);
    PROBE_DONE(cl);
    PROBE_DONE(d);
}

/* Blocking calls inside callbacks return WOULD_DEADLOCK at once; async ones work. */
static signalr_connection *deadlock_conn;
static void blocking_inside(probe *p) {
    char *out = NULL;
    CHECK_RC(signalr_connection_invoke_blocking(deadlock_conn, "Echo", "[1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK(out == NULL);
    CHECK(*signalr_last_error_message() != '\0');
    CHECK_RC(signalr_connection_send_blocking(deadlock_conn, "Record", "[1]", WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK_RC(signalr_connection_stop_blocking(deadlock_conn, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK_RC(signalr_connection_start_blocking(deadlock_conn, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    /* non-blocking calls are fine from here */
    CHECK(signalr_connection_get_state(deadlock_conn) == SIGNALR_CONNECTION_STATE_CONNECTED);
    probe *inner = p->user;
    CHECK_OK(signalr_connection_invoke(deadlock_conn, "Echo", "[\"inner\"]", probe_completion_cb, inner, probe_free_cb));
}
static void blocking_on_call(probe *p, const char *s, size_t len) {
    (void)s, (void)len;
    blocking_inside(p);
}
static void blocking_on_done(probe *p, signalr_result r) {
    (void)r;
    blocking_inside(p);
}

TEST(blocking_inside_callbacks_would_deadlock) {
    conn_watch w = {0};
    deadlock_conn = connect_started("/hub");
    probe *h = probe_new(&w), *h_inner = probe_new(&w), *d = probe_new(&w), *d_inner = probe_new(&w);
    h->user = h_inner;
    h->on_call = blocking_on_call;
    d->user = d_inner;
    d->on_done = blocking_on_done;
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on(deadlock_conn, "Block", probe_handler_cb, h, probe_free_cb, &id)));
    char *r = invoke_ok(deadlock_conn, "SendToCaller", "[\"Block\"]");
    free(r);
    WAIT_DONE(h_inner);
    CHECK_STR(h_inner->json, "\"inner\"");
    CHECK_OK(REG(signalr_connection_invoke(deadlock_conn, "Echo", "[2]", probe_completion_cb, d, probe_free_cb)));
    WAIT_DONE(d_inner);
    CHECK_STR(d_inner->json, "\"inner\"");
    /* the connection is still healthy from outside */
    r = invoke_ok(deadlock_conn, "Echo", "[3]");
    CHECK_STR(r, "3");
    free(r);
    signalr_connection_free(deadlock_conn);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(h);
    PROBE_DONE(h_inner);
    PROBE_DONE(d);
    PROBE_DONE(d_inner);
}

static void stop_on_call(probe *p, const char *s, size_t len) {
    (void)s, (void)len;
    probe *stop = p->user;
    CHECK_OK(signalr_connection_stop((signalr_connection *)stop->user, probe_completion_cb, stop, probe_free_cb));
}

TEST(stop_with_pending_calls_and_from_inside) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *d = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, d, probe_free_cb)));
    /* a short stream (streams do not wait for the Delay) proves the Delay reached the hub */
    probe *sync = probe_new(&w);
    signalr_stream *s = NULL;
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[1, 0]", probe_item_cb, probe_completion_cb, sync, probe_free_cb, &s)));
    WAIT_DONE(sync);
    signalr_stream_free(s);
    CHECK_OK(signalr_connection_stop_blocking(c, WAIT_GUARD_MS));
    WAIT_DONE(d);
    CHECK(d->result == SIGNALR_RESULT_CANCELED || d->result == SIGNALR_RESULT_CONNECTION_CLOSED);

    /* stop (async) from inside a handler; the connection can start again afterwards */
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    probe *h = probe_new(&w), *stop = probe_new(&w), *d2 = probe_new(&w);
    stop->user = c;
    h->user = stop;
    h->on_call = stop_on_call;
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on(c, "StopMe", probe_handler_cb, h, probe_free_cb, &id)));
    probe *trigger = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "SendToCaller", "[\"StopMe\"]", probe_completion_cb, trigger, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, d2, probe_free_cb)));
    WAIT_DONE(stop);
    CHECK_RC(stop->result, SIGNALR_RESULT_OK);
    WAIT_DONE(d2);
    CHECK(d2->result == SIGNALR_RESULT_CANCELED || d2->result == SIGNALR_RESULT_CONNECTION_CLOSED);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *r = invoke_ok(c, "Echo", "[\"again\"]");
    CHECK_STR(r, "\"again\"");
    free(r);
    signalr_connection_free(c);
    CHECK(probe_completions(d) == 1 && probe_completions(d2) == 1 && probe_completions(stop) == 1);
    CHECK(atomic_load(&w.overlaps) == 0);
    CHECK(probe_completions(trigger) == 1);
    PROBE_DONE(d);
    PROBE_DONE(sync);
    PROBE_DONE(h);
    PROBE_DONE(stop);
    PROBE_DONE(d2);
    PROBE_DONE(trigger);
}

/* 200 invokes issued from a second thread, then free while their completions are arriving:
 * every accepted call completes exactly once (OK or CANCELED), every rejected one released its
 * user data before returning and never completes. */
enum { RACE_N = 200 };
typedef struct race {
    signalr_connection *c;
    probe *probes[RACE_N];
    signalr_result rcs[RACE_N];
} race;

static void *race_invoker(void *arg) {
    race *r = arg;
    for (int i = 0; i < RACE_N; i++)
        r->rcs[i] = REG(signalr_connection_invoke(r->c, "Echo", "[\"race\"]", probe_completion_cb, r->probes[i], probe_free_cb));
    return NULL;
}

TEST(free_races_with_completions) {
    race r = {0};
    conn_watch w = {0};
    r.c = connect_started("/hub");
    for (int i = 0; i < RACE_N; i++) r.probes[i] = probe_new(&w);
    run_on_thread(race_invoker, &r);
    signalr_connection_free(r.c);
    int ok = 0, canceled = 0;
    for (int i = 0; i < RACE_N; i++) {
        probe *p = r.probes[i];
        CHECK(probe_frees(p) == 1);
        CHECK_RC(r.rcs[i], SIGNALR_RESULT_OK);
        CHECK(probe_completions(p) == 1);
        if (p->result == SIGNALR_RESULT_OK) {
            CHECK_STR(p->json, "\"race\"");
            ok++;
        } else {
            CHECK_RC(p->result, SIGNALR_RESULT_CANCELED);
            canceled++;
        }
        PROBE_DONE(p);
    }
    CHECK(ok + canceled == RACE_N);
    CHECK(atomic_load(&w.overlaps) == 0);
}
