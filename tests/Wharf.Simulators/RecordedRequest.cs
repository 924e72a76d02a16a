namespace Wharf.Simulators;

/// <summary>
/// A request as the simulator received it: method, path, query, headers, and the body's bytes (for a file upload,
/// the file's fields and bytes instead). Tests compare header values by equality; nothing here is printed.
/// </summary>
public sealed record RecordedRequest(
    string Method,
    string Path,
    string Query,
    IReadOnlyDictionary<string, string> Headers,
    byte[] Body,
    UploadedFile? Upload)
{
    /// <summary>When it arrived, on the simulator's <see cref="UpstreamSimulator.Clock"/>.</summary>
    public DateTimeOffset At { get; init; }

    public string? Header(string name) => Headers.TryGetValue(name, out string? value) ? value : null;

    public string BodyText => System.Text.Encoding.UTF8.GetString(Body);
}

/// <summary>What a multipart file upload held.</summary>
public sealed record UploadedFile(string Purpose, string Filename, string? ContentType, byte[] Content);

/// <summary>A file the simulator keeps (its Files API).</summary>
public sealed record SimulatedFile(string Id, string Filename, string Purpose, long CreatedAt, byte[] Content);
