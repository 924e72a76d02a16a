using System.Security.Cryptography;
using System.Text.Json;

namespace Wharf.Cli.Tests.Infrastructure;

/// <summary>
/// One real Wharf server for the CLI's tests (its admin API on, a <c>mock</c> provider as the default route for batch
/// lines), and a recording proxy in front of it that the CLI talks to.
/// </summary>
public sealed class CliServerFixture : IAsyncLifetime
{
    public WharfServer Server { get; private set; } = null!;

    public RecordingProxy Proxy { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await WharfServer.StartAsync(
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Providers:mock:LatencyMs=50",
            "--Wharf:Routing:Default:0=mock",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:ChunkFlushMilliseconds=100",
            "--Wharf:Batches:LineConcurrency=2");
        Proxy = new RecordingProxy(Server.BaseAddress);
    }

    public async Task DisposeAsync()
    {
        await Proxy.DisposeAsync();
        await Server.DisposeAsync();
        // The generated files (150 MB ones among them), also those a failed test left.
        Directory.Delete(TestFiles.Directory, recursive: true);
    }

    /// <summary>A CLI that talks to the server through the proxy, with the bootstrap key (and the admin key when asked).</summary>
    public CliRunner Cli(bool admin = false, string? apiKey = WharfServer.Key) =>
        new(Proxy.Address, apiKey, admin ? WharfServer.AdminKey : null);

    /// <summary>The server's own answer to <c>GET</c> <paramref name="path"/>, bypassing the proxy (what the test checks).</summary>
    public async Task<JsonElement> GetAsync(string path)
    {
        using var client = Server.CreateClient();
        using var response = await client.GetAsync(path);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}

[CollectionDefinition(Name)]
public sealed class CliCollection : ICollectionFixture<CliServerFixture>
{
    public const string Name = "wharf CLI against a real server";
}

/// <summary>Files the tests upload: made of pseudo-random bytes from a seed, hashed as they are written.</summary>
public static class TestFiles
{
    public static string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("wharf-cli-tests-").FullName;

    /// <summary>Writes <paramref name="bytes"/> bytes (4 MiB at a time, never the whole in memory); returns path and SHA-256.</summary>
    public static (string Path, string Sha256) Random(string name, long bytes, int seed)
    {
        string path = System.IO.Path.Combine(Directory, name);
        var random = new Random(seed);
        var buffer = new byte[4 * 1024 * 1024];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var file = File.Create(path))
        {
            for (long left = bytes; left > 0;)
            {
                int n = (int)Math.Min(buffer.Length, left);
                random.NextBytes(buffer.AsSpan(0, n));
                file.Write(buffer, 0, n);
                hash.AppendData(buffer, 0, n);
                left -= n;
            }
        }
        return (path, Convert.ToHexStringLower(hash.GetCurrentHash()));
    }

    public static string Sha256Of(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
