using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>Reading an upstream's error answer: its body (bounded), its error fields, its <c>Retry-After</c>.</summary>
internal static class UpstreamAnswers
{
    /// <summary>The most of an error body that is read; the rest is dropped with the connection's answer.</summary>
    public const int MaxErrorBodyBytes = 8 * 1024;

    /// <summary>
    /// The failure an error answer means: classified by <see cref="UpstreamFailure.FromAnswer"/>, with the
    /// upstream's error fields and a preview, both cleared of credentials.
    /// </summary>
    public static async Task<UpstreamFailure> ReadFailureAsync(HttpResponseMessage response, IReadOnlyCollection<string> secrets, TimeProvider time, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxErrorBodyBytes);
        try
        {
            int length = await ReadPrefixAsync(response, buffer, cancellationToken);
            var body = buffer.AsSpan(0, length);
            return UpstreamFailure.FromAnswer((int)response.StatusCode, RetryAfter(response.Headers, time), ParseError(body, secrets), CredentialRedaction.Preview(body, secrets));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads at most <see cref="MaxErrorBodyBytes"/> of an error answer into <paramref name="buffer"/>; a body cut short only shortens it.</summary>
    internal static async Task<int> ReadPrefixAsync(HttpResponseMessage response, byte[] buffer, CancellationToken cancellationToken)
    {
        int length = 0;
        try
        {
            await using var content = await response.Content.ReadAsStreamAsync(cancellationToken);
            int read;
            while (length < MaxErrorBodyBytes && (read = await content.ReadAsync(buffer.AsMemory(length, MaxErrorBodyBytes - length), cancellationToken)) > 0)
            {
                length += read;
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // The status is the answer; a body cut short only shortens the quote.
        }
        return length;
    }

    /// <summary>
    /// OpenAI's <c>{"error":{message,type,param,code}}</c> (Azure's is the same shape; <c>code</c> may be a
    /// number), also a bare <c>{"error":"..."}</c> or <c>{"message":"..."}</c> as some compatible servers send.
    /// </summary>
    public static UpstreamErrorDetail? ParseError(ReadOnlySpan<byte> body, IReadOnlyCollection<string> secrets)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            if (root.TryGetProperty("error", out var error))
            {
                if (error.ValueKind == JsonValueKind.String)
                {
                    return new(null, Clean(error.GetString(), secrets), null, null);
                }
                if (error.ValueKind == JsonValueKind.Object)
                {
                    string? type = Text(error, "type");
                    string? code = Text(error, "code");
                    return new(Clean(code ?? type, secrets), Clean(Text(error, "message"), secrets), Clean(type, secrets), Clean(Text(error, "param"), secrets));
                }
            }
            return Text(root, "message") is { } message ? new(null, Clean(message, secrets), null, null) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            _ => null,
        } : null;

    internal static string? Clean(string? text, IReadOnlyCollection<string> secrets) =>
        text is null ? null : CredentialRedaction.Truncate(CredentialRedaction.Redact(text, secrets), 2 * CredentialRedaction.PreviewLength);

    /// <summary>
    /// <c>retry-after-ms</c> (OpenAI's, in milliseconds) when present, else <c>Retry-After</c> in seconds or as an
    /// HTTP date (against the injected clock); never negative.
    /// </summary>
    public static TimeSpan? RetryAfter(HttpResponseHeaders headers, TimeProvider time)
    {
        if (headers.TryGetValues("retry-after-ms", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out double ms) && ms >= 0 && double.IsFinite(ms))
        {
            return TimeSpan.FromMilliseconds(ms);
        }
        if (headers.RetryAfter is { } retryAfter)
        {
            if (retryAfter.Delta is { } delta)
            {
                return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
            }
            if (retryAfter.Date is { } date)
            {
                var wait = date - time.GetUtcNow();
                return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
            }
        }
        return null;
    }
}
