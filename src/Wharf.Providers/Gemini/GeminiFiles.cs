using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Gemini;

/// <summary>What a chat request's <c>fileData</c> part needs of a Gemini file: its URI and media type.</summary>
internal sealed record GeminiFileRef(string Name, string Uri, string MimeType, DateTimeOffset? ExpiresAt);

/// <summary>
/// Gemini's Files API. An upload is Google's resumable protocol in two requests: <c>start</c> (the size, the media type
/// and <c>{"file":{"displayName"}}</c>; the answer's <c>x-goog-upload-url</c> is the session), then one
/// <c>upload, finalize</c> at offset 0 whose body is the file, streamed from Wharf's store. Files are named
/// <c>files/{id}</c> and listed with <c>pageSize</c> and an opaque <c>pageToken</c>, which is passed back and forth
/// as the listing's cursor. Gemini deletes a file 48 hours after its upload, so a copy is checked before it is named
/// again (<see cref="IsUsableAsync"/>), and what a chat request needs of it (its URI and media type) is kept for as
/// long as the file lives.
/// </summary>
internal sealed partial class GeminiFiles(GeminiWire wire)
{
    /// <summary>What a listed file's <c>purpose</c> is said to be: Gemini's files have none, and are the user's data.</summary>
    public const string ListedPurpose = "user_data";

    /// <summary>Gemini's largest page.</summary>
    public const int MaxPageSize = 100;

    /// <summary>
    /// A copy due to expire within this is no longer named: a request (or a batch read over hours) that names it must
    /// not find it gone, so it is made again.
    /// </summary>
    public static readonly TimeSpan ExpiryMargin = TimeSpan.FromHours(1);

    /// <summary>The most references kept; past it the memory starts again (they are looked up again on demand).</summary>
    private const int MaxKnown = 4096;

    private const int ChunkBytes = 64 * 1024;

    private readonly ConcurrentDictionary<string, GeminiFileRef> _known = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="name"/> can be a Gemini file's name (<c>files/</c> and up to 40 lowercase letters, digits or dashes).</summary>
    public static bool IsFileName(string name) => FileName().IsMatch(name);

