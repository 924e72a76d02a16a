using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Wharf.Providers.Http;

/// <summary>
/// A Files API upload (<c>multipart/form-data</c> with <c>purpose</c> and <c>file</c>), written straight from the
/// given stream with a known length: nothing of the file is buffered. <paramref name="sent"/> runs once the last
/// byte is written, so the provider's timeout counts from there and not during the upload.
/// </summary>
internal sealed class MultipartFileContent : HttpContent
{
    private readonly Stream _file;
    private readonly long _fileLength;
    private readonly byte[] _head;
    private readonly byte[] _tail;
    private readonly Action _sent;

    public MultipartFileContent(Stream file, long fileLength, string filename, string purpose, string? contentType, Action sent)
    {
        _file = file;
        _fileLength = fileLength;
        _sent = sent;
        string boundary = "wharf-" + Guid.NewGuid().ToString("N");
        _head = Encoding.UTF8.GetBytes(
            $"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n" +
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
        await stream.WriteAsync(_head, cancellationToken);
        await _file.CopyToAsync(stream, cancellationToken);
        await stream.WriteAsync(_tail, cancellationToken);
        await stream.FlushAsync(cancellationToken);
        _sent();
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = _head.Length + _fileLength + _tail.Length;
        return true;
    }
}
