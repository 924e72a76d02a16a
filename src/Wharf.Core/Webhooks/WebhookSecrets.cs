using System.Security.Cryptography;
using System.Text;

namespace Wharf.Core.Webhooks;

/// <summary>
/// Webhook secrets and signatures as Standard Webhooks defines them: a secret is <c>whsec_</c> + the base64 of the
/// HMAC key (32 random bytes here); a delivery is signed with HMAC-SHA256 over
/// <c>{webhook-id}.{webhook-timestamp}.{body}</c>, sent as <c>webhook-signature: v1,&lt;base64&gt;</c>.
/// </summary>
public static class WebhookSecrets
{
    public const string Prefix = "whsec_";
    public const int KeyBytes = 32;

    /// <summary>A new secret: <c>whsec_</c> + base64 of <see cref="KeyBytes"/> random bytes.</summary>
    public static string NewSecret() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeyBytes));

    /// <summary>The HMAC key a secret holds; false when it is not <c>whsec_</c> + base64 of at least one byte.</summary>
    public static bool TryGetKey(string? secret, out byte[] key)
    {
        key = [];
        if (secret is null || !secret.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var encoded = secret.AsSpan(Prefix.Length);
        var decoded = new byte[encoded.Length]; // base64 decodes to fewer bytes than characters
        if (!Convert.TryFromBase64Chars(encoded, decoded, out int written) || written == 0)
        {
            return false;
        }
        key = decoded[..written];
        return true;
    }

    /// <summary>The <c>webhook-signature</c> value of one delivery attempt: <c>v1,</c> + base64 HMAC-SHA256.</summary>
    public static string Sign(byte[] key, string webhookId, long timestampUnixSeconds, ReadOnlySpan<byte> body)
    {
        // "{id}.{timestamp}." then the body, as the bytes sent.
        string head = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{webhookId}.{timestampUnixSeconds}.");
        int headBytes = Encoding.UTF8.GetByteCount(head);
        byte[] content = new byte[headBytes + body.Length];
        Encoding.UTF8.GetBytes(head, content);
        body.CopyTo(content.AsSpan(headBytes));
        return "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, content));
    }
}
