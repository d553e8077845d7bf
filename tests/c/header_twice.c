/* Header hygiene: the header included twice compiles cleanly as C (C99/C11) and C++17 with
 * -Wall -Wextra -Wpedantic -Werror (scripts/test-c.sh compiles this file both ways). */
#include "signalr.h"
#include "signalr.h" /* the include guard makes the second one a no-op */

#ifdef __cplusplus
#include <cstring>
#else
#include <string.h>
#endif

int main(void) {
    /* Uses a few declarations so that they are really parsed, not just skipped. */
    signalr_result rc = SIGNALR_RESULT_OK;
    signalr_completion_callback done = 0;
    signalr_userdata_free release = 0;
    uint32_t state = signalr_connection_get_state(0);
    (void)done;
    (void)release;
    return (rc == SIGNALR_RESULT_OK && state == SIGNALR_CONNECTION_STATE_DISCONNECTED &&
            strcmp(signalr_version(), SIGNALR_VERSION) == 0)
               ? 0
               : 1;
}
