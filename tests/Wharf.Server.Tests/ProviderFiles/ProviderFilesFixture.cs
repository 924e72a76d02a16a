using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.ProviderFiles;

/// <summary>
/// A real server with two OpenAI-compatible providers on simulators (<c>openai</c> for the normal path, <c>flaky</c>
/// for scripted faults, so that a fault never meets another test's call) and a <c>mock</c> one (no Files API). The
/// sweeper of upstream deletions runs every second and retries after one.
/// </summary>
public sealed class ProviderFilesFixture : IAsyncLifetime
{
    public OpenAISimulator OpenAI { get; private set; } = null!;

    public OpenAISimulator Flaky { get; private set; } = null!;

    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        OpenAI = await OpenAISimulator.StartAsync("sk-sim-openai-functional-0001");
        Flaky = await OpenAISimulator.StartAsync("sk-sim-flaky-functional-0002");
        Server = await WharfServer.StartAsync(
        [
            .. Provider("openai", OpenAI),
            .. Provider("flaky", Flaky),
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:ProviderFiles:SweepIntervalSeconds=1",
            "--Wharf:ProviderFiles:RetryBaseSeconds=1",
            "--Wharf:ProviderFiles:RetryMaxSeconds=1",
            "--Wharf:ProviderFiles:DeleteWaitSeconds=5",
        ]);
    }

    private static string[] Provider(string id, UpstreamSimulator simulator) =>
    [
        $"--Wharf:Providers:{id}:Type=openai",
        $"--Wharf:Providers:{id}:BaseUrl={simulator.BaseUrl}",
        $"--Wharf:Providers:{id}:ApiKey={simulator.ApiKey}",
        $"--Wharf:Providers:{id}:TimeoutSeconds=20",
    ];

    /// <summary>The official SDK's file client, every request carrying <c>x-model-provider</c>.</summary>
    public OpenAIFileClient FileClientFor(string provider, string key = WharfServer.Key)
    {
        var options = new OpenAIClientOptions { Endpoint = new Uri(Server.BaseAddress, "/v1") };
        options.AddPolicy(new ModelProviderHeader(provider), PipelinePosition.PerCall);
        return new OpenAIFileClient(new ApiKeyCredential(key), options);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await OpenAI.DisposeAsync();
        await Flaky.DisposeAsync();
    }

    /// <summary>Adds <c>x-model-provider</c> to every request the SDK sends.</summary>
    private sealed class ModelProviderHeader(string provider) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-model-provider", provider);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-model-provider", provider);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
