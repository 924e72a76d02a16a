using System.Text;
using System.Text.RegularExpressions;

namespace Wharf.Providers.Http;

/// <summary>
/// The one rule for quoting an upstream: what an upstream wrote (an error body, its message) is cleared of anything
/// credential-like before it reaches an answer, a diagnostic or a log, then truncated. Removed: the provider's
/// configured secrets (its key, its header values), <c>Bearer</c> tokens, <c>sk-</c>-style keys (also masked ones,
/// as OpenAI quotes them), values after <c>api-key</c>-like names, and any long run of letters and digits mixed
/// (keys of unknown form: Azure's, Google's, a JWT's parts).
/// </summary>
internal static partial class CredentialRedaction
{
    public const string Mark = "[redacted]";

    /// <summary>The longest preview, in characters.</summary>
    public const int PreviewLength = 512;

    /// <summary>A secret shorter than this is not searched for (it would match ordinary text).</summary>
    private const int ShortestSecret = 6;

    /// <summary>A truncated, redacted quote of an upstream's body; null when it is empty.</summary>
    public static string? Preview(ReadOnlySpan<byte> body, IReadOnlyCollection<string> secrets)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        string text = Redact(Encoding.UTF8.GetString(body), secrets);
        return Truncate(text, PreviewLength);
    }

    /// <summary>The text with every credential-like part replaced by <see cref="Mark"/>.</summary>
    public static string Redact(string text, IReadOnlyCollection<string> secrets)
    {
        foreach (string secret in secrets)
        {
            if (secret.Length >= ShortestSecret)
            {
                text = text.Replace(secret, Mark, StringComparison.Ordinal);
            }
        }
        text = BearerToken().Replace(text, "Bearer " + Mark);
        text = NamedSecret().Replace(text, m => m.Groups["name"].Value + m.Groups["sep"].Value + Mark);
        text = SkStyleKey().Replace(text, Mark);
        return LongToken().Replace(text, m => m.Value.Any(char.IsAsciiDigit) && m.Value.Any(char.IsAsciiLetter) ? Mark : m.Value);
    }

    /// <summary>At most <paramref name="length"/> characters, never splitting a surrogate pair; an ellipsis marks a cut.</summary>
    public static string Truncate(string text, int length)
    {
        if (text.Length <= length)
        {
            return text;
        }
        int cut = length - 1;
        if (char.IsHighSurrogate(text[cut - 1]))
        {
            cut--;
        }
        return string.Concat(text.AsSpan(0, cut), "…");
    }

    [GeneratedRegex(@"\bBearer\s+[^\s""',;]+", RegexOptions.IgnoreCase)]
    private static partial Regex BearerToken();

    /// <summary><c>api-key: X</c>, <c>"api_key":"X"</c>, <c>?key=X</c>, <c>x-goog-api-key=X</c>, <c>token=X</c>, ...</summary>
    [GeneratedRegex(@"(?<name>\b(?:api[-_]?key|x-api-key|x-goog-api-key|access[-_]?token|token|secret|password)|[?&]key)(?<sep>""?\s*[:=]\s*""?)[^\s""'&,;}]+", RegexOptions.IgnoreCase)]
    private static partial Regex NamedSecret();

    /// <summary>OpenAI-style keys (<c>sk-...</c>, <c>sk-proj-...</c>), masked ones included (<c>sk-abc***wxyz</c>).</summary>
    [GeneratedRegex(@"\bsk-[A-Za-z0-9_*\-]{4,}")]
    private static partial Regex SkStyleKey();

    [GeneratedRegex(@"[A-Za-z0-9_\-+/=]{32,}")]
    private static partial Regex LongToken();
}
