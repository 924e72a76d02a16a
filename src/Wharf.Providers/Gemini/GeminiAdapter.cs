using System.Text.RegularExpressions;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Gemini;

/// <summary>
/// Type <c>gemini</c>: Google's Gemini API. <c>BaseUrl</c> is the API's host (default
/// <see cref="DefaultBaseUrl"/>), <c>ApiVersion</c> the version in its paths (default <see cref="DefaultApiVersion"/>);
/// the key goes in <c>x-goog-api-key</c>. Chat completions and embeddings are translated to and from Gemini's own
/// format; files go through its Files API (resumable uploads) and native batches of chat completions through its batch
/// mode.
/// </summary>
internal sealed partial class GeminiAdapter(UpstreamHttpClients clients) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://generativelanguage.googleapis.com";

    public const string DefaultApiVersion = "v1beta";

    public string Type => "gemini";

    public IEnumerable<string> Validate(string key, ProviderOptions options)
    {
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            yield return $"{key}:ApiKey is missing: type 'gemini' sends it as 'x-goog-api-key'.";
        }
        if (!string.IsNullOrEmpty(options.ApiVersion) && !ApiVersionPattern().IsMatch(options.ApiVersion))
        {
            yield return $"{key}:ApiVersion '{options.ApiVersion}' is not a Gemini API version (such as v1beta or v1).";
        }
    }

    public IProvider Create(ProviderContext context)
    {
        var options = context.Options;
        var baseUrl = new Uri(string.IsNullOrEmpty(options.BaseUrl) ? DefaultBaseUrl : options.BaseUrl);
        string version = string.IsNullOrEmpty(options.ApiVersion) ? DefaultApiVersion : options.ApiVersion;
        return new GeminiProvider(context.Id, new GeminiWire(context, clients.Create(), baseUrl, version), context.Time, options.NativeBatches ?? true);
    }

    [GeneratedRegex("^v[0-9]+((alpha|beta)[0-9]*)?$")]
    private static partial Regex ApiVersionPattern();
}
