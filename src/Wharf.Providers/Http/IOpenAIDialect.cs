using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>Where an OpenAI-style provider takes each request and how it is authenticated: what differs between them.</summary>
internal interface IOpenAIDialect
{
    /// <summary>The URL of a model endpoint for <paramref name="model"/> (the name the provider knows).</summary>
    Uri ModelUri(ProviderCapability endpoint, string model);

    /// <summary>The Files API: <c>files</c>, or <c>files/{id}</c> when <paramref name="fileId"/> is given, with <paramref name="query"/> (escaped, may be empty).</summary>
    Uri FilesUri(string? fileId, string query);

    /// <summary>Puts the credential on a request.</summary>
    void Authorize(HttpRequestMessage request);
}
