using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Wharf.Core.Errors;
using Wharf.Core.Json;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>
/// A model request as the client sent it: the endpoint, the JSON body (kept as its bytes, and parsed), its
/// <c>model</c>, Wharf's own <c>provider</c> field and whether it asks for a stream. Disposing it releases the
/// parsed document.
/// </summary>
public sealed class ModelRequest : IDisposable
{
    /// <summary>Model request bodies nest deeper than Wharf's own (tool schemas, content parts): JSON's usual 64.</summary>
    private static readonly ClientJsonSource Source = new("body", "invalid_json", MaxDepth: 64, ParamIsPath: true);

    private static readonly byte[] ModelName = "model"u8.ToArray();
    private static readonly byte[] ProviderName = "provider"u8.ToArray();

    private readonly JsonDocument _document;

    private ModelRequest(ProviderCapability endpoint, ReadOnlyMemory<byte> body, JsonDocument document, string model, string? provider, bool stream)
    {
        Endpoint = endpoint;
        Body = body;
        _document = document;
        Model = model;
        Provider = provider;
        Stream = stream;
    }

    public ProviderCapability Endpoint { get; }

    /// <summary>The body as the client sent it (UTF-8 JSON).</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>The body, parsed; every string in it is valid Unicode text.</summary>
    public JsonElement Json => _document.RootElement;

    /// <summary>The model as the client sent it (a <c>provider/</c> prefix included).</summary>
    public string Model { get; }

    /// <summary>The body's <c>provider</c> field (Wharf's own, never sent upstream), if any.</summary>
    public string? Provider { get; }

    /// <summary>The body asks for a stream (<c>"stream": true</c>).</summary>
    public bool Stream { get; }

    /// <summary>
    /// Reads a JSON body: a JSON object with a string <c>model</c>, and a <c>provider</c>, when there is one, that is
    /// a string. Faults are 400s naming the parameter.
    /// </summary>
    public static Result<ModelRequest> Parse(ProviderCapability endpoint, ReadOnlyMemory<byte> body)
    {
        var parsed = ClientJson.Parse(body, Source);
        if (!parsed.IsOk)
        {
            return parsed.Error;
        }
        var document = parsed.Value;
        var error = Read(document.RootElement, out string? model, out string? provider, out bool stream);
        if (error is not null)
        {
            document.Dispose();
            return error;
        }
        return new ModelRequest(endpoint, body, document, model!, provider, stream);
    }

    private static WharfError? Read(JsonElement root, out string? model, out string? provider, out bool stream)
    {
        model = null;
        provider = null;
        stream = false;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return WharfErrors.Invalid("body", "The body must be a JSON object.", "invalid_json");
        }
        if (!root.TryGetProperty("model", out var modelValue) || modelValue.ValueKind == JsonValueKind.Null)
        {
            return WharfErrors.Missing("model");
        }
        if (modelValue.ValueKind != JsonValueKind.String)
        {
            return WharfErrors.Invalid("model", "'model' must be a string.", "invalid_type");
        }
        model = modelValue.GetString()!;
        if (model.Length == 0)
        {
            return WharfErrors.Invalid("model", "'model' must not be empty.", "invalid_value");
        }
        if (root.TryGetProperty("provider", out var providerValue) && providerValue.ValueKind != JsonValueKind.Null)
        {
            if (providerValue.ValueKind != JsonValueKind.String)
            {
                return WharfErrors.Invalid("provider", "'provider' must be a string naming a configured provider.", "invalid_type");
            }
            provider = providerValue.GetString();
        }
        stream = root.TryGetProperty("stream", out var streamValue) && streamValue.ValueKind == JsonValueKind.True;
        return null;
    }

    /// <summary>
    /// The body to send upstream: the client's, top-level members copied byte for byte, except <c>model</c> (set to
    /// <paramref name="model"/>) and Wharf's <c>provider</c> (left out). Whitespace between top-level members is not kept.
    /// </summary>
    public ReadOnlyMemory<byte> BodyFor(string model)
    {
        // The model's JSON string, escaped as a Utf8JsonWriter with the relaxed encoder would, so the output's size
        // is known before it is written (a writer on the output would make it grow by 4 KiB).
        var encodedModel = JsonEncodedText.Encode(model, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).EncodedUtf8Bytes;
        var output = new ArrayBufferWriter<byte>(Body.Length + encodedModel.Length + 16);
        var source = Body.Span;
        var reader = new Utf8JsonReader(source, new JsonReaderOptions { MaxDepth = Source.MaxDepth });
        reader.Read(); // the object's start: Parse checked the body is an object
        output.Write("{"u8);
        bool first = true;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            int start = (int)reader.TokenStartIndex;
            bool isModel = reader.ValueTextEquals(ModelName);
            bool isProvider = reader.ValueTextEquals(ProviderName);
            reader.Read();
            reader.Skip();
            int end = (int)reader.BytesConsumed;
            if (isProvider)
            {
                continue;
            }
            if (!first)
            {
                output.Write(","u8);
            }
            first = false;
            if (isModel)
            {
                output.Write("\"model\":\""u8);
                output.Write(encodedModel);
                output.Write("\""u8);
                continue;
            }
            output.Write(source[start..end]);
        }
        output.Write("}"u8);
        return output.WrittenMemory;
    }

    public void Dispose() => _document.Dispose();
}
