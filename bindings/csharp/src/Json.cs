using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.Serialization.Json;
using System.Text;

namespace SignalR.Native
{
    /// <summary>Turns typed arguments and results into JSON text and back. The wrapper only ever
    /// talks JSON to the library (which transcodes to MessagePack when that protocol is chosen).</summary>
    public interface IJsonSerializer
    {
        /// <summary>JSON text for <paramref name="value"/> (which may be null) of declared type
        /// <paramref name="type"/>.</summary>
        string Serialize(object value, Type type);

        /// <summary>A value of <paramref name="type"/> read from JSON text.</summary>
        object Deserialize(string json, Type type);
    }

    /// <summary>The default serializer: System.Runtime.Serialization's DataContractJsonSerializer
    /// (in netstandard2.0 and Mono, no package needed), with fast paths for primitives. Plain
    /// classes are serialized by their public fields and properties; [DataContract] is honoured.
    /// <c>object</c> as a target type yields strings, numbers (long or double), booleans or null,
    /// and the raw JSON text for arrays and objects.</summary>
    public sealed class DefaultJsonSerializer : IJsonSerializer
    {
        public static readonly DefaultJsonSerializer Instance = new DefaultJsonSerializer();

        private static readonly DataContractJsonSerializerSettings Settings =
            new DataContractJsonSerializerSettings { UseSimpleDictionaryFormat = true };

        public string Serialize(object value, Type type)
        {
            if (value == null) return "null";
            if (type == null || type == typeof(object)) type = value.GetType();
            // Fast paths for the common primitives (mcs has no type patterns in switch).
            var str = value as string;
            if (str != null) return Json.Quote(str);
            if (value is bool) return (bool)value ? "true" : "false";
            if (value is int) return ((int)value).ToString(CultureInfo.InvariantCulture);
            if (value is long) return ((long)value).ToString(CultureInfo.InvariantCulture);
            if (value is double && !double.IsNaN((double)value) && !double.IsInfinity((double)value))
                return ((double)value).ToString("R", CultureInfo.InvariantCulture);
            var serializer = new DataContractJsonSerializer(type, Settings);
            using (var ms = new MemoryStream())
            {
                serializer.WriteObject(ms, value);
                return Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
            }
        }

        /// <summary>Reads the JSON value <c>utf8[start..end)</c>: integers and strings without
        /// escapes straight from the bytes, anything else as <see cref="Deserialize"/> does.
        /// <paramref name="escaped"/>: the value is a string with a backslash in it (the scanner
        /// has seen every byte of it already, so this saves a second pass).</summary>
        internal object DeserializeSpan(byte[] utf8, int start, int end, bool escaped, Type type)
        {
            int len = end - start;
            if (type == typeof(string))
            {
                if (len >= 2 && utf8[start] == '"' && !escaped)
                    return Utf8.Decode(utf8, start + 1, end - 1);
            }
            else if (type == typeof(int) || type == typeof(long))
            {
                long v;
                if (TryParseInteger(utf8, start, end, out v))
                {
                    if (type == typeof(long)) return v;
                    if (v >= int.MinValue && v <= int.MaxValue) return (int)v;
                }
            }
            return Deserialize(Utf8.Decode(utf8, start, end), type);
        }

        // -?[0-9]{1,18}, which always fits a long; anything else is left to the full parser.
        private static bool TryParseInteger(byte[] utf8, int start, int end, out long value)
        {
            value = 0;
            int i = start;
            bool negative = i < end && utf8[i] == '-';
            if (negative) i++;
            if (i == end || end - i > 18) return false;
            for (; i < end; i++)
            {
                int d = utf8[i] - '0';
                if ((uint)d > 9) return false;
                value = value * 10 + d;
            }
            if (negative) value = -value;
            return true;
        }

