namespace Wharf.Core.Providers;

/// <summary>
/// One model request as sent to one provider: the endpoint, the model name the provider knows, and the JSON body
/// with <c>model</c>, Wharf's own fields and Wharf's file ids already rewritten. Pass-through adapters send the
/// body as it is; translating adapters (Anthropic, Gemini) read it.
/// </summary>
public sealed record ModelCall(ProviderCapability Endpoint, string Model, ReadOnlyMemory<byte> Body, bool Stream);

/// <summary>
/// A 2xx answer from an upstream, its body not read yet (streamed to the client as it arrives). The owner
/// disposes it, which releases the upstream connection.
/// </summary>
public sealed class ModelResponse(int status, string? contentType, Stream content, IAsyncDisposable? owner = null) : IAsyncDisposable
{
    public int Status => status;

    /// <summary>The answer's media type, e.g. <c>application/json</c> or <c>text/event-stream</c>.</summary>
    public string? ContentType => contentType;

    public bool IsEventStream => contentType?.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The body as the upstream sends it (translated, for translating adapters).</summary>
    public Stream Content => content;

    public async ValueTask DisposeAsync()
    {
        await content.DisposeAsync();
        if (owner is not null)
        {
            await owner.DisposeAsync();
        }
    }
}
