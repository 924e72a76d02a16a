using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>Where an OpenAI-style provider takes each request and how it is authenticated: what differs between them.</summary>
internal interface IOpenAIDialect
{
    /// <summary>The URL of a model endpoint for <paramref name="model"/> (the name the provider knows).</summary>
    Uri ModelUri(ProviderCapability endpoint, string model);

    /// <summary>The Files API: <c>files</c>, or <c>files/{id}</c> when <paramref name="fileId"/> is given, with <paramref name="query"/> (escaped, may be empty).</summary>
    Uri FilesUri(string? fileId, string query);

    /// <summary>A file's content: <c>files/{id}/content</c>.</summary>
    Uri FileContentUri(string fileId);

    /// <summary>
    /// The batch API: <c>batches</c>, <c>batches/{id}</c> when <paramref name="batchId"/> is given, <c>batches/{id}/{action}</c>
    /// when <paramref name="action"/> is too, with <paramref name="query"/> (escaped, may be empty).
    /// </summary>
    Uri BatchesUri(string? batchId, string? action, string query);

    /// <summary>A batch's <c>endpoint</c> as the provider names it, from OpenAI's name (<c>/v1/chat/completions</c>).</summary>
    string BatchEndpoint(string endpoint);

    /// <summary>Puts the credential on a request.</summary>
    void Authorize(HttpRequestMessage request);
}
