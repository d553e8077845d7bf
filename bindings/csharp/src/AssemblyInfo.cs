using System.Runtime.CompilerServices;

// The tests (tests/, assembly SignalR.Native.Tests) also check internal pieces such as CallBatch.
[assembly: InternalsVisibleTo("SignalR.Native.Tests")]
