using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// OpenAI's <c>custom_id</c>s (any string) as Message Batches take them (<c>^[a-zA-Z0-9_-]{1,64}$</c>), reversibly. An id
/// that fits is sent as it is; any other becomes <see cref="EncodedPrefix"/> and the base64url of its UTF-8 when that
/// fits in 64 characters, else <see cref="HashedPrefix"/> and the base64url of its SHA-256 (mapped back through the
/// input, <see cref="HashedIds"/>). An id that fits but starts with either prefix is encoded too, so that every sent id
/// with a prefix is one Wharf made and mapping back is never ambiguous.
/// </summary>
internal static class AnthropicCustomIds
{
    public const int MaxLength = 64;

    /// <summary>The base64url of the original id's UTF-8 follows.</summary>
    public const string EncodedPrefix = "wx-";

    /// <summary>The base64url of the original id's SHA-256 follows (43 characters).</summary>
    public const string HashedPrefix = "wh-";

    private static readonly int MaxEncodedBytes = Base64Url.GetMaxDecodedLength(MaxLength - EncodedPrefix.Length);

    public static bool Fits(string id) =>
        id.Length is >= 1 and <= MaxLength && id.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '-');

    /// <summary>The id as sent to Anthropic.</summary>
    public static string ToAnthropic(string id)
    {
        if (Fits(id) && !id.StartsWith(EncodedPrefix, StringComparison.Ordinal) && !id.StartsWith(HashedPrefix, StringComparison.Ordinal))
        {
            return id;
        }
        byte[] utf8 = Encoding.UTF8.GetBytes(id);
        return utf8.Length <= MaxEncodedBytes ? EncodedPrefix + Base64Url.EncodeToString(utf8) : Hashed(utf8);
    }

    /// <summary>Whether <see cref="ToAnthropic"/> hashes this id (so only the input can map it back).</summary>
    public static bool IsHashed(string sent) => sent.StartsWith(HashedPrefix, StringComparison.Ordinal);

    private static string Hashed(byte[] utf8) => HashedPrefix + Base64Url.EncodeToString(SHA256.HashData(utf8));

    /// <summary>
    /// The original id of one Anthropic sent back: as it is, decoded, or looked up among the hashed ones; null when it
    /// is none Wharf sent.
    /// </summary>
    public static string? FromAnthropic(string sent, IReadOnlyDictionary<string, string>? hashed)
    {
        if (sent.StartsWith(EncodedPrefix, StringComparison.Ordinal))
        {
            try
            {
                return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(sent.AsSpan(EncodedPrefix.Length)));
            }
            catch (FormatException)
            {
                return null;
            }
        }
        if (IsHashed(sent))
        {
            return hashed is not null && hashed.TryGetValue(sent, out string? original) ? original : null;
        }
        return sent;
    }
}