        public object Deserialize(string json, Type type)
        {
            if (json == null) throw new ArgumentNullException(nameof(json));
            string t = json.Trim();
            if (t == "null" && (!type.IsValueType || Nullable.GetUnderlyingType(type) != null)) return null;
            if (type == typeof(object)) return Untyped(t);
            if (type == typeof(int)) return int.Parse(t, NumberStyles.Integer, CultureInfo.InvariantCulture);
            if (type == typeof(long)) return long.Parse(t, NumberStyles.Integer, CultureInfo.InvariantCulture);
            if (type == typeof(double)) return double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture);
            if (type == typeof(bool) && (t == "true" || t == "false")) return t == "true";
            if (type == typeof(string) && t.Length >= 2 && t[0] == '"' && t.IndexOf('\\') < 0)
                return t.Substring(1, t.Length - 2);
            var serializer = new DataContractJsonSerializer(type, Settings);
            using (var ms = new MemoryStream(Encoding.UTF8.GetBytes(t)))
                return serializer.ReadObject(ms);
        }

        private object Untyped(string t)
        {
            if (t.Length == 0) throw new FormatException("empty JSON text");
            switch (t[0])
            {
                case '"': return Deserialize(t, typeof(string));
                case 't': case 'f': return Deserialize(t, typeof(bool));
                case '[': case '{': return t;
                default:
                    long l;
                    if (long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out l)) return l;
                    return double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>JSON text helpers: the library takes arguments as one JSON array and hands
    /// handler arguments over as one; these split and join such arrays without parsing values.</summary>
    public static class Json
    {
        /// <summary>A JSON string literal for <paramref name="s"/>.</summary>
        public static string Quote(string s)
        {
            var sb = new StringBuilder(s.Length + 2);
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            return sb.Append('"').ToString();
        }

        /// <summary>The elements of a JSON array as JSON texts, in order.</summary>
        /// <exception cref="FormatException">the text is not a JSON array</exception>
        public static List<string> SplitArray(string json)
        {
            var items = new List<string>();
            int i = SkipSpace(json, 0);
            if (i >= json.Length || json[i] != '[') throw new FormatException("expected a JSON array");
            i = SkipSpace(json, i + 1);
            if (i < json.Length && json[i] == ']') return items;
            while (true)
            {
                int start = i, depth = 0;
                bool inString = false;
                for (; i < json.Length; i++)
                {
                    char c = json[i];
                    if (inString)
                    {
                        if (c == '\\') i++;
                        else if (c == '"') inString = false;
                    }
                    else if (c == '"') inString = true;
                    else if (c == '[' || c == '{') depth++;
                    else if (c == ']' || c == '}') { if (depth == 0) break; depth--; }
                    else if (c == ',' && depth == 0) break;
                }
                if (i >= json.Length) throw new FormatException("unterminated JSON array");
                items.Add(json.Substring(start, i - start).Trim());
                if (json[i] == ']') return items;
                i = SkipSpace(json, i + 1);
            }
        }

        internal static string JoinArray(IList<string> items)
        {
            if (items.Count == 0) return "[]";
            var sb = new StringBuilder();
            sb.Append('[');
            for (int i = 0; i < items.Count; i++)
            {
                if (i > 0) sb.Append(',');
                sb.Append(items[i]);
            }
            return sb.Append(']').ToString();
        }

        private static int SkipSpace(string s, int i)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            return i;
        }
    }

    /// <summary>Where the calls of a batch handler's JSON (<c>[[1,"a"],[2,"b"]]</c>, see
    /// signalr_batch_handler_callback) or the arguments of one call (<c>[1,"a"]</c>) lie in the
    /// UTF-8 bytes the library handed over, found in one pass without parsing values. The batch
    /// stays bytes: each argument is made from its own byte range and a call's raw JSON text is
    /// decoded only when asked for, so no string of the whole batch is ever made (for large
    /// messages that string was most of the garbage and of the decoding time). The scan looks
    /// only at ASCII bytes; the bytes of a multi-byte UTF-8 sequence are all 0x80 or more, so
    /// they can never be taken for a quote, a backslash or a delimiter.</summary>
    internal sealed class CallBatch
    {
        private readonly byte[] utf8;
        private readonly bool single;
        private bool located;
        private int count;
        private int[] calls;        // per call: start and end of its array, index of its first argument
        private int[] args;         // per argument: start, end, 1 when it is a string with an escape
        private int argCount;
        private string[] callTexts; // the calls' texts, made on first use

