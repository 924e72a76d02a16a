namespace Wharf.Core.Providers;

/// <summary>What an upstream can do, as an adapter declares it.</summary>
public enum ProviderCapability
{
    /// <summary>A Files API: upload, list, delete.</summary>
    Files,

    /// <summary>A native batch API.</summary>
    Batches,

    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
}

public static class ProviderCapabilities
{
    /// <summary>The capability's name on the wire (<c>files</c>, <c>chat.completions</c>, ...).</summary>
    public static string WireName(this ProviderCapability capability) => capability switch
    {
        ProviderCapability.Files => "files",
        ProviderCapability.Batches => "batches",
        ProviderCapability.ChatCompletions => "chat.completions",
        ProviderCapability.Completions => "completions",
        ProviderCapability.Embeddings => "embeddings",
        ProviderCapability.Responses => "responses",
        _ => throw new ArgumentOutOfRangeException(nameof(capability)),
    };

    /// <summary>Every model endpoint, in the order they are listed.</summary>
    public static readonly IReadOnlyList<ProviderCapability> ModelEndpoints =
        [ProviderCapability.ChatCompletions, ProviderCapability.Completions, ProviderCapability.Embeddings, ProviderCapability.Responses];

    /// <summary>The endpoint's path below an OpenAI-style base URL (<c>chat/completions</c>, ...).</summary>
    public static string ModelPath(this ProviderCapability endpoint) => endpoint switch
    {
        ProviderCapability.ChatCompletions => "chat/completions",
        ProviderCapability.Completions => "completions",
        ProviderCapability.Embeddings => "embeddings",
        ProviderCapability.Responses => "responses",
        _ => throw new ArgumentOutOfRangeException(nameof(endpoint), "Not a model endpoint."),
    };
}
