using System;
using System.Collections.Generic;
using System.Text;
using System.Threading.Tasks;

namespace SignalR.Native.Tests
{
    /// <summary>The wrapper's own JSON helpers (no server needed).</summary>
    internal sealed class JsonTests
    {
        [Test]
        public void SplitArrayKeepsNestedValuesWhole()
        {
            var parts = Json.SplitArray(" [ 1 , \"a,]\\\"b\" ,{\"x\":[1,{\"y\":\"}\"}]}, [ ], null,true ] ");
            Assert.SequenceEqual(new List<string> { "1", "\"a,]\\\"b\"", "{\"x\":[1,{\"y\":\"}\"}]}", "[ ]", "null", "true" }, parts, "parts");
            Assert.Equal(0, Json.SplitArray("[]").Count, "empty");
            Assert.ThrowsSync<FormatException>(() => Json.SplitArray("{\"a\":1}"), "not an array");
            Assert.ThrowsSync<FormatException>(() => Json.SplitArray("[1,2"), "unterminated");
        }

        // CallBatch reads the UTF-8 bytes the library hands over.
        private static CallBatch Batch(string json, int expected) { return CallBatch.Parse(Encoding.UTF8.GetBytes(json), expected); }

        private static CallBatch One(string json) { return CallBatch.Single(Encoding.UTF8.GetBytes(json)); }

        // Written as escapes so this file's own encoding cannot matter: 2-, 3- and 4-byte UTF-8
        // (the last a surrogate pair in .NET).
        private const string E = "\u00e9", Euro = "\u20ac", Emoji = "\U0001F600";

        [Test]
        public void CallBatchLocatesCallsAndArgumentsInOnePass()
        {
            var types2 = new[] { typeof(int), typeof(string) };
            var b = Batch(" [ [1,\"a\"] , [ 2 , \"b,]\\\"[\" ],[],[[1,{\"x\":\"}]\"}],{\"y\":[]},null ,true,-1.5e3] ] ", 2);
            Assert.Equal(4, b.Count, "calls (more than the hint)");
            Assert.Equal("[1,\"a\"]", b.CallText(0), "call 0 text");
            Assert.Equal("[ 2 , \"b,]\\\"[\" ]", b.CallText(1), "call 1 text, verbatim");
            Assert.Equal("[]", b.CallText(2), "empty call");
            object[] a = b.ReadArgs(1, DefaultJsonSerializer.Instance, types2);
            Assert.Equal(2, (int)a[0], "int");
            Assert.Equal("b,]\"[", (string)a[1], "escaped string");
            Assert.Equal(0, b.ReadArgs(2, DefaultJsonSerializer.Instance, new Type[0]).Length, "no arguments");
            var any = new[] { typeof(object), typeof(object), typeof(object), typeof(bool), typeof(double) };
            a = b.ReadArgs(3, DefaultJsonSerializer.Instance, any);
            Assert.Equal("[1,{\"x\":\"}]\"}]", (string)a[0], "nested array, raw");
            Assert.Equal("{\"y\":[]}", (string)a[1], "object, raw");
            Assert.Equal(null, a[2], "null");
            Assert.Equal(true, (bool)a[3], "bool");
            Assert.Equal(-1500.0, (double)a[4], "double");
            var e = Assert.ThrowsSync<FormatException>(() => b.ReadArgs(0, DefaultJsonSerializer.Instance, new[] { typeof(int) }), "arity");
            Assert.Equal("expected 1 argument(s), got 2: [1,\"a\"]", e.Message, "arity message");
            Assert.Equal(0, Batch("[]", 0).Count, "empty batch");

            var one = One("[7, \"s\"]");
            Assert.Equal("[7, \"s\"]", one.CallText(0), "single call text is the text");
            a = one.ReadArgs(0, DefaultJsonSerializer.Instance, types2);
            Assert.Equal(7, (int)a[0], "single int");
            Assert.Equal("s", (string)a[1], "single string");
            var broken = One("[7,");
            Assert.Equal("[7,", broken.CallText(0), "raw text needs no parse");
            Assert.ThrowsSync<FormatException>(() => broken.ReadArgs(0, DefaultJsonSerializer.Instance, types2), "malformed single");
            Assert.ThrowsSync<FormatException>(() => broken.ReadArgs(0, DefaultJsonSerializer.Instance, types2), "and again");
        }

