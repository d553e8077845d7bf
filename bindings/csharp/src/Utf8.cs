using System;
using System.Text;

namespace SignalR.Native
{
    // Strings cross the boundary as UTF-8: NUL-terminated arrays going in, (pointer, length)
    // pairs borrowed for one callback coming out (copied at once, as the C API requires).
    internal static class Utf8
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        internal static byte[] Encode(string s)
        {
            if (s == null) return null;
            int n = Strict.GetByteCount(s);
            var bytes = new byte[n + 1];
            Strict.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        internal static unsafe string Decode(IntPtr p, UIntPtr len)
        {
            if (p == IntPtr.Zero) return null;
            ulong n = len.ToUInt64();
            if (n > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(len), "string too long");
            return Encoding.UTF8.GetString((byte*)p, (int)n);
        }

        /// <summary>Reads a NUL-terminated string the library owns (static or thread-local).</summary>
        internal static unsafe string DecodeNulTerminated(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            byte* b = (byte*)p;
            int n = 0;
            while (b[n] != 0) n++;
            return Encoding.UTF8.GetString(b, n);
        }

        /// <summary>Copies and frees a string the caller owns (signalr_string_free).</summary>
        internal static string TakeOwned(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            try { return DecodeNulTerminated(p); }
            finally { NativeMethods.signalr_string_free(p); }
        }
    }
}
