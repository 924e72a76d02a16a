using Wharf.Core.Providers;

namespace Wharf.Providers.Tests;

public sealed class ConfigurationTests
{
    [Fact]
    public async Task TheRegistryHoldsLocalFirstThenTheConfiguredProvidersWithTheirTypesCapabilitiesAndModels()
    {
        await using var harness = ProviderHarness.Start(
            ("groq:Type", "openai"), ("groq:ApiKey", "gsk-test-123456"), ("groq:BaseUrl", "https://api.groq.com/openai/v1"),
            ("groq:Models:0", "llama-3.1-8b-instant"), ("groq:Models:1", "mixtral"),
            ("azure-eu:Type", "azure"), ("azure-eu:ApiKey", "0123456789abcdef"), ("azure-eu:BaseUrl", "https://example.openai.azure.com"),
            ("demo:Type", "mock"), ("demo:Enabled", "false"));

        var all = harness.Registry.All;
        Assert.Equal(["local", "azure-eu", "demo", "groq"], all.Select(p => p.Id));
        Assert.Equal(["local", "azure", "mock", "openai"], all.Select(p => p.Provider.Type));
        Assert.Empty(all[0].Provider.Capabilities);
        Assert.True(all[0].Enabled);

        Assert.True(harness.Registry.TryGet("groq", out var groq));
        Assert.Equal(new HashSet<string> { "llama-3.1-8b-instant", "mixtral" }, groq.Models);
        Assert.True(groq.Enabled);
        Assert.Equal(
            new HashSet<ProviderCapability> { ProviderCapability.Files, ProviderCapability.Batches, ProviderCapability.ChatCompletions, ProviderCapability.Completions, ProviderCapability.Embeddings, ProviderCapability.Responses },
            groq.Provider.Capabilities);

        Assert.True(harness.Registry.TryGet("demo", out var demo));
        Assert.False(demo.Enabled);
        Assert.Null(demo.Models);
        Assert.Equal(new HashSet<ProviderCapability>(ProviderCapabilities.ModelEndpoints), demo.Provider.Capabilities);

        Assert.True(harness.Registry.TryGet("azure-eu", out var azure));
        Assert.DoesNotContain(ProviderCapability.Responses, azure.Provider.Capabilities);
        Assert.Contains(ProviderCapability.Batches, azure.Provider.Capabilities);
        Assert.False(harness.Registry.TryGet("nope", out _));
    }

    [Fact]
    public async Task AnOpenAIServerWithoutABatchApiIsConfiguredWithNativeBatchesFalse()
    {
        await using var harness = ProviderHarness.Start(("vllm:Type", "openai"), ("vllm:ApiKey", "none-at-all"), ("vllm:BaseUrl", "http://127.0.0.1:8000/v1"), ("vllm:NativeBatches", "false"));
        Assert.DoesNotContain(ProviderCapability.Batches, harness["vllm"].Capabilities);
        Assert.Contains(ProviderCapability.Files, harness["vllm"].Capabilities);
    }

