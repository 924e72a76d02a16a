using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>Options under <c>Wharf:Routing</c>: where model requests go, and how failures are retried.</summary>
public sealed class RoutingOptions
{
    public const string Section = "Wharf:Routing";

    /// <summary>Providers, in fallback order, for a request that names no provider and whose model has no list.</summary>
    public List<string> Default { get; set; } = [];

    /// <summary>Providers, in fallback order, per model name (as the client sends it).</summary>
    public Dictionary<string, List<string>> Models { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Retries of a retryable failure on the same provider before the next one is tried.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>The longest <c>Retry-After</c> honoured; a longer one is waited this long.</summary>
    [Range(0, 3600)]
    public int MaxRetryAfterSeconds { get; set; } = 30;

    /// <summary>The backoff before the first retry; it doubles with each retry, and a random part of it is waited.</summary>
    [Range(1, 60_000)]
    public int RetryBaseDelayMilliseconds { get; set; } = 200;

    /// <summary>The largest backoff (before jitter), however many retries.</summary>
    [Range(1, 600_000)]
    public int RetryMaxDelayMilliseconds { get; set; } = 5_000;
}

/// <summary>Options under <c>Wharf:Requests</c>: what a model request may be.</summary>
public sealed class ModelRequestOptions
{
    public const string Section = "Wharf:Requests";

    /// <summary>The largest JSON body of a model request (default 32 MiB); larger: 413.</summary>
    [Range(1, int.MaxValue)]
    public int MaxBodyBytes { get; set; } = 32 * 1024 * 1024;
}

/// <summary>Options under <c>Wharf:Responses</c>: what Wharf adds to an upstream's answer.</summary>
public sealed class ModelResponseOptions
{
    public const string Section = "Wharf:Responses";

    /// <summary>Adds <c>extra_fields</c> to JSON object answers (default true).</summary>
    public bool ExtraFields { get; set; } = true;

    /// <summary>
    /// A JSON answer of at most this many bytes is read whole before it is passed on: checked (a 2xx answer that is
    /// not JSON is a failure, retried and fallen back like any other) and given <c>extra_fields</c>. A larger one is
    /// passed through as it arrives, untouched. Default 4 MiB.
    /// </summary>
    [Range(0, 256 * 1024 * 1024)]
    public int MaxBufferedJsonBytes { get; set; } = 4 * 1024 * 1024;
}

/// <summary>Refuses routing lists that name a provider that is not configured, naming the key at fault.</summary>
public sealed class RoutingOptionsValidation(IProviderRegistry providers) : IValidateOptions<RoutingOptions>
{
    public ValidateOptionsResult Validate(string? name, RoutingOptions options)
    {
        var failures = new List<string>();
        Check($"{RoutingOptions.Section}:Default", options.Default, failures);
        foreach (var (model, list) in options.Models)
        {
            if (list is null || list.Count == 0)
            {
                failures.Add($"{RoutingOptions.Section}:Models:{model} is empty: list the providers that serve '{model}', in fallback order.");
                continue;
            }
            Check($"{RoutingOptions.Section}:Models:{model}", list, failures);
        }
        if (options.RetryBaseDelayMilliseconds > options.RetryMaxDelayMilliseconds)
        {
            failures.Add($"{RoutingOptions.Section}:RetryBaseDelayMilliseconds must not exceed {RoutingOptions.Section}:RetryMaxDelayMilliseconds.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private void Check(string key, List<string> list, List<string> failures)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (!providers.TryGet(list[i] ?? "", out _))
            {
                failures.Add($"{key}:{i} names '{list[i]}', which is not a configured provider (configure it under Wharf:Providers:{list[i]}, or remove it).");
            }
        }
    }
}
