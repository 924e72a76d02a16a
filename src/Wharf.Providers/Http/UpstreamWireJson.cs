using System.Text.Json.Serialization;
using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>OpenAI's file object as OpenAI-style upstreams (OpenAI, Azure, vLLM, ...) send it.</summary>
internal sealed record FileObjectWire(string? Id, long? Bytes, long? CreatedAt, string? Filename, string? Purpose, string? Status, long? ExpiresAt)
{
    /// <summary>The file, or null when the upstream left out what every file has (its id).</summary>
    public UpstreamFile? ToUpstreamFile() => string.IsNullOrEmpty(Id)
        ? null
        : new UpstreamFile(Id, Bytes ?? 0, CreatedAt ?? 0, Filename ?? "", Purpose ?? "", Status, ExpiresAt);
}

internal sealed record FileListWire(List<FileObjectWire>? Data, bool? HasMore);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(FileObjectWire))]
[JsonSerializable(typeof(FileListWire))]
internal sealed partial class UpstreamWireJson : JsonSerializerContext;
