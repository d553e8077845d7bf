using System;
using System.Runtime.InteropServices;

namespace SignalR.Native
{
    // The whole P/Invoke surface of the C API (include/signalr.h), in header order. Strings go in
    // as NUL-terminated UTF-8 byte arrays (see Utf8.Encode); strings come back as (pointer, length)
    // pairs borrowed for the duration of a callback. size_t is UIntPtr, C bool is I1.
    internal static class NativeMethods
    {
        internal const string Lib = "signalr_native";

        // ---- callback shapes (userdata first, as every typedef in the header) ----
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void UserdataFree(IntPtr userdata);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogCallback(IntPtr userdata, uint level,
            IntPtr target, UIntPtr targetLen, IntPtr message, UIntPtr messageLen);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void CompletionCallback(IntPtr userdata, uint result,
            IntPtr error, UIntPtr errorLen, IntPtr json, UIntPtr jsonLen);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void HandlerCallback(IntPtr userdata,
            IntPtr method, UIntPtr methodLen, IntPtr argsJson, UIntPtr argsLen);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void BatchHandlerCallback(IntPtr userdata,
            IntPtr method, UIntPtr methodLen, IntPtr callsJson, UIntPtr callsLen, UIntPtr count);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void InvocationHandlerCallback(IntPtr userdata,
            IntPtr method, UIntPtr methodLen, IntPtr argsJson, UIntPtr argsLen, IntPtr responder);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void StreamItemCallback(IntPtr userdata, IntPtr json, UIntPtr jsonLen);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void StateChangedCallback(IntPtr userdata, uint oldState, uint newState);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void ErrorEventCallback(IntPtr userdata, uint result, IntPtr error, UIntPtr errorLen);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void ReconnectedCallback(IntPtr userdata, IntPtr connectionId, UIntPtr len);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void AccessTokenCallback(IntPtr userdata, IntPtr request);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate long ReconnectPolicyCallback(IntPtr userdata, ulong previousRetryCount,
            ulong elapsedMs, IntPtr reason, UIntPtr reasonLen);

        // ---- plumbing ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr signalr_last_error_message();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr signalr_result_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void signalr_string_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr signalr_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_log_set_callback(LogCallback cb, IntPtr ud, UserdataFree udFree, uint minLevel);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_log_set_level(uint level);

        // ---- builder (single owner) ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_new(byte[] url, out BuilderHandle builder);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_transports(BuilderHandle b, uint mask);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_skip_negotiation(BuilderHandle b, [MarshalAs(UnmanagedType.I1)] bool skip);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_add_header(BuilderHandle b, byte[] name, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_access_token_provider(BuilderHandle b,
            AccessTokenCallback cb, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_protocol(BuilderHandle b, uint protocol);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_http_timeout_ms(BuilderHandle b, ulong ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_server_timeout_ms(BuilderHandle b, ulong ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_keep_alive_interval_ms(BuilderHandle b, ulong ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_handshake_timeout_ms(BuilderHandle b, ulong ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_max_message_size(BuilderHandle b, UIntPtr bytes);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_automatic_reconnect(BuilderHandle b, ulong[] delaysMs, UIntPtr count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_reconnect_policy(BuilderHandle b,
            ReconnectPolicyCallback cb, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_stateful_reconnect(BuilderHandle b, [MarshalAs(UnmanagedType.I1)] bool enabled);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_set_stateful_reconnect_buffer_size(BuilderHandle b, UIntPtr bytes);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_add_trusted_ca_pem(BuilderHandle b, byte[] pem, UIntPtr len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_add_trusted_ca_file(BuilderHandle b, byte[] path);

        // Consumes the builder even on failure: the caller marks its handle invalid before the call.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_builder_build(IntPtr b, out ConnectionHandle connection);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void signalr_builder_free(IntPtr b);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_token_request_complete(IntPtr request, byte[] token, byte[] error);

        // ---- connection (any thread) ----
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_start(ConnectionHandle c, CompletionCallback done, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_stop(ConnectionHandle c, CompletionCallback done, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_invoke(ConnectionHandle c, byte[] method, byte[] argsJson,
            CompletionCallback done, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_send(ConnectionHandle c, byte[] method, byte[] argsJson,
            CompletionCallback done, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_stream(ConnectionHandle c, byte[] method, byte[] argsJson,
            StreamItemCallback onItem, CompletionCallback done, IntPtr ud, UserdataFree udFree, out StreamHandle stream);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_stream_cancel(StreamHandle s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void signalr_stream_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_invoke_with_uploads(ConnectionHandle c, byte[] method, byte[] argsJson,
            UIntPtr uploadCount, [Out] IntPtr[] outUploads, CompletionCallback done, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_send_with_uploads(ConnectionHandle c, byte[] method, byte[] argsJson,
            UIntPtr uploadCount, [Out] IntPtr[] outUploads, CompletionCallback done, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_stream_with_uploads(ConnectionHandle c, byte[] method, byte[] argsJson,
            UIntPtr uploadCount, [Out] IntPtr[] outUploads, StreamItemCallback onItem, CompletionCallback done,
            IntPtr ud, UserdataFree udFree, out StreamHandle stream);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_upload_write(UploadHandle u, byte[] itemJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_upload_complete(UploadHandle u);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_upload_complete_with_error(UploadHandle u, byte[] error);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void signalr_upload_free(IntPtr u);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on(ConnectionHandle c, byte[] method,
            HandlerCallback cb, IntPtr ud, UserdataFree udFree, out ulong handlerId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on_batch(ConnectionHandle c, byte[] method,
            BatchHandlerCallback cb, IntPtr ud, UserdataFree udFree, out ulong handlerId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on_invocation(ConnectionHandle c, byte[] method,
            InvocationHandlerCallback cb, IntPtr ud, UserdataFree udFree, out ulong handlerId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_off(ConnectionHandle c, byte[] method);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_remove_handler(ConnectionHandle c, ulong handlerId);

        // The responder is consumed by complete/complete_with_error (the caller marks its handle
        // invalid before the call) or released by free.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_responder_complete(IntPtr r, byte[] resultJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_responder_complete_with_error(IntPtr r, byte[] error);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void signalr_responder_free(IntPtr r);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on_state_changed(ConnectionHandle c,
            StateChangedCallback cb, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on_closed(ConnectionHandle c,
            ErrorEventCallback cb, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on_reconnecting(ConnectionHandle c,
            ErrorEventCallback cb, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_on_reconnected(ConnectionHandle c,
            ReconnectedCallback cb, IntPtr ud, UserdataFree udFree);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_get_state(ConnectionHandle c);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_get_connection_id(ConnectionHandle c, out IntPtr id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint signalr_connection_get_transport(ConnectionHandle c);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void signalr_connection_free(IntPtr c);
    }
}
