using Wharf.Core.Errors;

namespace Wharf.Core.Webhooks;

/// <summary>What a workspace's <c>webhook_url</c> may be, and how it appears in a log.</summary>
public static class WebhookUrls
{
    public const int MaxLength = 2048;

    /// <summary>
    /// Null when <paramref name="url"/> is an absolute <c>http</c> or <c>https</c> URL with a host (loopback and
    /// private addresses included: the admin sets it); else the 400 naming <c>webhook_url</c>.
    /// </summary>
    public static WharfError? Check(string url)
    {
        bool valid = url.Length <= MaxLength
            && !url.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))
            && Uri.TryCreate(url, UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && uri.Host.Length > 0;
        return valid
            ? null
            : WharfErrors.Invalid("webhook_url",
                $"Invalid 'webhook_url': expected an absolute http or https URL of at most {MaxLength} characters, or null to remove it.",
                "invalid_webhook_url");
    }

    /// <summary>
    /// The URL as a log may show it: scheme, host and port. Never its user info, query or fragment, nor its path, which
    /// many webhook receivers make a secret of its own (<c>/services/T0/B0/&lt;token&gt;</c>).
    /// </summary>
    public static string ForLog(Uri url) => url.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped);
}