        [Test]
        public void CallBatchNamesWhatIsMalformed()
        {
            var cases = new[]
            {
                "", "expected a JSON array of calls",
                "{}", "expected a JSON array of calls",
                "[", "expected a call's argument array",
                "[1]", "expected a call's argument array",
                "[[1]", "unterminated batch",
                "[[[1,2]]", "unterminated batch",
                "[[{\"a\":\"}\"]]", "unterminated batch",
                "[[1],", "expected a call's argument array",
                "[[1] [2]]", "expected ',' or ']' after a call",
                "[[1,]]", "expected a value",
                "[[,1]]", "expected a value",
                "[[1 2]]", "expected ',' or ']' after an argument",
                "[[\"x]]", "unterminated string",
                "[[\"abcdefghijklmnopqrstuvwxyz", "unterminated string",   // ends inside an eight-byte run
                "[[\"abc\\", "unterminated string",                       // ends on a backslash
                "[[\"abcdefgh\\\"]]", "unterminated string",               // the last quote is escaped
                "[[\"" + E + Euro + Emoji, "unterminated string",
                "[[1]]x", "text after the batch",
                "[[]]]", "text after the batch",
            };
            for (int i = 0; i < cases.Length; i += 2)
            {
                string bad = cases[i];
                var e = Assert.ThrowsSync<FormatException>(() => Batch(bad, 1), "malformed: " + bad);
                Assert.Equal("malformed call arguments: " + cases[i + 1], e.Message, "message for " + bad);
            }
            for (int len = 0; len <= 24; len++)   // the eight-byte runs may end at the very end
            {
                string bad = "[[\"" + new string('x', len);
                var e = Assert.ThrowsSync<FormatException>(() => Batch(bad, 1), "unterminated: " + bad);
                Assert.Equal("malformed call arguments: unterminated string", e.Message, "message for " + bad);
            }
            var types = new[] { typeof(int) };
            var f = Assert.ThrowsSync<FormatException>(() => One(" [1] x").ReadArgs(0, DefaultJsonSerializer.Instance, types), "after a single call");
            Assert.Equal("malformed call arguments: text after the arguments", f.Message, "single: message");
            f = Assert.ThrowsSync<FormatException>(() => One("[\"a\" \"b\"]").ReadArgs(0, DefaultJsonSerializer.Instance, types), "two strings");
            Assert.Equal("malformed call arguments: expected ',' or ']' after an argument", f.Message, "single: message 2");
        }

        [Test]
        public void CallBatchKeepsMultiByteUtf8Whole()
        {
            var s = DefaultJsonSerializer.Instance;
            // Multi-byte characters next to quotes, backslashes and delimiters, in keys and values.
            string call0 = "[\"" + E + "\",\"" + Euro + "\\\"" + Emoji + "\",{\"" + Emoji + "\":[\"]\",\"" + E + "\"]},\"x" + Emoji + "\"]";
            string call1 = "[ \"" + Euro + "\" , 1 ,\"" + E + "\\\\\",\"" + Emoji + E + Euro + Emoji + "\"]";
            var b = Batch("[" + call0 + "," + call1 + "]", 2);
            Assert.Equal(2, b.Count, "calls");
            Assert.Equal(call0, b.CallText(0), "call 0 text");
            Assert.Equal(call1, b.CallText(1), "call 1 text");
            object[] a = b.ReadArgs(0, s, new[] { typeof(string), typeof(string), typeof(object), typeof(string) });
            Assert.Equal(E, (string)a[0], "2-byte");
            Assert.Equal(Euro + "\"" + Emoji, (string)a[1], "escape between multi-byte characters");
            Assert.Equal("{\"" + Emoji + "\":[\"]\",\"" + E + "\"]}", (string)a[2], "object, raw");
            Assert.Equal("x" + Emoji, (string)a[3], "4-byte before the quote");
            a = b.ReadArgs(1, s, new[] { typeof(string), typeof(int), typeof(string), typeof(object) });
            Assert.Equal(Euro, (string)a[0], "3-byte");
            Assert.Equal(1, (int)a[1], "int after multi-byte text");
            Assert.Equal(E + "\\", (string)a[2], "escaped backslash after a 2-byte character");
            Assert.Equal(Emoji + E + Euro + Emoji, (string)a[3], "untyped string");

            var one = One("[\"" + Emoji + "\",\"" + Euro + "\"]");
            a = one.ReadArgs(0, s, new[] { typeof(string), typeof(string) });
            Assert.Equal(Emoji, (string)a[0], "single: 4-byte");
            Assert.Equal(Euro, (string)a[1], "single: 3-byte");
            Assert.Equal("[\"" + Emoji + "\",\"" + Euro + "\"]", one.CallText(0), "single: text");
        }

        [Test]
        public void CallBatchFindsStringEndsAtEveryOffset()
        {
            // The string skip tests eight aligned bytes at a time: put each kind of byte that
            // ends or interrupts a run at every position of a string, shifted by 0-8 bytes.
            var s = DefaultJsonSerializer.Instance;
            var specials = new[] { "\\\"", "\\\\", "\\n", E, Emoji };
            var values = new[] { "\"", "\\", "\n", E, Emoji };
            var types = new[] { typeof(string), typeof(int), typeof(object) };
            for (int pad = 0; pad <= 8; pad++)
                for (int len = 0; len <= 20; len++)
                    for (int at = 0; at <= len; at++)
                        for (int k = 0; k < specials.Length; k++)
                        {
                            string head = new string('x', at), tail = new string('y', len - at);
                            string call = "[" + new string(' ', pad) + "\"" + head + specials[k] + tail + "\"," + len + ",\"" + tail + "\"]";
                            var b = Batch("[" + call + "]", 1);
                            string what = call + ": ";
                            Assert.Equal(call, b.CallText(0), what + "text");
                            object[] a = b.ReadArgs(0, s, types);
                            Assert.Equal(head + values[k] + tail, (string)a[0], what + "string");
                            Assert.Equal(len, (int)a[1], what + "int after it");
                            Assert.Equal(tail, (string)a[2], what + "next string");
                        }
        }

