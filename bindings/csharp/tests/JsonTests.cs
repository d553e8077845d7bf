using System;
using System.Collections.Generic;
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

        [Test]
        public void CallBatchLocatesCallsAndArgumentsInOnePass()
        {
            var types2 = new[] { typeof(int), typeof(string) };
            var b = CallBatch.Parse(" [ [1,\"a\"] , [ 2 , \"b,]\\\"[\" ],[],[[1,{\"x\":\"}]\"}],{\"y\":[]},null ,true,-1.5e3] ] ", 2);
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
            Assert.Equal(0, CallBatch.Parse("[]", 0).Count, "empty batch");
            foreach (var bad in new[] { "", "[", "[[1]", "[[1],", "[1]", "[[1,]]", "[[\"x]]", "[[1]]x", "{}" })
                Assert.ThrowsSync<FormatException>(() => CallBatch.Parse(bad, 1), "malformed: " + bad);

            var one = CallBatch.Single("[7, \"s\"]");
            Assert.Equal("[7, \"s\"]", one.CallText(0), "single call text is the text");
            a = one.ReadArgs(0, DefaultJsonSerializer.Instance, types2);
            Assert.Equal(7, (int)a[0], "single int");
            Assert.Equal("s", (string)a[1], "single string");
            var broken = CallBatch.Single("[7,");
            Assert.Equal("[7,", broken.CallText(0), "raw text needs no parse");
            Assert.ThrowsSync<FormatException>(() => broken.ReadArgs(0, DefaultJsonSerializer.Instance, types2), "malformed single");
            Assert.ThrowsSync<FormatException>(() => broken.ReadArgs(0, DefaultJsonSerializer.Instance, types2), "and again");
        }

        [Test]
        public void SerializerSpanFastPathsMatchTheFullParser()
        {
            var s = DefaultJsonSerializer.Instance;
            string text = "[-42,2147483648,12345678901234567890,\"plain\",\"es\\\"c\",null,007]";
            var b = CallBatch.Single(text);
            var parts = Json.SplitArray(text);
            var types = new[] { typeof(int), typeof(long), typeof(double), typeof(string), typeof(string), typeof(string), typeof(int) };
            object[] fast = b.ReadArgs(0, s, types);
            for (int i = 0; i < parts.Count; i++)
                Assert.Equal(s.Deserialize(parts[i], types[i]), fast[i], "argument " + i);
            Assert.ThrowsSync<OverflowException>(() => CallBatch.Single("[2147483648]").ReadArgs(0, s, new[] { typeof(int) }), "int overflow");
            Assert.ThrowsSync<FormatException>(() => CallBatch.Single("[1.5]").ReadArgs(0, s, new[] { typeof(long) }), "not an integer");
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
