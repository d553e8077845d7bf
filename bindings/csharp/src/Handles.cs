using System;
using System.Runtime.InteropServices;
using System.Threading;
using Microsoft.Win32.SafeHandles;

namespace SignalR.Native
{
    // One SafeHandle per C handle type; ReleaseHandle calls that type's `_free`, which the C API
    // allows from any thread (the finalizer thread included) and with calls in flight.

    internal abstract class NativeHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        protected NativeHandle() : base(true) { }

        protected NativeHandle(IntPtr existing) : base(true) { SetHandle(existing); }

        private int consumed;

        /// <summary>Takes the pointer out for a C call that consumes it: returns Zero if it was
        /// already consumed or released, so a consuming call runs at most once.</summary>
        internal IntPtr Consume()
        {
            if (Interlocked.Exchange(ref consumed, 1) != 0 || IsClosed || IsInvalid) return IntPtr.Zero;
            IntPtr p = handle;
            SetHandleAsInvalid();
            return p;
        }
    }

    internal sealed class BuilderHandle : NativeHandle
    {
        protected override bool ReleaseHandle() { NativeMethods.signalr_builder_free(handle); return true; }
    }

    internal sealed class ConnectionHandle : NativeHandle
    {
        protected override bool ReleaseHandle() { NativeMethods.signalr_connection_free(handle); return true; }
    }

    internal sealed class StreamHandle : NativeHandle
    {
        protected override bool ReleaseHandle() { NativeMethods.signalr_stream_free(handle); return true; }
    }

    internal sealed class UploadHandle : NativeHandle
    {
        internal UploadHandle(IntPtr existing) : base(existing) { }
        protected override bool ReleaseHandle() { NativeMethods.signalr_upload_free(handle); return true; }
    }

    internal sealed class ResponderHandle : NativeHandle
    {
        internal ResponderHandle(IntPtr existing) : base(existing) { }
        protected override bool ReleaseHandle() { NativeMethods.signalr_responder_free(handle); return true; }
    }
}
