/* Every test of the C suite, in the order main.c runs them (X-macro list). */
#ifndef SIGNALR_C_TESTS_TESTS_H
#define SIGNALR_C_TESTS_TESTS_H

#define ALL_TESTS(X) \
    X(version_and_names) \
    X(last_error_is_thread_local) \
    X(builder_null_and_invalid_arguments) \
    X(connection_null_parameters) \
    X(invalid_utf8_and_json) \
    X(wrong_state) \
    X(start_stop_async_with_state_callbacks) \
    X(lifecycle_create_start_stop_free_repeated) \
    X(invoke_async_and_blocking) \
    X(send_async_and_blocking) \
    X(streams_items_completion_cancel) \
    X(upload_streams) \
    X(handlers_on_off_remove) \
    X(batch_handler_flood_in_order_exactly_once) \
    X(batch_handler_keeps_order_with_other_handlers_and_completions) \
    X(batch_handler_removal) \
    X(batch_handler_and_client_results) \
    X(client_results) \
    X(responder_invalid_answers_and_outliving_connection) \
    X(lifecycle_close_with_error_and_reconnect) \
    X(reconnect_policy_callback) \
    X(logging_callback_and_levels) \
    X(option_headers_transports_protocol) \
    X(option_skip_negotiation) \
    X(option_access_token_provider) \
    X(option_timeouts_and_keep_alive) \
    X(option_max_message_size) \
    X(option_trusted_ca) \
    X(option_stateful_reconnect) \
    X(free_with_calls_in_flight) \
    X(free_inside_handler) \
    X(free_inside_completion) \
    X(free_inside_stream_item) \
    X(free_inside_closed_callback) \
    X(blocking_inside_callbacks_would_deadlock) \
    X(stop_with_pending_calls_and_from_inside) \
    X(free_races_with_completions) \
    X(server_gone_while_writing) \
    X(free_from_another_thread_while_calls_are_issued) \
    X(free_while_start_in_progress) \
    X(start_blocking_timeout_ends_disconnected) \
    X(send_and_stop_blocking_timeouts) \
    X(free_inside_lifecycle_callbacks) \
    X(log_callback_reentrancy_and_release) \

#define DECLARE_TEST(name) void name(void);
ALL_TESTS(DECLARE_TEST)
#undef DECLARE_TEST

#endif
