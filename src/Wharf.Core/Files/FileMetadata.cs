using System.Text.Json;
using Wharf.Core.Errors;
using Wharf.Core.Json;

namespace Wharf.Core.Files;

/// <summary>Parses and checks a file's <c>metadata</c>: a JSON object of at most 16 string values.</summary>
public static class FileMetadata
{
    public const int MaxKeys = 16;
    public const int MaxKeyLength = 64;
    public const int MaxValueLength = 512;

    private static readonly ClientJsonSource Source = new("metadata", "invalid_metadata", MaxDepth: 4, ParamIsPath: false);

    public static Result<IReadOnlyDictionary<string, string>> Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return Result<IReadOnlyDictionary<string, string>>.From(FileRecord.EmptyMetadata);
        }

        var parsed = ClientJson.Parse(json, Source);
        if (!parsed.IsOk)
        {
            return parsed.Error;
        }
        using var document = parsed.Value;
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Bad("'metadata' must be a JSON object of string values.");
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            string key = property.Name;
            if (property.Value.ValueKind != JsonValueKind.String)
            {
                return Bad($"'metadata' value of key '{Printable(key)}' must be a string.");
            }
            string value = property.Value.GetString()!;
            if (key.Length is 0 or > MaxKeyLength)
            {
                return Bad($"'metadata' keys must be 1 to {MaxKeyLength} characters long.");
            }
            if (value.Length > MaxValueLength)
            {
                return Bad($"'metadata' values must be at most {MaxValueLength} characters long (key '{Printable(key)}').");
            }
            if (!result.TryAdd(key, value))
            {
                return Bad($"'metadata' has the key '{Printable(key)}' twice.");
            }
            if (result.Count > MaxKeys)
            {
                return Bad($"'metadata' may hold at most {MaxKeys} keys.");
            }
        }
        return Result<IReadOnlyDictionary<string, string>>.From(result);
    }

    private static WharfError Bad(string message) => WharfErrors.Invalid("metadata", message, "invalid_metadata");

    private static string Printable(string key) => ClientJson.Printable(key, MaxKeyLength);
}
