using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Console.Tests.Infrastructure;

/// <summary>
/// The real Wharf server in its own process (the launcher the server's functional tests use), with a workspace key,
/// the admin key and two <c>mock</c> providers: <c>mock</c>, instant, and <c>slowmock</c>, which takes a while per
/// request, so that a batch on it is seen running before it completes.
/// </summary>
public sealed class ConsoleServer : IAsyncDisposable
{
    public const string Key = WharfServer.Key;
    public const string AdminKey = WharfServer.AdminKey;
    public const int SlowMockLatencyMs = 400;

    private readonly WharfServer _server;

    private ConsoleServer(WharfServer server) => _server = server;

    public Uri BaseAddress => _server.BaseAddress;

    public Uri ConsoleAddress => new(BaseAddress, "/console/");

    /// <summary>Everything the server printed so far (stdout and stderr).</summary>
    public string Output => _server.Output;

    public static async Task<ConsoleServer> StartAsync() => new(await WharfServer.StartAsync(
        "--Wharf:Providers:mock:Type=mock",
        "--Wharf:Providers:slowmock:Type=mock",
        "--Wharf:Providers:slowmock:LatencyMs=" + SlowMockLatencyMs,
        "--Wharf:Providers:slowmock:MaxConcurrency=2"));

    public HttpClient CreateClient(string? key = Key) => _server.CreateClient(key);

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
