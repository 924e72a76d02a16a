using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Wharf.Core.Providers;

namespace Wharf.Providers;

/// <summary>
/// Checks <c>Wharf:Providers</c> at start: the rules every entry follows, then its adapter's own. Every message
/// names the key it is about, so a bad entry stops the start with a message that says where to look.
/// </summary>
internal sealed partial class ProvidersOptionsValidation(IEnumerable<IProviderAdapter> adapters) : IValidateOptions<ProvidersOptions>
{
    private readonly Dictionary<string, IProviderAdapter> _adapters = adapters.ToDictionary(a => a.Type, StringComparer.Ordinal);

    public const int MaxTimeoutSeconds = 86_400;

    public ValidateOptionsResult Validate(string? name, ProvidersOptions options)
    {
        var failures = new List<string>();
        foreach (var (id, entry) in options.Entries)
        {
            string key = $"{ProvidersOptions.Section}:{id}";
            if (!IdPattern().IsMatch(id))
            {
                failures.Add($"{key}: '{id}' is not a provider id (lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters).");
                continue;
            }
            if (id == ProviderAccess.Local)
            {
                failures.Add($"{key}: 'local' is Wharf's own store, always there; it cannot be configured.");
                continue;
            }
            failures.AddRange(CommonProblems(key, entry));
            if (string.IsNullOrEmpty(entry.Type))
            {
                failures.Add($"{key}:Type is missing ({KnownTypes()}).");
            }
            else if (!_adapters.TryGetValue(entry.Type, out var adapter))
            {
                failures.Add($"{key}:Type '{entry.Type}' is not a provider type ({KnownTypes()}).");
            }
            else
            {
                failures.AddRange(adapter.Validate(key, entry));
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private string KnownTypes() => string.Join(", ", _adapters.Keys);

    private static IEnumerable<string> CommonProblems(string key, ProviderOptions entry)
    {
        if (entry.BaseUrl is { Length: > 0 } baseUrl
            && (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Query.Length > 0 || uri.Fragment.Length > 0))
        {
            yield return $"{key}:BaseUrl '{baseUrl}' is not an absolute http or https URL without a query.";
        }
        if (entry.TimeoutSeconds is < 1 or > MaxTimeoutSeconds)
        {
            yield return $"{key}:TimeoutSeconds must be between 1 and {MaxTimeoutSeconds}.";
        }
        if (entry.MaxConcurrency is < 1)
        {
            yield return $"{key}:MaxConcurrency must be at least 1 (leave it out for no limit).";
        }
        if (entry.Models is { } models && models.Any(string.IsNullOrWhiteSpace))
        {
            yield return $"{key}:Models holds an empty model name.";
        }
        foreach (var (header, value) in entry.Headers)
        {
            if (!HeaderNamePattern().IsMatch(header) || header.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)
                || header.Equals("Host", StringComparison.OrdinalIgnoreCase) || header.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                yield return $"{key}:Headers:{header} is not a header Wharf can send (a token, not Host, Transfer-Encoding or Content-*).";
            }
            else if (value.Any(char.IsControl))
            {
                yield return $"{key}:Headers:{header} holds a control character.";
            }
        }
    }

    /// <summary>Lowercase, so that an id reads the same in a URL, a header and the configuration.</summary>
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    private static partial Regex HeaderNamePattern();
}
