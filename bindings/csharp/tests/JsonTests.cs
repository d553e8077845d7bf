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
