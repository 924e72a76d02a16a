using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Wharf.Core.Errors;

namespace Wharf.Core.Json;

/// <summary>Where a piece of client JSON came from, and how its faults are reported.</summary>
/// <param name="Name">The request field that holds the JSON (<c>metadata</c>), or <c>body</c> for a JSON body.</param>
/// <param name="Code">The error code of every fault found in it.</param>
/// <param name="MaxDepth">The deepest nesting accepted.</param>
/// <param name="ParamIsPath">
/// True: a bad string is reported with <c>param</c> naming the property that holds it (<c>name</c>,
/// <c>part_ids[1]</c>, <c>expires_after[anchor]</c>). False: <c>param</c> is always <paramref name="Name"/>.
/// </param>
public sealed record ClientJsonSource(string Name, string Code, int MaxDepth, bool ParamIsPath);

/// <summary>
/// The one way JSON sent by a client is read. The document is parsed, then every property name and string value in
/// it is decoded once: JSON allows escapes of unpaired surrogates (<c>\ud800</c>) and the parser does not check the
/// UTF-8 inside strings, and either makes the framework throw when the string is read. A document that passes holds
/// only valid Unicode text, so reading any of its strings afterwards cannot throw.
/// </summary>
public static class ClientJson
{
    private const int MaxPrintedNameLength = 64;

    /// <summary>Parses UTF-8 JSON text held in memory.</summary>
    public static Result<JsonDocument> Parse(ReadOnlyMemory<byte> utf8, ClientJsonSource source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, Options(source));
        }
        catch (JsonException)
        {
            return NotJson(source);
        }
        return Checked(document, source);
    }

    /// <summary>Parses JSON text held in a string (a form field): a string with an unpaired surrogate is refused too.</summary>
    public static Result<JsonDocument> Parse(string text, ClientJsonSource source)
    {
        byte[] utf8 = new byte[Encoding.UTF8.GetByteCount(text)];
        if (Utf8.FromUtf16(text, utf8, out _, out _, replaceInvalidSequences: false) != System.Buffers.OperationStatus.Done)
        {
            return InvalidText(source, null);
        }
        return Parse(utf8, source);
    }

    /// <summary>
    /// Parses UTF-8 JSON text read from a stream. What the stream throws (a body that is too large, too slow or cut
    /// short) is left to the caller, which knows what the stream is.
    /// </summary>
    public static async Task<Result<JsonDocument>> ParseAsync(Stream utf8, ClientJsonSource source, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(utf8, Options(source), cancellationToken);
        }
        catch (JsonException)
        {
            return NotJson(source);
        }
        return Checked(document, source);
    }

    private static JsonDocumentOptions Options(ClientJsonSource source) => new() { MaxDepth = source.MaxDepth };

    private static Result<JsonDocument> Checked(JsonDocument document, ClientJsonSource source)
    {
        if (FindInvalidText(document.RootElement, "") is { } path)
        {
            document.Dispose();
            return InvalidText(source, path);
        }
        return document;
    }

    /// <summary>The path of the first string that is not valid Unicode text, or null when there is none.</summary>
    /// <remarks>
    /// A bad property name is reported at the object that holds it (its name cannot be printed). The framework has
    /// no non-throwing way to decode a JSON string, so the decode is tried and its documented exception caught.
    /// </remarks>
    private static string? FindInvalidText(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return Decodes(element) ? null : path;
            case JsonValueKind.Array:
                int index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindInvalidText(item, $"{path}[{index}]") is { } bad)
                    {
                        return bad;
                    }
                    index++;
                }
                return null;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (!NameDecodes(property))
                    {
                        return path;
                    }
                    string name = Printable(property.Name);
                    string child = path.Length == 0 ? name : $"{path}[{name}]";
                    if (FindInvalidText(property.Value, child) is { } bad)
                    {
                        return bad;
                    }
                }
                return null;
            default:
                return null;
        }
    }

    private static bool Decodes(JsonElement value)
    {
        try
        {
            _ = value.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static bool NameDecodes(JsonProperty property)
    {
        try
        {
            _ = property.Name;
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// A client's text as it appears in a message: a long one is cut (so an answer never echoes a whole body), never
    /// between the two halves of a surrogate pair.
    /// </summary>
    public static string Printable(string text, int maxLength = MaxPrintedNameLength)
    {
        if (text.Length <= maxLength)
        {
            return text;
        }
        int cut = char.IsHighSurrogate(text[maxLength - 1]) ? maxLength - 1 : maxLength;
        return text[..cut] + "...";
    }

    private static WharfError NotJson(ClientJsonSource source) =>
        WharfErrors.Invalid(source.Name, $"'{source.Name}' is not valid JSON.", source.Code);

    private static WharfError InvalidText(ClientJsonSource source, string? path)
    {
        string param = source.ParamIsPath && !string.IsNullOrEmpty(path) ? path : source.Name;
        string where = param == source.Name ? $"'{source.Name}'" : $"'{param}' in '{source.Name}'";
        return WharfErrors.Invalid(param,
            $"{where} holds text that is not valid Unicode: an unpaired surrogate escape (\\ud800-\\udfff) or bytes that are not UTF-8.",
            source.Code);
    }
}
