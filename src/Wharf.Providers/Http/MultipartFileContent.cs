using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Wharf.Providers.Http;

/// <summary>
/// A Files API upload (<c>multipart/form-data</c> with <c>purpose</c> and <c>file</c>), written straight from the
/// given stream with a known length: nothing of the file is buffered. The upload's <see cref="UpstreamDeadline"/>
/// bounds each write (restarted before it, stopped while the file is read), so an upstream that stops reading the
/// body fails the upload (its token, linked into the send's, cancels the write) while a large file takes what it
/// takes; after the last byte it is armed once more, for the answer.
/// </summary>
internal sealed class MultipartFileContent : HttpContent
{
    /// <summary>The size of the pieces the file is copied in.</summary>
    private const int ChunkBytes = 64 * 1024;

    private readonly Stream _file;
    private readonly long _fileLength;
    private readonly byte[] _head;
    private readonly byte[] _tail;
    private readonly UpstreamDeadline _progress;

    /// <param name="purpose">The <c>purpose</c> field; null for a Files API that takes none (Anthropic's).</param>
    public MultipartFileContent(Stream file, long fileLength, string filename, string? purpose, string? contentType, UpstreamDeadline progress)
    {
        _file = file;
        _fileLength = fileLength;
        _progress = progress;
        string boundary = "wharf-" + Guid.NewGuid().ToString("N");
        _head = Encoding.UTF8.GetBytes(
            (purpose is null ? "" : $"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n") +
            $"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{Quoted(filename)}\"\r\n" +
            $"Content-Type: {(string.IsNullOrEmpty(contentType) || contentType.Any(char.IsControl) ? "application/octet-stream" : contentType)}\r\n\r\n");
        _tail = Encoding.UTF8.GetBytes($"\r\n--{boundary}--\r\n");
        Headers.ContentType = new MediaTypeHeaderValue("multipart/form-data");
        Headers.ContentType.Parameters.Add(new NameValueHeaderValue("boundary", boundary));
    }

    /// <summary>A filename inside the quoted parameter as HTML's form encoding writes it: <c>"</c>, CR and LF percent-encoded, UTF-8 kept.</summary>
    private static string Quoted(string filename) =>
        filename.Replace("\"", "%22", StringComparison.Ordinal).Replace("\r", "%0D", StringComparison.Ordinal).Replace("\n", "%0A", StringComparison.Ordinal);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await WriteAsync(stream, _head, cancellationToken);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            while (true)
            {
                // The file's own pace (a client's upload, a disk) is not the upstream's: no deadline while it is read.
                _progress.Disarm();
                int read = await _file.ReadAsync(buffer.AsMemory(0, ChunkBytes), cancellationToken);
                if (read == 0)
                {
                    break;
                }
                await WriteAsync(stream, buffer.AsMemory(0, read), cancellationToken);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        await WriteAsync(stream, _tail, cancellationToken);
        _progress.Arm();
        await stream.FlushAsync(cancellationToken);
        // From the last byte sent, the wait for the answer.
        _progress.Arm();
    }

    /// <summary>One write, which must end within the timeout.</summary>
    private async Task WriteAsync(Stream stream, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        _progress.Arm();
        await stream.WriteAsync(bytes, cancellationToken);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = _head.Length + _fileLength + _tail.Length;
        return true;
    }
}
