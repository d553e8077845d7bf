/* Runs the C test suite: every test against the test hub, in order, one at a time.
 * Usage: signalr-c-tests [substring...]  (only tests whose name contains one of them) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "tests.h"

static const test_case all_tests[] = {
#define X(name) {#name, name},
    ALL_TESTS(X)
#undef X
};

static bool selected(const char *name, int argc, char **argv) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return true;
    return false;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    hub_start(&the_hub, false, NULL);
    printf("test hub at %s; library %s\n", the_hub.base, signalr_version());

    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof all_tests / sizeof all_tests[0]; i++) {
        const test_case *t = &all_tests[i];
        if (!selected(t->name, argc, argv)) continue;
        atomic_store(&harness_failures, 0);
        printf("test %s ...\n", t->name);
        t->fn();
        if (atomic_load(&harness_failures) == 0) {
            passed++;
            printf("test %s ... ok\n", t->name);
        } else {
            failed++;
            printf("test %s ... FAILED\n", t->name);
        }
    }
    hub_stop(&the_hub);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