        private CallBatch(byte[] utf8, bool single)
        {
            this.utf8 = utf8;
            this.single = single;
        }

        /// <summary>A batch of <paramref name="expected"/> calls (a hint for the buffers).</summary>
        /// <exception cref="FormatException">the text is not a JSON array of arrays</exception>
        internal static CallBatch Parse(byte[] batch, int expected)
        {
            var b = new CallBatch(batch, false);
            b.Locate(expected);
            return b;
        }

        /// <summary>One call's arguments; located when an argument is first asked for, so a
        /// handler that only wants the raw text never pays for it.</summary>
        internal static CallBatch Single(byte[] argsJson)
        {
            return new CallBatch(argsJson, true);
        }

        /// <summary>The number of calls (1 for <see cref="Single"/>).</summary>
        internal int Count { get { return single ? 1 : count; } }

        /// <summary>The arguments of call <paramref name="call"/> as JSON array text.</summary>
        internal string CallText(int call)
        {
            if (callTexts == null) callTexts = new string[Count];
            string t = callTexts[call];
            if (t == null)
            {
                t = single ? Utf8.Decode(utf8, 0, utf8.Length) : Utf8.Decode(utf8, calls[3 * call], calls[3 * call + 1]);
                callTexts[call] = t;
            }
            return t;
        }

        /// <summary>The arguments of call <paramref name="call"/> read as <paramref name="types"/>.</summary>
        /// <exception cref="FormatException">another number of arguments (or malformed text)</exception>
        internal object[] ReadArgs(int call, IJsonSerializer serializer, Type[] types)
        {
            if (!located) Locate(1);
            int first = calls[3 * call + 2];
            int n = (call + 1 < count ? calls[3 * call + 5] : argCount) - first;
            if (n != types.Length)
                throw new FormatException("expected " + types.Length + " argument(s), got " + n + ": " + CallText(call));
            var values = new object[n];
            var fast = serializer as DefaultJsonSerializer;
            for (int k = 0; k < n; k++)
            {
                int a = 3 * (first + k), start = args[a], end = args[a + 1];
                values[k] = fast != null
                    ? fast.DeserializeSpan(utf8, start, end, args[a + 2] != 0, types[k])
                    : serializer.Deserialize(Utf8.Decode(utf8, start, end), types[k]);
            }
            return values;
        }

        // Fills calls/args; on a FormatException nothing counts as located (a single call's
        // next reader then fails the same way).
        private void Locate(int expected)
        {
            if (expected < 1) expected = 1;
            count = argCount = 0;
            calls = new int[3 * expected];
            args = new int[6 * expected];
            Scan();
            located = true;
        }

        private unsafe void Scan()
        {
            fixed (byte* p = utf8)
            {
                int n = utf8.Length;
                if (single)
                {
                    int end = Call(p, SkipSpace(p, 0, n), n);
                    if (SkipSpace(p, end, n) != n) throw Malformed("text after the arguments");
                    return;
                }
                int i = SkipSpace(p, 0, n);
                if (i >= n || p[i] != '[') throw Malformed("expected a JSON array of calls");
                i = SkipSpace(p, i + 1, n);
                if (i < n && p[i] == ']') return;
                while (true)
                {
                    i = SkipSpace(p, Call(p, i, n), n);
                    if (i >= n) throw Malformed("unterminated batch");
                    if (p[i] == ']') break;
                    if (p[i] != ',') throw Malformed("expected ',' or ']' after a call");
                    i = SkipSpace(p, i + 1, n);
                }
                if (SkipSpace(p, i + 1, n) != n) throw Malformed("text after the batch");
            }
        }

