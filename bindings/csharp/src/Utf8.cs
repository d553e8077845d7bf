using System;
using System.Runtime.InteropServices;
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

        // Decoding is lenient (Encoding.UTF8: invalid sequences become U+FFFD); the library only
        // hands over valid UTF-8. Decoding a range that starts and ends at ASCII bytes gives the
        // same text as decoding the whole and cutting it there: no sequence spans such a border.
        internal static unsafe string Decode(IntPtr p, UIntPtr len)
        {
            if (p == IntPtr.Zero) return null;
            return Encoding.UTF8.GetString((byte*)p, Length(len));
        }

        /// <summary>Text of <c>utf8[start..end)</c>.</summary>
        internal static string Decode(byte[] utf8, int start, int end)
        {
            return Encoding.UTF8.GetString(utf8, start, end - start);
        }

        /// <summary>A copy of borrowed bytes, to keep after the callback returns; null for NULL.</summary>
        internal static byte[] Copy(IntPtr p, UIntPtr len)
        {
            if (p == IntPtr.Zero) return null;
            var bytes = new byte[Length(len)];
            Marshal.Copy(p, bytes, 0, bytes.Length);
            return bytes;
        }

        private static int Length(UIntPtr len)
        {
            ulong n = len.ToUInt64();
            if (n > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(len), "string too long");
            return (int)n;
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
