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
}
