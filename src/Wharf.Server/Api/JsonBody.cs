using System.Text.Json;
using Wharf.Core.Errors;
using Wharf.Core.Json;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// A small JSON object body, read with a size cap through <see cref="ClientJson"/> (so every string in it is valid
/// text); typed field access with errors naming the field.
/// </summary>
internal sealed class JsonBody
{
    private static readonly ClientJsonSource Source = new("body", "invalid_json", MaxDepth: 8, ParamIsPath: true);

    private readonly JsonElement _root;

    private JsonBody(JsonElement root) => _root = root;

    public static async Task<Result<JsonBody>> ReadAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength > maxBytes)
        {
            return TooLarge(maxBytes);
        }
        Result<JsonDocument> parsed;
        try
        {
            parsed = await ClientJson.ParseAsync(new LimitedStream(request.Body, maxBytes), Source, cancellationToken);
        }
        catch (InvalidDataException)
        {
            return TooLarge(maxBytes);
        }
        catch (BadHttpRequestException ex)
        {
            return RequestBodyErrors.From(ex, null);
        }
        if (!parsed.IsOk)
        {
            return parsed.Error;
        }
        using var document = parsed.Value;
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            return WharfErrors.Invalid("body", "The body must be a JSON object.", "invalid_json");
        }
        return new JsonBody(document.RootElement.Clone());
    }

    private static WharfError TooLarge(int maxBytes) =>
        new(413, $"The JSON body is larger than {maxBytes} bytes.", null, "request_too_large");

    public bool IsNull(string name) => _root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Null;

    public Field<string?> String(string name) => Get(name, JsonValueKind.String, v => v.GetString(), "a string");

    public Field<long?> Int64(string name) => Get(name, JsonValueKind.Number, v => v.TryGetInt64(out long n) ? n : (long?)null, "an integer");

    public Field<int?> Int32(string name) => Get(name, JsonValueKind.Number, v => v.TryGetInt32(out int n) ? n : (int?)null, "an integer");

    /// <summary>The field's JSON text, whatever its kind (for a value checked elsewhere); null when absent or null.</summary>
    public string? Raw(string name) =>
        _root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value.GetRawText() : null;

    public Field<IReadOnlyList<string>?> Strings(string name)
    {
        if (!_root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return new(null, null);
        }
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
        {
            return new(null, WharfErrors.Invalid(name, $"'{name}' must be an array of strings.", "invalid_type"));
        }
        return new([.. value.EnumerateArray().Select(e => e.GetString()!)], null);
    }

    public Field<JsonBody?> Object(string name)
    {
        if (!_root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return new(null, null);
        }
        return value.ValueKind == JsonValueKind.Object
            ? new(new JsonBody(value), null)
            : new(null, WharfErrors.Invalid(name, $"'{name}' must be an object.", "invalid_type"));
    }

    private Field<T?> Get<T>(string name, JsonValueKind kind, Func<JsonElement, T?> read, string expected)
    {
        if (!_root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return new(default, null);
        }
        T? result = value.ValueKind == kind ? read(value) : default;
        return result is null
            ? new(default, WharfErrors.Invalid(name, $"'{name}' must be {expected}.", "invalid_type"))
            : new(result, null);
    }

    internal readonly record struct Field<T>(T Value, WharfError? Error);

    /// <summary>Throws <see cref="InvalidDataException"/> past the cap, so a huge body is never held.</summary>
    private sealed class LimitedStream(Stream inner, long max) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken);
            _read += n;
            return _read > max ? throw new InvalidDataException("Body too large.") : n;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
