namespace Wharf.Server.Tests.Infrastructure;

/// <summary>One real server per test class.</summary>
public class ServerFixture : IAsyncLifetime
{
    public WharfServer Server { get; private set; } = null!;

    protected virtual string[] Args => [];

    /// <summary>The server's configuration, for a fixture that must start something else first.</summary>
    protected virtual Task<string[]> ArgsAsync() => Task.FromResult(Args);

    public async Task InitializeAsync() => Server = await WharfServer.StartAsync(await ArgsAsync());

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>A server with a 1 MiB upload limit and small list limits, to test the limits themselves.</summary>
public sealed class SmallLimitsServerFixture : ServerFixture
{
    public const int MaxUploadBytes = 1024 * 1024;

    protected override string[] Args =>
    [
        "--Wharf:Files:MaxUploadBytes=" + MaxUploadBytes,
        "--Wharf:Files:DefaultListLimit=7",
        "--Wharf:Files:MaxListLimit=50",
    ];
}

/// <summary>A server that hashes no out-of-order upload at completion: every such file gets its SHA-256 afterwards.</summary>
public sealed class DeferredHashingServerFixture : ServerFixture
{
    public const string Arg = "--Wharf:Files:HashAtCompletionMaxBytes=0";

    protected override string[] Args => [Arg];
}