        [Test]
        public void CallBatchDecodesInvalidUtf8AsTheWholeTextWould()
        {
            // The library sends valid UTF-8; were it not to, each argument still comes out as
            // cutting the decoded whole would give (U+FFFD for what cannot be decoded), since
            // ranges start and end at ASCII bytes.
            var bytes = new List<byte>();
            Action<string> text = t => bytes.AddRange(Encoding.UTF8.GetBytes(t));
            text("[[\"a"); bytes.Add(0xFF); text("b\",\"c"); bytes.Add(0xE2); bytes.Add(0x82);
            text("\",\"d"); bytes.Add(0xF0); bytes.Add(0x9F); text("\"]]");
            string whole = Encoding.UTF8.GetString(bytes.ToArray());
            string call = whole.Substring(1, whole.Length - 2);
            var b = CallBatch.Parse(bytes.ToArray(), 1);
            Assert.Equal(call, b.CallText(0), "call text");
            var types = new[] { typeof(string), typeof(string), typeof(string) };
            object[] a = b.ReadArgs(0, DefaultJsonSerializer.Instance, types);
            List<string> parts = Json.SplitArray(call);
            for (int i = 0; i < 3; i++)
            {
                string expected = (string)DefaultJsonSerializer.Instance.Deserialize(parts[i], typeof(string));
                Assert.True(expected.IndexOf('\uFFFD') > 0, "replacement in " + expected);
                Assert.Equal(expected, (string)a[i], "argument " + i);
            }
        }

        [Test]
        public void SerializerSpanFastPathsMatchTheFullParser()
        {
            var s = DefaultJsonSerializer.Instance;
            string text = "[-42,2147483648,12345678901234567890,\"plain\",\"es\\\"c\",null,007,-2147483648,999999999999999999,"
                + "9223372036854775807,-9223372036854775808,\"" + Euro + "\"]";
            var b = One(text);
            var parts = Json.SplitArray(text);
            var types = new[] { typeof(int), typeof(long), typeof(double), typeof(string), typeof(string), typeof(string), typeof(int),
                typeof(int), typeof(long), typeof(long), typeof(long), typeof(string) };
            object[] fast = b.ReadArgs(0, s, types);
            Assert.Equal(parts.Count, fast.Length, "arguments");
            for (int i = 0; i < parts.Count; i++)
                Assert.Equal(s.Deserialize(parts[i], types[i]), fast[i], "argument " + i);
            Assert.Equal(long.MinValue, (long)fast[10], "long.MinValue");
            Assert.ThrowsSync<OverflowException>(() => One("[2147483648]").ReadArgs(0, s, new[] { typeof(int) }), "int overflow");
            Assert.ThrowsSync<OverflowException>(() => One("[-2147483649]").ReadArgs(0, s, new[] { typeof(int) }), "negative int overflow");
            Assert.ThrowsSync<OverflowException>(() => One("[9223372036854775808]").ReadArgs(0, s, new[] { typeof(long) }), "long overflow");
            Assert.ThrowsSync<FormatException>(() => One("[1.5]").ReadArgs(0, s, new[] { typeof(long) }), "not an integer");
            Assert.ThrowsSync<FormatException>(() => One("[\"" + Euro + "\"]").ReadArgs(0, s, new[] { typeof(int) }), "a string is no integer");
        }

        [Test]
        public void DefaultSerializerRoundTrips()
        {
            var s = DefaultJsonSerializer.Instance;
            Assert.Equal("\"a\\\"b\\n\\u0001\"", s.Serialize("a\"b\n\u0001", typeof(string)), "string");
            Assert.Equal("a\"b\n\u0001", (string)s.Deserialize("\"a\\\"b\\n\\u0001\"", typeof(string)), "string back");
            Assert.Equal("1.5", s.Serialize(1.5, typeof(double)), "double");
            Assert.Equal("null", s.Serialize(null, typeof(Person)), "null");
            Assert.Equal(null, s.Deserialize("null", typeof(Person)), "null back");
            Assert.Equal(null, s.Deserialize("null", typeof(int?)), "nullable");
            Assert.Equal(7L, s.Deserialize("7", typeof(object)), "untyped integer");
            Assert.Equal("[1,2]", s.Deserialize("[1,2]", typeof(object)), "untyped array as JSON");
            var p = (Person)s.Deserialize(s.Serialize(new Person { Name = "Z", Age = 1, Tags = new List<string>() }, typeof(Person)), typeof(Person));
            Assert.Equal("Z", p.Name, "class round trip");
        }
    }
}
