/* The C API side of the C# wrapper's measurement: the same two figures as Bench.cs, measured
 * straight on the C API, so the wrapper's overhead shows.
 *   capi_bench URL [json|messagepack] [invokes] [flood_count] [payload_bytes]
 * Prints: "C API <protocol>: invoke round trip median X us p99 Y us (N calls); receive Z msg/s (M messages)". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signalr.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, signalr_result rc) {
    fprintf(stderr, "capi_bench: %s: %s (%s)\n", what, signalr_result_name(rc), signalr_last_error_message());
    exit(1);
}

struct counter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long count;
};

static void on_flood(void *ud, const char *m, size_t ml, const char *a, size_t al) {
    (void)m; (void)ml; (void)a; (void)al;
    struct counter *c = ud;
    pthread_mutex_lock(&c->lock);
    c->count++;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: capi_bench URL [json|messagepack] [invokes] [flood_count] [payload_bytes]\n"); return 2; }
    const char *url = argv[1];
    int msgpack = argc > 2 && strcmp(argv[2], "messagepack") == 0;
    int invokes = argc > 3 ? atoi(argv[3]) : 2000;
    long flood = argc > 4 ? atol(argv[4]) : 100000;
    int payload = argc > 5 ? atoi(argv[5]) : 32;

    signalr_builder *b;
    signalr_connection *conn;
    signalr_result rc;
    if ((rc = signalr_builder_new(url, &b))) die("builder_new", rc);
    if ((rc = signalr_builder_set_protocol(b, msgpack ? SIGNALR_PROTOCOL_MESSAGEPACK : SIGNALR_PROTOCOL_JSON))) die("set_protocol", rc);
    if ((rc = signalr_builder_build(b, &conn))) die("build", rc);
    struct counter counter = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    uint64_t hid;
    if ((rc = signalr_connection_on(conn, "Flood", on_flood, &counter, NULL, &hid))) die("on", rc);
    if ((rc = signalr_connection_start_blocking(conn, 30000))) die("start", rc);

    /* Invoke round trip: sequential Echo calls, after a warm-up. */
    double *lat = calloc((size_t)invokes, sizeof *lat);
    for (int i = -invokes / 10; i < invokes; i++) {
        char *out = NULL;
        double t0 = now_us();
        if ((rc = signalr_connection_invoke_blocking(conn, "Echo", "[\"ping\"]", 30000, &out))) die("invoke", rc);
        double t1 = now_us();
        signalr_string_free(out);
        if (i >= 0) lat[i] = t1 - t0;
    }
    qsort(lat, (size_t)invokes, sizeof *lat, cmp_double);

    /* Receive rate: the hub sends `flood` invocations as fast as it can. */
    char args[64];
    snprintf(args, sizeof args, "[%ld,%d]", flood, payload);
    double t0 = now_us();
    char *out = NULL;
    if ((rc = signalr_connection_invoke_blocking(conn, "Flood", args, 120000, &out))) die("flood", rc);
    signalr_string_free(out);
    pthread_mutex_lock(&counter.lock);
    while (counter.count < flood) pthread_cond_wait(&counter.cond, &counter.lock);
    pthread_mutex_unlock(&counter.lock);
    double secs = (now_us() - t0) / 1e6;

    printf("C API %s: invoke round trip median %.1f us p99 %.1f us (%d calls); receive %.0f msg/s (%ld messages of %d bytes)\n",
           msgpack ? "messagepack" : "json", lat[invokes / 2], lat[invokes * 99 / 100], invokes, flood / secs, flood, payload);
    free(lat);
    signalr_connection_free(conn);
    return 0;
}