    public async Task<UpstreamOutcome<UpstreamFile>> UploadAsync(UpstreamFileUpload upload, CancellationToken cancellationToken)
    {
        string mimeType = MediaType(upload.ContentType, upload.Filename);
        var started = await StartAsync(upload.Filename, upload.Length, mimeType, cancellationToken);
        if (!started.IsOk)
        {
            return started.Failure;
        }
        var answer = await FinishAsync(started.Value, upload.Content, upload.Length, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        return answer.Value.ToUpstreamFile(upload.Purpose) is { } file ? file : UpstreamFailure.Malformed(200, "Gemini's file has no name.");
    }

    /// <summary>
    /// An upload of <paramref name="length"/> bytes that a writer produces as it goes (a translated batch input): the
    /// session is started, then the writer's bytes are sent as they are written.
    /// </summary>
    public async Task<UpstreamOutcome<GeminiFileWire>> UploadAsync(string displayName, string mimeType, long length, Stream content, CancellationToken cancellationToken)
    {
        var started = await StartAsync(displayName, length, mimeType, cancellationToken);
        return started.IsOk ? await FinishAsync(started.Value, content, length, cancellationToken) : started.Failure;
    }

    /// <summary>The <c>start</c> request: the session's address, which must be on the configured host (the key goes there next).</summary>
    private async Task<UpstreamOutcome<Uri>> StartAsync(string displayName, long length, string mimeType, CancellationToken cancellationToken)
    {
        var request = wire.NewRequest(HttpMethod.Post, wire.UploadUri);
        request.Headers.TryAddWithoutValidation("X-Goog-Upload-Protocol", "resumable");
        request.Headers.TryAddWithoutValidation("X-Goog-Upload-Command", "start");
        request.Headers.TryAddWithoutValidation("X-Goog-Upload-Header-Content-Length", length.ToString(CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("X-Goog-Upload-Header-Content-Type", mimeType);
        request.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(
            new GeminiUploadStart(new GeminiUploadMetadata(displayName)), GeminiFilesJson.Default.GeminiUploadStart))
        {
            Headers = { ContentType = new MediaTypeHeaderValue("application/json") },
        };
        var sent = await wire.SendWithinTimeoutAsync(request, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        using var response = sent.Value;
        if (!response.Headers.TryGetValues("x-goog-upload-url", out var values) || !Uri.TryCreate(values.FirstOrDefault(), UriKind.Absolute, out var session))
        {
            return UpstreamFailure.Malformed((int)response.StatusCode, "Gemini started an upload without an x-goog-upload-url.");
        }
        if (!wire.IsOnUpstream(session))
        {
            return UpstreamFailure.Malformed((int)response.StatusCode, "Gemini's upload session is on another host than the configured one.");
        }
        return session;
    }

    /// <summary>The one <c>upload, finalize</c> request: the whole file at offset 0, streamed; the answer is the file.</summary>
    private async Task<UpstreamOutcome<GeminiFileWire>> FinishAsync(Uri session, Stream content, long length, CancellationToken cancellationToken)
    {
        using var deadline = wire.NewDeadline();
        var request = wire.NewRequest(HttpMethod.Post, session);
        request.Headers.TryAddWithoutValidation("X-Goog-Upload-Command", "upload, finalize");
        request.Headers.TryAddWithoutValidation("X-Goog-Upload-Offset", "0");
        request.Content = new StreamedBody(content, length, deadline);
        deadline.Arm();
        var sent = await wire.SendAsync(request, deadline, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var answer = await wire.ReadJsonAsync(sent.Value, GeminiFilesJson.Default.GeminiFileAnswer, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        if (answer.Value.File is not { Name.Length: > 0 } file)
        {
            return UpstreamFailure.Malformed(200, "Gemini's upload answer holds no file.");
        }
        Remember(file);
        return file;
    }

    /// <summary>Deletes <c>files/{id}</c>; one Gemini does not know (404, e.g. expired) counts as deleted.</summary>
    public async Task<UpstreamOutcome<bool>> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        _known.TryRemove(name, out _);
        if (!IsFileName(name))
        {
            return true; // No Gemini file has such a name: there is nothing to delete.
        }
        var sent = await wire.SendWithinTimeoutAsync(wire.NewRequest(HttpMethod.Delete, wire.ResourceUri(name)), cancellationToken, notFoundIsAnswer: true);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        sent.Value.Dispose();
        return true;
    }

    /// <summary>The file as Gemini reports it now; null when it has none by that name (never made, expired or deleted).</summary>
    public async Task<UpstreamOutcome<GeminiFileWire?>> GetAsync(string name, CancellationToken cancellationToken)
    {
        var sent = await wire.SendWithinTimeoutAsync(wire.NewRequest(HttpMethod.Get, wire.ResourceUri(name)), cancellationToken, notFoundIsAnswer: true);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        if (sent.Value.StatusCode == HttpStatusCode.NotFound)
        {
            sent.Value.Dispose();
            _known.TryRemove(name, out _);
            return (GeminiFileWire?)null;
        }
        var file = await wire.ReadJsonAsync(sent.Value, GeminiFilesJson.Default.GeminiFileWire, cancellationToken);
        if (!file.IsOk)
        {
            return file.Failure;
        }
        Remember(file.Value);
        return file.Value;
    }

    /// <summary>
    /// Whether a recorded copy may still be named: Gemini still has it, it has not failed, and it does not expire
    /// within <see cref="ExpiryMargin"/>.
    /// </summary>
    public async Task<UpstreamOutcome<bool>> IsUsableAsync(string name, CancellationToken cancellationToken)
    {
        if (!IsFileName(name))
        {
            return false;
        }
        var file = await GetAsync(name, cancellationToken);
        if (!file.IsOk)
        {
            return file.Failure;
        }
        return file.Value is { } found && found.State != "FAILED" && !ExpiresSoon(found.ExpirationTime);
    }

    /// <summary>
    /// The URI and media type of each named file, for a chat request's <c>fileData</c> parts: from what an upload or
    /// a look-up answered, else asked of Gemini. A name Gemini does not have is the request's fault (a 400 naming
    /// the part).
    /// </summary>
    public async Task<UpstreamOutcome<IReadOnlyDictionary<string, GeminiFileRef>>> ResolveAsync(IReadOnlyList<(string Name, string Param)> names, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, GeminiFileRef>(StringComparer.Ordinal);
        foreach (var (name, param) in names)
        {
            if (found.ContainsKey(name))
            {
                continue;
            }
            if (!IsFileName(name))
            {
                return UpstreamFailure.Untranslatable(param, $"'{param}' must be a Wharf file id or a Gemini file name (files/...).");
            }
            if (_known.TryGetValue(name, out var known) && !ExpiresSoon(known.ExpiresAt))
            {
                found[name] = known;
                continue;
            }
            var file = await GetAsync(name, cancellationToken);
            if (!file.IsOk)
            {
                return file.Failure;
            }
            if (file.Value?.ToRef() is not { } reference)
            {
                return NoSuchFile(param, name);
            }
            found[name] = reference;
        }
        return found;
    }

    /// <summary>The request names a file Gemini does not have: the user's 400 naming the part, before any model call.</summary>
    internal static UpstreamFailure NoSuchFile(string param, string name) =>
        new(UpstreamFailureKind.NotAttempted, FailureCategory.RequestRejected, 400, false,
            Error: new UpstreamErrorDetail("file_not_found", $"No such file on Gemini: {name} (a Gemini file lives 48 hours).", null, param));

    public async Task<UpstreamOutcome<UpstreamFilePage>> ListAsync(UpstreamFileQuery query, CancellationToken cancellationToken)
    {
        if (query.Order is { Length: > 0 } and not "desc")
        {
            return UpstreamFailure.Untranslatable("order", "Gemini lists files in its own order only ('order' may only be 'desc').");
        }
        if (query.Purpose is { Length: > 0 })
        {
            return UpstreamFailure.Untranslatable("purpose", "Gemini's files have no purpose to filter by.");
        }
        var parameters = new StringBuilder();
        if (query.Limit is { } limit)
        {
            parameters.Append("pageSize=").Append(Math.Clamp(limit, 1, MaxPageSize).ToString(CultureInfo.InvariantCulture));
        }
        if (query.After is { Length: > 0 } token)
        {
            parameters.Append(parameters.Length == 0 ? "" : "&").Append("pageToken=").Append(Uri.EscapeDataString(token));
        }
        var answer = await wire.SendForJsonAsync(wire.NewRequest(HttpMethod.Get, wire.ResourceUri("files", parameters.ToString())),
            GeminiFilesJson.Default.GeminiFileListWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        var files = new List<UpstreamFile>();
        foreach (var item in answer.Value.Files ?? [])
        {
            if (item.ToUpstreamFile(ListedPurpose) is not { } file)
            {
                return UpstreamFailure.Malformed(200, "Gemini's file list holds a file without a name.");
            }
            files.Add(file);
        }
        string? next = string.IsNullOrEmpty(answer.Value.NextPageToken) ? null : answer.Value.NextPageToken;
        return new UpstreamFilePage(files, next is not null) { Cursor = next };
    }

    private bool ExpiresSoon(DateTimeOffset? expiresAt) => expiresAt is { } at && at - wire.Time.GetUtcNow() < ExpiryMargin;

    private void Remember(GeminiFileWire file)
    {
        if (file.ToRef() is not { } reference)
        {
            return;
        }
        if (_known.Count >= MaxKnown)
        {
            _known.Clear();
        }
        _known[reference.Name] = reference;
    }

    /// <summary>
    /// The media type Gemini is told: the one the file was stored with, else one its extension names for the kinds
    /// Gemini reads, else <c>application/octet-stream</c>.
    /// </summary>
    internal static string MediaType(string? contentType, string filename)
    {
        if (!string.IsNullOrEmpty(contentType) && contentType != "application/octet-stream" && !contentType.Any(char.IsControl))
        {
            return contentType;
        }
        return Path.GetExtension(filename).ToLowerInvariant() switch
        {
            ".pdf" => "application/pdf",
            ".txt" => "text/plain",
            ".md" => "text/markdown",
            ".csv" => "text/csv",
            ".html" or ".htm" => "text/html",
            ".json" => "application/json",
            ".jsonl" => "application/jsonl",
            ".png" => "image/png",
            ".jpg" or ".jpeg" => "image/jpeg",
            ".webp" => "image/webp",
            ".gif" => "image/gif",
            ".mp3" => "audio/mp3",
            ".wav" => "audio/wav",
            ".mp4" => "video/mp4",
            _ => "application/octet-stream",
        };
    }

    [GeneratedRegex("^files/[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")]
    private static partial Regex FileName();

    /// <summary>
    /// The bytes of an upload, written from the given stream with a known length (nothing of it buffered). The
    /// deadline bounds each write and then the wait for the answer, not the reading of the source (a client's pace).
    /// </summary>
    private sealed class StreamedBody : HttpContent
    {
        private readonly Stream _source;
        private readonly long _length;
        private readonly UpstreamDeadline _progress;

        public StreamedBody(Stream source, long length, UpstreamDeadline progress)
        {
            _source = source;
            _length = length;
            _progress = progress;
            Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
            try
            {
                long sent = 0;
                while (true)
                {
                    _progress.Disarm();
                    int read = await _source.ReadAsync(buffer.AsMemory(0, ChunkBytes), cancellationToken);
                    if (read == 0)
                    {
                        break;
                    }
                    sent += read;
                    if (sent > _length)
                    {
                        throw new IOException("The file is longer than announced.");
                    }
                    _progress.Arm();
                    await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
                if (sent != _length)
                {
                    throw new IOException("The file is shorter than announced.");
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            _progress.Arm();
            await stream.FlushAsync(cancellationToken);
            _progress.Arm();
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = _length;
            return true;
        }
    }
}

/// <summary>Gemini's <c>File</c> resource, as it is on the wire (<c>sizeBytes</c> is an int64, so a string).</summary>
internal sealed record GeminiFileWire(
    string? Name, string? DisplayName, string? MimeType, long? SizeBytes, DateTimeOffset? CreateTime, DateTimeOffset? ExpirationTime, string? Uri, string? State)
{
    /// <summary>OpenAI's status: <c>ACTIVE</c> is processed, <c>FAILED</c> error, <c>PROCESSING</c> (and anything else) uploaded.</summary>
    public UpstreamFile? ToUpstreamFile(string purpose) => string.IsNullOrEmpty(Name)
        ? null
        : new UpstreamFile(Name, SizeBytes ?? 0, CreateTime?.ToUnixTimeSeconds() ?? 0, DisplayName ?? "", purpose,
            State switch { "ACTIVE" => "processed", "FAILED" => "error", _ => "uploaded" }, ExpirationTime?.ToUnixTimeSeconds());

    public GeminiFileRef? ToRef() => string.IsNullOrEmpty(Name) || string.IsNullOrEmpty(Uri) || string.IsNullOrEmpty(MimeType) || State == "FAILED"
        ? null
        : new GeminiFileRef(Name, Uri, MimeType, ExpirationTime);
}

internal sealed record GeminiFileAnswer(GeminiFileWire? File);

internal sealed record GeminiFileListWire(List<GeminiFileWire>? Files, string? NextPageToken);

internal sealed record GeminiUploadMetadata(string DisplayName);

internal sealed record GeminiUploadStart(GeminiUploadMetadata File);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, NumberHandling = JsonNumberHandling.AllowReadingFromString,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GeminiFileWire))]
[JsonSerializable(typeof(GeminiFileAnswer))]
[JsonSerializable(typeof(GeminiFileListWire))]
[JsonSerializable(typeof(GeminiUploadStart))]
internal sealed partial class GeminiFilesJson : JsonSerializerContext;
