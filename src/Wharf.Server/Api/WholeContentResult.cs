using Microsoft.Net.Http.Headers;

namespace Wharf.Server.Api;

/// <summary>
/// A file's whole content, for a GET without <c>Range</c> or conditional headers (those go to the framework's
/// <c>FileStreamHttpResult</c>, which sends the same headers on its 200). Each read goes straight into the response
/// pipe's memory, 1 MiB at a time; the framework's copy reads 64 KiB into a buffer of its own and copies that into
/// the pipe, and served about half as fast (docs/benchmarks.md). A download holds at most one read in the pipe.
/// </summary>
internal sealed class WholeContentResult(Stream content, string contentType, DateTimeOffset lastModified, EntityTagHeaderValue? entityTag)
    : IResult
{
    internal const int ReadBytes = 1024 * 1024;

    /// <summary>Whether the request asks for nothing but the whole content.</summary>
    public static bool Serves(HttpRequest request)
    {
        var headers = request.Headers;
        return headers.Range.Count == 0 && headers.IfRange.Count == 0 && headers.IfMatch.Count == 0
            && headers.IfNoneMatch.Count == 0 && headers.IfModifiedSince.Count == 0 && headers.IfUnmodifiedSince.Count == 0;
    }

    public async Task ExecuteAsync(HttpContext context)
    {
        await using var stream = content;
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = contentType;
        response.ContentLength = stream.Length;
        var headers = response.GetTypedHeaders();
        headers.LastModified = lastModified;
        headers.ETag = entityTag;
        response.Headers.AcceptRanges = "bytes";

        var writer = response.BodyWriter;
        var cancellationToken = context.RequestAborted;
        try
        {
            while (true)
            {
                int read = await stream.ReadAsync(writer.GetMemory(ReadBytes), cancellationToken);
                if (read == 0)
                {
                    return;
                }
                writer.Advance(read);
                var flushed = await writer.FlushAsync(cancellationToken);
                if (flushed.IsCompleted || flushed.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away; what was sent is all it gets, and the connection is closed.
            context.Abort();
        }
    }
}
