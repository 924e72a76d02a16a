using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Gemini;

/// <summary>
/// A real server with one <c>gemini</c> provider (<c>gem</c>) on the Gemini simulator, its Files API and batch mode
/// included; the sweeper of upstream deletions runs every second, native batches are polled every second, and
/// <see cref="Model"/> routes to <c>gem</c>.
/// </summary>
public sealed class GeminiFilesFixture : IAsyncLifetime
{
    public const string ProviderId = "gem";

    /// <summary>A model routed to <c>gem</c>.</summary>
    public const string Model = "gemini-2.0-flash";

    public GeminiSimulator Gemini { get; private set; } = null!;

    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Gemini = await GeminiSimulator.StartAsync();
        Server = await WharfServer.StartAsync(
        [
            $"--Wharf:Providers:{ProviderId}:Type=gemini",
            $"--Wharf:Providers:{ProviderId}:BaseUrl={Gemini.BaseUrl}",
            $"--Wharf:Providers:{ProviderId}:ApiKey={Gemini.ApiKey}",
            $"--Wharf:Providers:{ProviderId}:TimeoutSeconds=20",
            "--Wharf:ProviderFiles:SweepIntervalSeconds=1",
            "--Wharf:ProviderFiles:RetryBaseSeconds=1",
            "--Wharf:ProviderFiles:RetryMaxSeconds=1",
            "--Wharf:ProviderFiles:DeleteWaitSeconds=5",
            $"--Wharf:Routing:Models:{Model}:0={ProviderId}",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:NativePollMinSeconds=1",
            "--Wharf:Batches:NativePollMaxSeconds=1",
        ]);
    }

    /// <summary>The official SDK's file client for a key, every request naming <c>gem</c> in <c>x-model-provider</c>.</summary>
    public OpenAIFileClient FileClient(string key)
    {
        var options = new OpenAIClientOptions { Endpoint = new Uri(Server.BaseAddress, "/v1") };
        options.AddPolicy(new ProviderHeader(), PipelinePosition.PerCall);
        return new OpenAIFileClient(new ApiKeyCredential(key), options);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Gemini.DisposeAsync();
    }

    private sealed class ProviderHeader : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-model-provider", ProviderId);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-model-provider", ProviderId);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