        // Records the argument array at p[i] and its elements; returns the index after it.
        private unsafe int Call(byte* p, int i, int n)
        {
            if (i >= n || p[i] != '[') throw Malformed("expected a call's argument array");
            int start = i, first = argCount;
            i = SkipSpace(p, i + 1, n);
            if (i < n && p[i] == ']') { AddCall(start, i + 1, first); return i + 1; }
            while (true)
            {
                int valueStart = i;
                bool escaped = false;
                i = SkipValue(p, i, n, ref escaped);
                AddArg(valueStart, i, escaped);
                i = SkipSpace(p, i, n);
                if (i >= n) throw Malformed("unterminated argument array");
                if (p[i] == ']') { AddCall(start, i + 1, first); return i + 1; }
                if (p[i] != ',') throw Malformed("expected ',' or ']' after an argument");
                i = SkipSpace(p, i + 1, n);
            }
        }

        private void AddCall(int start, int end, int firstArg)
        {
            if (3 * count + 3 > calls.Length) Array.Resize(ref calls, 2 * calls.Length);
            calls[3 * count] = start;
            calls[3 * count + 1] = end;
            calls[3 * count + 2] = firstArg;
            count++;
        }

        private void AddArg(int start, int end, bool escaped)
        {
            if (3 * argCount + 3 > args.Length) Array.Resize(ref args, 2 * args.Length);
            args[3 * argCount] = start;
            args[3 * argCount + 1] = end;
            args[3 * argCount + 2] = escaped ? 1 : 0;
            argCount++;
        }

        // The end of the JSON value at p[i]: a string, an array or object (nesting counted,
        // strings skipped), or a number/true/false/null (up to a delimiter). `escaped` is set
        // when the value is a string with a backslash.
        private static unsafe int SkipValue(byte* p, int i, int n, ref bool escaped)
        {
            if (i >= n) throw Malformed("expected a value");
            byte c = p[i];
            if (c == '"') return SkipString(p, i, n, ref escaped);
            if (c == '[' || c == '{')
            {
                int depth = 0;
                bool nested = false;
                for (; i < n; i++)
                {
                    c = p[i];
                    if (c == '"') i = SkipString(p, i, n, ref nested) - 1;
                    else if (c == '[' || c == '{') depth++;
                    else if ((c == ']' || c == '}') && --depth == 0) return i + 1;
                }
                throw Malformed("unterminated array or object");
            }
            int start = i;
            while (i < n && (c = p[i]) != ',' && c != ']' && c != '}' && !IsSpace(c)) i++;
            if (i == start) throw Malformed("expected a value");
            return i;
        }

        // The index after the string whose opening quote is at p[i]. Long strings are most of
        // what the scan reads, so runs of eight bytes are tested at once (a quote or a backslash
        // among them sends the loop back to single bytes); only at 8-aligned addresses, since
        // some CPUs (32-bit ARM) fault on an unaligned 64-bit load.
        private static unsafe int SkipString(byte* p, int i, int n, ref bool escaped)
        {
            for (i++; i < n; i++)
            {
                if (((ulong)(p + i) & 7) == 0)
                {
                    while (i + 8 <= n && !HasQuoteOrBackslash(*(ulong*)(p + i))) i += 8;
                    if (i >= n) break;
                }
                byte c = p[i];
                if (c == '\\') { escaped = true; i++; }
                else if (c == '"') return i + 1;
            }
            throw Malformed("unterminated string");
        }

        private const ulong Ones = 0x0101010101010101UL, Highs = 0x8080808080808080UL;

        // Whether any of the eight bytes is 0x22 or 0x5C: (x - 0x01..) & ~x & 0x80.. is non-zero
        // exactly when some byte of x is zero, whatever the byte order.
        private static bool HasQuoteOrBackslash(ulong w)
        {
            ulong q = w ^ (Ones * '"'), b = w ^ (Ones * '\\');
            return ((((q - Ones) & ~q) | ((b - Ones) & ~b)) & Highs) != 0;
        }

        private static unsafe int SkipSpace(byte* p, int i, int n)
        {
            while (i < n && IsSpace(p[i])) i++;
            return i;
        }

        private static bool IsSpace(byte c)
        {
            return c == ' ' || c == '\n' || c == '\r' || c == '\t';
        }

        private static FormatException Malformed(string what)
        {
            return new FormatException("malformed call arguments: " + what);
        }
    }
}
