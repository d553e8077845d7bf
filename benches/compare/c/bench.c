/* This library through its C API (include/signalr.h). Command line and output as every program
 * of benches/compare (see benches/compare/rust/src/lib.rs):
 *   bench-c invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack
 * Sequential calls use the _blocking functions, pipelined calls the asynchronous ones. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "signalr.h"

enum { IN_FLIGHT = 100, CONNECT_BATCH = 100 };

static const char *scenario, *url;
static size_t count, payload;
static uint32_t protocol;

static void die(const char *what, signalr_result rc) {
  fprintf(stderr, "%s: %s: %s\n", what, signalr_result_name(rc), signalr_last_error_message());
  exit(1);
}
#define CHECK(call) do { signalr_result rc_ = (call); if (rc_) die(#call, rc_); } while (0)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  if (f) fclose(f);
  return kib * 1024;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void emit_percentiles(double *samples, size_t n) {
  qsort(samples, n, sizeof *samples, by_value);
  printf("{\"p50_us\":%.3f,\"p99_us\":%.3f}\n", samples[(size_t)((n - 1) * 0.5 + 0.5)] * 1e6,
         samples[(size_t)((n - 1) * 0.99 + 0.5)] * 1e6);
}

static size_t warm_up(void) { return count / 10 > 0 ? count / 10 : 1; }

static signalr_connection *connection(void) {
  signalr_builder *b;
  signalr_connection *c;
  CHECK(signalr_builder_new(url, &b));
  CHECK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_WEBSOCKETS));
  CHECK(signalr_builder_set_protocol(b, protocol));
  CHECK(signalr_builder_build(b, &c));
  return c;
}

static signalr_connection *started(void) {
  signalr_connection *c = connection();
  CHECK(signalr_connection_start_blocking(c, 30000));
  return c;
}

static char *echo_args(void) {
  char *args = malloc(payload + 5);
  memcpy(args, "[\"", 2);
  memset(args + 2, 'x', payload);
  memcpy(args + 2 + payload, "\"]", 3);
  return args;
}

static void invoke(void) {
  signalr_connection *c = started();
  char *args = echo_args(), *result;
  double *samples = malloc(count * sizeof *samples);
  for (size_t i = 0; i < count + warm_up(); i++) {
    double t = now();
    CHECK(signalr_connection_invoke_blocking(c, "Echo", args, 30000, &result));
    if (i >= warm_up()) samples[i - warm_up()] = now() - t;
    signalr_string_free(result);
  }
  signalr_connection_free(c);
  emit_percentiles(samples, count);
}

/* Pipelined calls: each completion starts the next call while calls remain. */
struct pipeline {
  signalr_connection *c;
  const char *args;
  size_t remaining_to_send;
  size_t done, total;
  pthread_mutex_t lock;
  pthread_cond_t finished;
};

static void call_next(struct pipeline *p);

static void pipeline_done(void *ud, signalr_result result, const char *error, size_t error_len, const char *json,
                          size_t json_len) {
  struct pipeline *p = ud;
  (void)error_len, (void)json, (void)json_len;
  if (result) {
    fprintf(stderr, "invoke failed: %s %s\n", signalr_result_name(result), error ? error : "");
    exit(1);
  }
  call_next(p);
  pthread_mutex_lock(&p->lock);
  if (++p->done == p->total) pthread_cond_signal(&p->finished);
  pthread_mutex_unlock(&p->lock);
}

static void call_next(struct pipeline *p) {
  pthread_mutex_lock(&p->lock);
  int go = p->remaining_to_send > 0;
  if (go) p->remaining_to_send--;
  pthread_mutex_unlock(&p->lock);
  if (go) CHECK(signalr_connection_invoke(p->c, "Echo", p->args, pipeline_done, p, NULL));
}

