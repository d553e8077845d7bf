using System;

namespace SignalR.Native
{
    /// <summary>The C API's status codes (<c>signalr_result</c>); values never change.</summary>
    public enum ResultCode : uint
    {
        Ok = 0,
        InvalidArgument = 1,
        NullParameter = 2,
        InvalidUtf8 = 3,
        InvalidJson = 4,
        InvalidState = 5,
        HubError = 6,
        ConnectionClosed = 7,
        Canceled = 8,
        Timeout = 9,
        NegotiationFailed = 10,
        TransportFailed = 11,
        ProtocolError = 12,
        HandshakeFailed = 13,
        Unauthorized = 14,
        WouldDeadlock = 15,
        Panic = 16,
        BufferTooSmall = 17,
        Internal = 18,
    }

    /// <summary>A failure reported by the native library; <see cref="Code"/> says which kind.</summary>
    public class SignalRException : Exception
    {
        public ResultCode Code { get; }

        public SignalRException(ResultCode code, string message) : base(message) { Code = code; }

        public SignalRException(ResultCode code, string message, Exception inner) : base(message, inner) { Code = code; }

        internal static SignalRException FromResult(uint code, string message)
        {
            var rc = (ResultCode)code;
            if (string.IsNullOrEmpty(message)) message = ResultName(code);
            if (rc == ResultCode.HubError) return new HubException(message);
            return new SignalRException(rc, message);
        }

        /// <summary>The exception for a synchronous failure: reads the thread-local message, so
        /// call it right after the failing C call, on the same thread.</summary>
        internal static SignalRException Last(uint code)
        {
            return FromResult(code, Utf8.DecodeNulTerminated(NativeMethods.signalr_last_error_message()));
        }

        internal static void Check(uint code)
        {
            if (code != 0) throw Last(code);
        }

        internal static string ResultName(uint code)
        {
            return Utf8.DecodeNulTerminated(NativeMethods.signalr_result_name(code)) ?? ("result " + code);
        }
    }

    /// <summary>The hub method failed on the server; <see cref="Exception.Message"/> is the
    /// server's text verbatim.</summary>
    public class HubException : SignalRException
    {
        public HubException(string message) : base(ResultCode.HubError, message) { }
    }
}