    [Fact]
    public void NativeBatchesOnTheMockProviderStopsTheStart()
    {
        var failures = ProviderHarness.ValidationFailures(("demo:Type", "mock"), ("demo:NativeBatches", "true"));
        Assert.Contains(failures, f => f.StartsWith("Wharf:Providers:demo:NativeBatches", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithoutProvidersOnlyLocalIsThere()
    {
        await using var harness = ProviderHarness.Start();
        Assert.Equal(["local"], harness.Registry.All.Select(p => p.Id));
    }

    [Fact]
    public async Task AzureOnTheV1PathsAlsoServesResponses()
    {
        await using var harness = ProviderHarness.Start(
            ("az:Type", "azure"), ("az:ApiKey", "0123456789abcdef"), ("az:BaseUrl", "https://example.openai.azure.com"), ("az:ApiVersion", "v1"));
        Assert.Contains(ProviderCapability.Responses, harness["az"].Capabilities);
    }

    [Theory]
    [InlineData("groq:Type", "foo", "Wharf:Providers:groq:Type 'foo' is not a provider type (openai, azure, mock, gemini, anthropic)")]
    [InlineData("groq:Type", null, "Wharf:Providers:groq:Type is missing")]
    [InlineData("groq:TimeoutSeconds", "0", "Wharf:Providers:groq:TimeoutSeconds must be between 1 and 86400")]
    [InlineData("groq:MaxConcurrency", "0", "Wharf:Providers:groq:MaxConcurrency must be at least 1")]
    [InlineData("groq:BaseUrl", "ftp://example.com", "Wharf:Providers:groq:BaseUrl 'ftp://example.com' is not an absolute http or https URL")]
    [InlineData("groq:BaseUrl", "https://example.com/v1?x=1", "Wharf:Providers:groq:BaseUrl 'https://example.com/v1?x=1' is not an absolute http or https URL")]
    [InlineData("groq:Headers:Content-Type", "text/plain", "Wharf:Providers:groq:Headers:Content-Type is not a header Wharf can send")]
    [InlineData("groq:Headers:Bad Name", "x", "Wharf:Providers:groq:Headers:Bad Name is not a header Wharf can send")]
    [InlineData("groq:Headers:X-Title", "a\u0001b", "Wharf:Providers:groq:Headers:X-Title holds a control character")]
    [InlineData("groq:Models:0", " ", "Wharf:Providers:groq:Models holds an empty model name")]
    [InlineData("groq:ApiVersion", "2024-10-21", "Wharf:Providers:groq:ApiVersion is not used by type 'openai'")]
    public void ABadEntryStopsTheStartWithAMessageNamingItsKey(string key, string? value, string expected)
    {
        var failures = ProviderHarness.ValidationFailures(("groq:Type", "openai"), ("groq:ApiKey", "gsk-test-123456"), (key, value));
        Assert.Contains(failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void AnOpenAIEntryWithoutAKeySaysWhichKeyIsMissing()
    {
        var failures = ProviderHarness.ValidationFailures(("groq:Type", "openai"));
        Assert.Equal(["Wharf:Providers:groq:ApiKey is missing: type 'openai' sends it as 'Authorization: Bearer' (for a server that takes no key, set any value)."], failures);
    }

    [Fact]
    public void AnAzureEntryNeedsItsBaseUrlAndKeyAndAKnownApiVersionStyle()
    {
        var failures = ProviderHarness.ValidationFailures(("az:Type", "azure"), ("az:ApiVersion", "latest"));
        Assert.Contains("Wharf:Providers:az:BaseUrl is missing: type 'azure' needs the resource's endpoint, e.g. https://RESOURCE.openai.azure.com.", failures);
        Assert.Contains("Wharf:Providers:az:ApiKey is missing: type 'azure' sends it as the 'api-key' header.", failures);
        Assert.Contains(failures, f => f.StartsWith("Wharf:Providers:az:ApiVersion 'latest' is neither 'v1' nor a dated api-version", StringComparison.Ordinal));
        Assert.Empty(ProviderHarness.ValidationFailures(("az:Type", "azure"), ("az:ApiKey", "k0123456789"), ("az:BaseUrl", "https://x.openai.azure.com"), ("az:ApiVersion", "2025-04-01-preview")));
    }

    [Theory]
    [InlineData("LatencyMs", "-1", "Wharf:Providers:demo:LatencyMs must be between 0 and 600000.")]
    [InlineData("FailureRate", "1.5", "Wharf:Providers:demo:FailureRate must be between 0 and 1.")]
    [InlineData("FailureRate", "NaN", "Wharf:Providers:demo:FailureRate must be between 0 and 1.")]
    public void MockOptionsAreChecked(string option, string value, string expected)
    {
        Assert.Equal([expected], ProviderHarness.ValidationFailures(("demo:Type", "mock"), ("demo:" + option, value)));
    }

    [Theory]
    [InlineData("Groq")]
    [InlineData("-groq")]
    [InlineData("gr/oq")]
    [InlineData("a2345678901234567890123456789012345678901234567890123456789012345")]
    public void AnIdOutsideThePatternIsRefused(string id)
    {
        var failures = ProviderHarness.ValidationFailures((id + ":Type", "mock"));
        Assert.Equal([$"Wharf:Providers:{id}: '{id}' is not a provider id (lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters)."], failures);
    }

    [Fact]
    public void LocalIsReserved()
    {
        Assert.Equal(["Wharf:Providers:local: 'local' is Wharf's own store, always there; it cannot be configured."], ProviderHarness.ValidationFailures(("local:Type", "mock")));
    }

    [Fact]
    public void AGoodConfigurationPasses()
    {
        Assert.Empty(ProviderHarness.ValidationFailures(
            ("openai:Type", "openai"), ("openai:ApiKey", "sk-123456789"), ("openai:Headers:OpenAI-Organization", "org-1"), ("openai:MaxConcurrency", "4"),
            ("a.b_c-9:Type", "mock"), ("a.b_c-9:LatencyMs", "20"), ("a.b_c-9:FailureRate", "0.5")));
    }
}
