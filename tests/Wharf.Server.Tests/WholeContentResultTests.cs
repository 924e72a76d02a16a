using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;
using Wharf.Server.Api;

namespace Wharf.Server.Tests;

/// <summary>
/// The whole-content download path in-process: which requests it serves, what it writes, and that it always disposes
/// the content and aborts on a client that went away. (The functional tests hold its headers to the framework's.)
/// </summary>
public sealed class WholeContentResultTests
{
    [Theory]
    [InlineData("Range", "bytes=0-1")]
    [InlineData("If-Range", "\"abc\"")]
    [InlineData("If-Match", "\"abc\"")]
    [InlineData("If-None-Match", "\"abc\"")]
    [InlineData("If-Modified-Since", "Tue, 24 Nov 2026 10:00:00 GMT")]
    [InlineData("If-Unmodified-Since", "Tue, 24 Nov 2026 10:00:00 GMT")]
    public void Range_and_conditional_requests_are_left_to_the_framework(string header, string value)
    {
        var context = new DefaultHttpContext();
        Assert.True(WholeContentResult.Serves(context.Request));
        context.Request.Headers[header] = value;
        Assert.False(WholeContentResult.Serves(context.Request));
    }

    [Fact]
    public async Task Writes_every_byte_with_the_headers_and_disposes_the_content()
    {
        byte[] bytes = RandomNumberGenerator.GetBytes(2 * WholeContentResult.ReadBytes + 17);
        var content = new TrackedStream(bytes);
        var body = new MemoryStream();
        var context = new DefaultHttpContext();
        context.Response.Body = body;
        var lastModified = DateTimeOffset.FromUnixTimeSeconds(1_750_000_000);

        await new WholeContentResult(content, "application/jsonl", lastModified, new EntityTagHeaderValue("\"abc\"")).ExecuteAsync(context);
        await context.Response.BodyWriter.FlushAsync();

        Assert.Equal(bytes, body.ToArray());
        Assert.Equal(200, context.Response.StatusCode);
        Assert.Equal(bytes.Length, context.Response.ContentLength);
        Assert.Equal("application/jsonl", context.Response.ContentType);
        Assert.Equal("\"abc\"", context.Response.Headers.ETag.ToString());
        Assert.Equal("bytes", context.Response.Headers.AcceptRanges.ToString());
        Assert.Equal(lastModified, context.Response.GetTypedHeaders().LastModified);
        Assert.True(content.Disposed);
    }

    [Fact]
    public async Task A_client_that_went_away_aborts_the_response_and_the_content_is_disposed()
    {
        var content = new TrackedStream(new byte[1024]);
        var lifetime = new AbortRecorder();
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpRequestLifetimeFeature>(lifetime);
        context.Response.Body = new MemoryStream();
        lifetime.Cancel();

        await new WholeContentResult(content, "application/octet-stream", DateTimeOffset.UnixEpoch, null).ExecuteAsync(context);

        Assert.True(lifetime.Aborted);
        Assert.True(content.Disposed);
        Assert.False(context.Response.Headers.ContainsKey(HeaderNames.ETag));
    }

    private sealed class TrackedStream(byte[] bytes) : MemoryStream(bytes)
    {
        public bool Disposed { get; private set; }

        public override ValueTask DisposeAsync()
        {
            Disposed = true;
            return base.DisposeAsync();
        }
    }

    private sealed class AbortRecorder : IHttpRequestLifetimeFeature
    {
        private readonly CancellationTokenSource _aborted = new();

        public CancellationToken RequestAborted { get => _aborted.Token; set => throw new NotSupportedException(); }

        public bool Aborted { get; private set; }

        public void Cancel() => _aborted.Cancel();

        public void Abort() => Aborted = true;
    }
}
