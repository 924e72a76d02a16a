using System.Text.Json;
using Wharf.Core.Errors;

namespace Wharf.Core.Files;

/// <summary>Parses and checks a file's <c>metadata</c>: a JSON object of at most 16 string values.</summary>
public static class FileMetadata
{
    public const int MaxKeys = 16;
    public const int MaxKeyLength = 64;
    public const int MaxValueLength = 512;

    public static Result<IReadOnlyDictionary<string, string>> Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return Result<IReadOnlyDictionary<string, string>>.From(FileRecord.EmptyMetadata);
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(json), new JsonReaderOptions { MaxDepth = 4 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return Bad("'metadata' must be a JSON object of string values.");
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                string key = reader.GetString()!;
                if (!reader.Read() || reader.TokenType != JsonTokenType.String)
                {
                    return Bad($"'metadata' value of key '{Printable(key)}' must be a string.");
                }
                string value = reader.GetString()!;
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
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return Bad("'metadata' must be a single JSON object.");
            }
        }
        catch (JsonException)
        {
            return Bad("'metadata' is not valid JSON: send a JSON object of string values.");
        }
        return Result<IReadOnlyDictionary<string, string>>.From(result);
    }

    private static WharfError Bad(string message) => WharfErrors.Invalid("metadata", message, "invalid_metadata");

    private static string Printable(string key) => key.Length > MaxKeyLength ? key[..MaxKeyLength] + "..." : key;
}
