using System.Text.Json.Serialization;
using Wharf.Core.Files;

namespace Wharf.Server.Api;

/// <summary>OpenAI's file object plus Wharf's fields. Every key is always written (null where empty).</summary>
internal sealed record FileObject(
    [property: JsonPropertyOrder(-2)] string Id,
    long Bytes,
    long CreatedAt,
    string Filename,
    string Purpose,
    string Status,
    string? StatusDetails,
    long? ExpiresAt,
    IReadOnlyDictionary<string, string> Metadata,
    string? Collection,
    string Provider,
    string Sha256)
{
    [JsonPropertyOrder(-1)]
    public string Object => "file";

    public static FileObject From(FileRecord file) => new(
        file.Id, file.Bytes, file.CreatedAt, file.Filename, file.Purpose, file.Status, file.StatusDetails,
        file.ExpiresAt, file.Metadata, file.Collection, file.Provider, file.Sha256);
}

internal sealed record FileList(IReadOnlyList<FileObject> Data, string? FirstId, string? LastId, bool HasMore, string? After)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";

    public static FileList From(Page<FileRecord> page)
    {
        var data = new FileObject[page.Items.Count];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = FileObject.From(page.Items[i]);
        }
        string? lastId = data.Length > 0 ? data[^1].Id : null;
        return new FileList(data, data.Length > 0 ? data[0].Id : null, lastId, page.HasMore, page.HasMore ? lastId : null);
    }
}

internal sealed record DeletedObject(string Id, string Object, bool Deleted);

internal sealed record HealthStatus(string Status);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(FileObject))]
[JsonSerializable(typeof(FileList))]
[JsonSerializable(typeof(DeletedObject))]
[JsonSerializable(typeof(HealthStatus))]
[JsonSerializable(typeof(Errors.ErrorEnvelope))]
internal sealed partial class WireJsonContext : JsonSerializerContext;
