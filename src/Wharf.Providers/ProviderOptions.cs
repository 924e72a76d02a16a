namespace Wharf.Providers;

/// <summary>One upstream, as configured under <c>Wharf:Providers:&lt;id&gt;</c>.</summary>
public sealed class ProviderOptions
{
    /// <summary>The adapter: <c>openai</c>, <c>azure</c>, <c>gemini</c>, <c>anthropic</c> or <c>mock</c>.</summary>
    public string? Type { get; set; }

    /// <summary>What the provider's own SDK takes as base URL; each type has its default, except azure.</summary>
    public string? BaseUrl { get; set; }

    public string? ApiKey { get; set; }

    /// <summary>Azure: a dated <c>api-version</c> (deployment paths) or <c>v1</c> (the <c>/openai/v1/</c> paths).</summary>
    public string? ApiVersion { get; set; }

    /// <summary>Headers sent with every request to this provider.</summary>
    public Dictionary<string, string> Headers { get; set; } = [];

    /// <summary>How long an answer may take (see docs/configuration.md for what is timed).</summary>
    public int TimeoutSeconds { get; set; } = 300;

    /// <summary>Most calls in flight to this provider from this node; more wait. Null: no limit.</summary>
    public int? MaxConcurrency { get; set; }

    /// <summary>The only models a model-routed request may send here; null or empty for any.</summary>
    public List<string>? Models { get; set; }

    public bool Enabled { get; set; } = true;

    /// <summary>
    /// <c>openai</c> and <c>azure</c>: whether the provider has a native batch API (capability <c>batches</c>); null for
    /// the type's default (yes). <c>false</c> for a server without one (vLLM, Ollama, ...).
    /// </summary>
    public bool? NativeBatches { get; set; }

    /// <summary>
    /// <c>anthropic</c>: the <c>max_tokens</c> sent when a chat request gives neither <c>max_tokens</c> nor
    /// <c>max_completion_tokens</c> (Anthropic requires one); null for the type's default (4096).
    /// </summary>
    public int? DefaultMaxTokens { get; set; }

    /// <summary>Mock: how long each answer takes.</summary>
    public int LatencyMs { get; set; }

    /// <summary>Mock: the share of calls (0..1) that fail with a retryable 503.</summary>
    public double FailureRate { get; set; }
}

/// <summary>Every configured upstream, by id (<c>Wharf:Providers</c>).</summary>
public sealed class ProvidersOptions
{
    public const string Section = "Wharf:Providers";

    /// <summary>By id, in the configuration's order (which sorts keys).</summary>
    public Dictionary<string, ProviderOptions> Entries { get; } = new(StringComparer.Ordinal);
}
