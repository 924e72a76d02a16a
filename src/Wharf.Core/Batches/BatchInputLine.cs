using System.Text.Json;

namespace Wharf.Core.Batches;

/// <summary>
/// One line of a batch's input file, read without a document: <c>{"custom_id": ..., "method": "POST", "url": ...,
/// "body": {...}}</c>. <see cref="Validate"/> checks a line as OpenAI does (the first fault found is reported);
/// <see cref="TryRead"/> finds the <c>custom_id</c> and the <c>body</c>'s bytes of a line that passed.
/// </summary>
internal static class BatchInputLine
{
    /// <summary>JSON nesting a line may have (a model request body's own depth, plus the line's object).</summary>
    private const int MaxDepth = 65;

    private static readonly JsonReaderOptions Options = new() { MaxDepth = MaxDepth };

    public const string InvalidJson = "invalid_json";
    public const string MissingCustomId = "missing_custom_id";
    public const string InvalidCustomId = "invalid_custom_id";
    public const string DuplicateCustomId = "duplicate_custom_id";
    public const string InvalidMethod = "invalid_method";
    public const string InvalidUrl = "invalid_url";
    public const string MissingBody = "missing_body";
    public const string InvalidBody = "invalid_body";
    public const string MissingModel = "missing_model";
    public const string StreamNotAllowed = "stream_not_allowed";
    public const string LineTooLong = "line_too_long";
    public const string TooManyLines = "too_many_lines";
    public const string EmptyFile = "empty_file";
    public const string InputTooLarge = "input_file_too_large";

    /// <summary>Whether the line holds only white space (it is skipped, as a blank line).</summary>
    public static bool IsBlank(ReadOnlySpan<byte> line) => line.Trim(" \t\r"u8).IsEmpty;

    /// <summary>
    /// Checks one line against the batch's <paramref name="endpoint"/>: null when it is good (its <c>custom_id</c> in
    /// <paramref name="customId"/>), else the fault, without its line number.
    /// </summary>
    public static BatchError? Validate(ReadOnlySpan<byte> line, string endpoint, out string? customId) =>
        Validate(line, endpoint, readModel: false, out customId, out _);

    /// <summary>
    /// As <see cref="Validate(ReadOnlySpan{byte}, string, out string?)"/>; with <paramref name="readModel"/>, a good
    /// line's <c>body.model</c> is also returned in <paramref name="model"/>.
    /// </summary>
    public static BatchError? Validate(ReadOnlySpan<byte> line, string endpoint, bool readModel, out string? customId, out string? model)
    {
        customId = null;
        model = null;
        string? method = null;
        string? url = null;
        bool methodSeen = false, urlSeen = false, bodySeen = false, customIdSeen = false;
        bool bodyIsObject = false, modelIsString = false, modelSeen = false, streams = false;
        var reader = new Utf8JsonReader(line, Options);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return Error(InvalidJson, "The line is not a JSON object.", null);
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("custom_id"u8))
                {
                    reader.Read();
                    customIdSeen = true;
                    customId = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        customIdSeen = reader.TokenType != JsonTokenType.Null;
                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("method"u8))
                {
                    reader.Read();
                    methodSeen = true;
                    method = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("url"u8))
                {
                    reader.Read();
                    urlSeen = true;
                    url = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("body"u8))
                {
                    reader.Read();
                    bodySeen = reader.TokenType != JsonTokenType.Null;
                    bodyIsObject = reader.TokenType == JsonTokenType.StartObject;
                    if (!bodyIsObject)
                    {
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("model"u8))
                        {
                            reader.Read();
                            modelSeen = reader.TokenType != JsonTokenType.Null;
                            modelIsString = reader.TokenType == JsonTokenType.String && !reader.ValueSpan.IsEmpty;
                            model = readModel && modelIsString ? reader.GetString() : null;
                            reader.Skip();
                        }
                        else if (reader.ValueTextEquals("stream"u8))
                        {
                            reader.Read();
                            streams = reader.TokenType == JsonTokenType.True;
                            reader.Skip();
                        }
                        else
                        {
                            reader.Read();
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (reader.Read())
            {
                return Error(InvalidJson, "The line holds more than one JSON value.", null);
            }
        }
        catch (JsonException)
        {
            return Error(InvalidJson, "The line is not valid JSON.", null);
        }
        catch (InvalidOperationException)
        {
            // A string with text that is not valid UTF-8.
            return Error(InvalidJson, "The line is not valid JSON.", null);
        }

        if (!modelIsString)
        {
            model = null;
        }
        if (!customIdSeen)
        {
            return Error(MissingCustomId, "Missing required parameter: 'custom_id'.", "custom_id");
        }
        if (string.IsNullOrEmpty(customId))
        {
            customId = null;
            return Error(InvalidCustomId, "'custom_id' must be a non-empty string.", "custom_id");
        }
        if (!methodSeen || method != "POST")
        {
            return Error(InvalidMethod, "'method' must be 'POST'.", "method");
        }
        if (!urlSeen || url != endpoint)
        {
            return Error(InvalidUrl, $"'url' must be '{endpoint}', the batch's endpoint.", "url");
        }
        if (!bodySeen)
        {
            return Error(MissingBody, "Missing required parameter: 'body'.", "body");
        }
        if (!bodyIsObject)
        {
            return Error(InvalidBody, "'body' must be a JSON object.", "body");
        }
        if (!modelSeen)
        {
            return Error(MissingModel, "Missing required parameter: 'body.model'.", "body.model");
        }
        if (!modelIsString)
        {
            return Error(MissingModel, "'body.model' must be a non-empty string.", "body.model");
        }
        if (streams)
        {
            return Error(StreamNotAllowed, "'body.stream' must not be true: a batch's requests cannot be streamed.", "body.stream");
        }
        return null;
    }

    /// <summary>
    /// The <c>custom_id</c> and the <c>body</c> (as a range of <paramref name="line"/>) of a line that passed
    /// <see cref="Validate"/>; false when the line does not have them.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> line, out string? customId, out Range body)
    {
        customId = null;
        body = default;
        bool bodyFound = false;
        var reader = new Utf8JsonReader(line, Options);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("custom_id"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        customId = reader.GetString();
                    }
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("body"u8))
                {
                    reader.Read();
                    int start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    body = start..(int)reader.BytesConsumed;
                    bodyFound = true;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return false;
        }
        return bodyFound && !string.IsNullOrEmpty(customId);
    }

    private static BatchError Error(string code, string message, string? param) => new(code, message, param, null);
}