static void run_pipeline(signalr_connection *c, const char *args, size_t n) {
  struct pipeline p = {c, args, n, 0, n, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
  for (size_t i = 0; i < IN_FLIGHT && i < n; i++) call_next(&p);
  pthread_mutex_lock(&p.lock);
  while (p.done < p.total) pthread_cond_wait(&p.finished, &p.lock);
  pthread_mutex_unlock(&p.lock);
}

static void pipelined(void) {
  signalr_connection *c = started();
  char *args = echo_args();
  run_pipeline(c, args, warm_up());
  double t = now();
  run_pipeline(c, args, count);
  double elapsed = now() - t;
  signalr_connection_free(c);
  printf("{\"calls_per_s\":%.1f}\n", count / elapsed);
}

static atomic_size_t flood_received, flood_expected;
static pthread_mutex_t flood_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flood_all_received = PTHREAD_COND_INITIALIZER;

static void flood_handled(size_t calls) {
  if (atomic_fetch_add_explicit(&flood_received, calls, memory_order_relaxed) + calls == atomic_load(&flood_expected)) {
    pthread_mutex_lock(&flood_lock);
    pthread_cond_signal(&flood_all_received);
    pthread_mutex_unlock(&flood_lock);
  }
}

static void on_flood(void *ud, const char *method, size_t method_len, const char *args, size_t args_len) {
  (void)ud, (void)method, (void)method_len, (void)args, (void)args_len;
  flood_handled(1);
}

/* BENCH_C_BATCH: the calls already queued arrive together (signalr_connection_on_batch). */
static void on_flood_batch(void *ud, const char *method, size_t method_len, const char *calls, size_t calls_len,
                           size_t n) {
  (void)ud, (void)method, (void)method_len, (void)calls, (void)calls_len;
  flood_handled(n);
}

/* One Flood of n messages; returns the seconds until the last message was handled. */
static double flood_once(signalr_connection *c, size_t n, double *cpu) {
  char args[64], *result;
  snprintf(args, sizeof args, "[%zu,%zu]", n, payload);
  atomic_store(&flood_received, 0);
  atomic_store(&flood_expected, n);
  double cpu_before = cpu_seconds(), t = now();
  /* The blocking call returns with the Flood's completion; the handlers run on the connection's
   * callback thread, possibly still busy with the last messages then. */
  CHECK(signalr_connection_invoke_blocking(c, "Flood", args, 0, &result));
  pthread_mutex_lock(&flood_lock);
  while (atomic_load(&flood_received) < n) pthread_cond_wait(&flood_all_received, &flood_lock);
  pthread_mutex_unlock(&flood_lock);
  double elapsed = now() - t;
  *cpu = cpu_seconds() - cpu_before;
  signalr_string_free(result);
  return elapsed;
}

static void flood(void) {
  signalr_connection *c = started();
  uint64_t id;
  double cpu;
  if (getenv("BENCH_C_BATCH"))
    CHECK(signalr_connection_on_batch(c, "Flood", on_flood_batch, NULL, NULL, &id));
  else
    CHECK(signalr_connection_on(c, "Flood", on_flood, NULL, NULL, &id));
  flood_once(c, warm_up(), &cpu);
  double elapsed = flood_once(c, count, &cpu);
  signalr_connection_free(c);
  printf("{\"msgs_per_s\":%.1f,\"cpu_s\":%.6f}\n", count / elapsed, cpu);
}

static void connect_time(void) {
  double *samples = malloc(count * sizeof *samples);
  for (size_t i = 0; i < count + warm_up(); i++) {
    signalr_connection *c = connection();
    double t = now();
    CHECK(signalr_connection_start_blocking(c, 30000));
    if (i >= warm_up()) samples[i - warm_up()] = now() - t;
    CHECK(signalr_connection_stop_blocking(c, 30000));
    signalr_connection_free(c);
  }
  emit_percentiles(samples, count);
}

/* Starts of one batch of the idle scenario. */
struct batch {
  size_t pending;
  pthread_mutex_t lock;
  pthread_cond_t all_started;
};

static void batch_started(void *ud, signalr_result result, const char *error, size_t error_len, const char *json,
                          size_t json_len) {
  struct batch *b = ud;
  (void)error_len, (void)json, (void)json_len;
  if (result) {
    fprintf(stderr, "start failed: %s %s\n", signalr_result_name(result), error ? error : "");
    exit(1);
  }
  pthread_mutex_lock(&b->lock);
  if (--b->pending == 0) pthread_cond_signal(&b->all_started);
  pthread_mutex_unlock(&b->lock);
}

static void idle(void) {
  signalr_connection *warm = started();
  (void)warm;
  long before = rss_bytes();
  signalr_connection **open = malloc(count * sizeof *open);
  for (size_t opened = 0; opened < count;) {
    size_t n = count - opened < CONNECT_BATCH ? count - opened : CONNECT_BATCH;
    struct batch b = {n, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    for (size_t i = 0; i < n; i++) {
      open[opened + i] = connection();
      CHECK(signalr_connection_start(open[opened + i], batch_started, &b, NULL));
    }
    pthread_mutex_lock(&b.lock);
    while (b.pending > 0) pthread_cond_wait(&b.all_started, &b.lock);
    pthread_mutex_unlock(&b.lock);
    opened += n;
  }
  usleep(500 * 1000); /* let the connections settle, as every program does */
  long after = rss_bytes();
  printf("{\"bytes_per_conn\":%.1f}\n", (double)(after - before) / count);
  fflush(stdout);
  _exit(0); /* without closing every connection one by one */
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s invoke|pipelined|flood|connect|idle HUB_URL COUNT PAYLOAD_BYTES json|messagepack\n", argv[0]);
    return 2;
  }
  scenario = argv[1], url = argv[2];
  count = strtoull(argv[3], NULL, 10), payload = strtoull(argv[4], NULL, 10);
  protocol = strcmp(argv[5], "messagepack") == 0 ? SIGNALR_PROTOCOL_MESSAGEPACK : SIGNALR_PROTOCOL_JSON;
  if (getenv("BENCH_C_BATCH") && strcmp(scenario, "flood")) {
    /* Only the receive path differs from the plain C API row. */
    printf("{\"unsupported\":\"batch handlers change only the receive path: see the C API row\"}\n");
    return 0;
  }
  if (!strcmp(scenario, "invoke")) invoke();
  else if (!strcmp(scenario, "pipelined")) pipelined();
  else if (!strcmp(scenario, "flood")) flood();
  else if (!strcmp(scenario, "connect")) connect_time();
  else if (!strcmp(scenario, "idle")) idle();
  else return 2;
  return 0;
}
