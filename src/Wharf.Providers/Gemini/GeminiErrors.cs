using System.Globalization;
using System.Text.Json;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Gemini;

/// <summary>
/// Google's error answer, <c>{"error":{"code","message","status","details":[...]}}</c>, as a failure. Classified
/// by the status as every adapter's (<see cref="UpstreamFailure.FromAnswer"/>), except where Google's status or
/// reason says better: a bad or expired key comes as 400 <c>INVALID_ARGUMENT</c> with reason <c>API_KEY_INVALID</c>,
/// which is Wharf's credential failing, not the user's request; <c>UNAUTHENTICATED</c> and
/// <c>PERMISSION_DENIED</c> are credentials whatever the status; a 400 <c>FAILED_PRECONDITION</c> (the API is not
/// offered in the caller's region, or free use not there) is a region or project restriction. A
/// <c>RetryInfo.retryDelay</c> is the wait asked for, ahead of <c>Retry-After</c>.
/// </summary>
internal static class GeminiErrors
{
    private static readonly HashSet<string> CredentialReasons = new(StringComparer.Ordinal)
    {
        "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED", "SERVICE_DISABLED", "CONSUMER_INVALID", "ACCESS_TOKEN_TYPE_UNSUPPORTED",
    };

    public static UpstreamFailure Classify(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter, IReadOnlyCollection<string> secrets)
    {
        var error = Read(body);
        string? preview = CredentialRedaction.Preview(body, secrets);
        var detail = error is null ? null : new UpstreamErrorDetail(
            UpstreamAnswers.Clean(error.Reason ?? error.Status, secrets), UpstreamAnswers.Clean(error.Message, secrets), UpstreamAnswers.Clean(error.Status, secrets), null);
        var failure = UpstreamFailure.FromAnswer(status, error?.RetryDelay ?? retryAfter, detail, preview);
        if (error?.Reason is { } reason && CredentialReasons.Contains(reason) || error?.Status is "UNAUTHENTICATED" or "PERMISSION_DENIED")
        {
            return failure with { Category = FailureCategory.CredentialsInvalidOrForbidden, Retryable = false };
        }
        if (status == 400 && error?.Status == "FAILED_PRECONDITION")
        {
            return failure with { Category = FailureCategory.RegionOrProjectRestriction, Retryable = false };
        }
        return failure;
    }

    /// <summary>What Google's error body says, as far as it can be read.</summary>
    internal sealed record GoogleError(string? Message, string? Status, string? Reason, TimeSpan? RetryDelay);

    internal static GoogleError? Read(ReadOnlySpan<byte> body)
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
            // A streamed answer's error event, and some proxies, send the list form: [{"error":{...}}].
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() > 0)
            {
                root = root[0];
            }
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            return ReadError(error);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The <c>error</c> object's fields: message, status, the <c>ErrorInfo</c> reason, the <c>RetryInfo</c> delay.</summary>
    internal static GoogleError ReadError(JsonElement error)
    {
        string? reason = null;
        TimeSpan? delay = null;
        if (error.TryGetProperty("details", out var details) && details.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in details.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || Text(item, "@type") is not { } type)
                {
                    continue;
                }
                if (type.EndsWith("google.rpc.ErrorInfo", StringComparison.Ordinal))
                {
                    reason ??= Text(item, "reason");
                }
                else if (type.EndsWith("google.rpc.RetryInfo", StringComparison.Ordinal))
                {
                    delay ??= Duration(Text(item, "retryDelay"));
                }
            }
        }
        return new GoogleError(Text(error, "message"), Text(error, "status"), reason, delay);
    }

    /// <summary>A protobuf <c>Duration</c> in JSON: seconds with up to nine decimals and an <c>s</c> (<c>"22s"</c>, <c>"1.5s"</c>).</summary>
    internal static TimeSpan? Duration(string? text)
    {
        if (text is not { Length: > 1 } || text[^1] != 's'
            || !double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds)
            || !double.IsFinite(seconds) || seconds > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            return null;
        }
        return TimeSpan.FromSeconds(seconds);
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
