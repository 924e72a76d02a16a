using System.ClientModel;
using System.Net;
using System.Security.Cryptography;
using Npgsql;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Testing;

namespace Wharf.Server.Tests;

/// <summary>
/// The real server on the PostgreSQL catalog (<c>Wharf:Storage:Catalog=postgres</c>) of a throwaway cluster, blobs on
/// disk: the Files API through the official SDK, a bad connection string at start, and an outage while it runs.
/// </summary>
public sealed class PostgresCatalogTests
{
    private const string ConnectionStringKey = "Wharf:Storage:Postgres:ConnectionString";

    private static string[] PostgresArgs(string connectionString) =>
        ["--Wharf:Storage:Catalog=postgres", $"--{ConnectionStringKey}={connectionString}"];

    [Fact]
    public async Task TheFilesApiRoundTripsThroughTheSdkOnThePostgresCatalog()
    {
        var cluster = await PostgresCluster.Shared;
        string connectionString = await cluster.CreateDatabaseAsync();
        await using var server = await WharfServer.StartAsync(PostgresArgs(connectionString));
        var files = server.CreateFileClient();

        byte[] content = RandomNumberGenerator.GetBytes(200_000);
        OpenAIFile uploaded = await files.UploadFileAsync(new MemoryStream(content), "data.bin", FileUploadPurpose.Assistants);
        OpenAIFile second = await files.UploadFileAsync(BinaryData.FromString("{\"n\":1}\n"), "lines.jsonl", FileUploadPurpose.FineTune);

        Assert.Equal(content.Length, (await files.GetFileAsync(uploaded.Id)).Value.SizeInBytesLong);
        Assert.Equal(content, (await files.DownloadFileAsync(uploaded.Id)).Value.ToArray());
        OpenAIFileCollection listed = await files.GetFilesAsync();
        Assert.Equal([second.Id, uploaded.Id], listed.Select(f => f.Id));
        OpenAIFileCollection fineTune = await files.GetFilesAsync(FilePurpose.FineTune);
        Assert.Equal([second.Id], fineTune.Select(f => f.Id));

        // The rows are PostgreSQL's, not a SQLite file's in the data directory.
        Assert.False(File.Exists(Path.Combine(server.DataDir, "wharf.db")));
        Assert.Equal(2L, await CountFilesAsync(connectionString));

        Assert.True((await files.DeleteFileAsync(uploaded.Id)).Value.Deleted);
        var gone = await Assert.ThrowsAsync<ClientResultException>(() => files.GetFileAsync(uploaded.Id));
        Assert.Equal(404, gone.Status);
        Assert.Equal(1L, await CountFilesAsync(connectionString));
    }

    [Fact]
    public async Task AnUnreachableDatabaseStopsTheStartNamingTheSetting()
    {
        string unreachable = $"Host=127.0.0.1;Port={FreePort()};Username=wharf;Timeout=3";
        string data = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string output = await WharfServer.RunFailingStartAsync(data, [], PostgresArgs(unreachable));
            Assert.Contains(ConnectionStringKey, output, StringComparison.Ordinal);
            Assert.DoesNotContain("Now listening", output, StringComparison.Ordinal);

            string missing = await WharfServer.RunFailingStartAsync(data, [], ["--Wharf:Storage:Catalog=postgres"]);
            Assert.Contains(ConnectionStringKey, missing, StringComparison.Ordinal);

            string unknown = await WharfServer.RunFailingStartAsync(data, [], ["--Wharf:Storage:Catalog=oracle"]);
            Assert.Contains("Wharf:Storage:Catalog", unknown, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>
    /// PostgreSQL stopped while the server runs: requests are answered 503 <c>storage_unavailable</c> with
    /// <c>Retry-After</c>, an upload then is not acknowledged, and once PostgreSQL is back the server answers again by itself.
    /// </summary>
    [Fact]
    public async Task AnOutageOfTheDatabaseIs503ThenTheServerRecovers()
    {
        await using var cluster = await PostgresCluster.StartAsync();
        string connectionString = await cluster.CreateDatabaseAsync();
        await using var server = await WharfServer.StartAsync([.. PostgresArgs(connectionString), "--Wharf:Auth:KeyCacheSeconds=0"]);
        using var client = server.CreateClient();
        var before = await client.PostAsync("/v1/files", Upload("before.txt"));
        Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        await cluster.StopAsync();
        using (var list = await client.GetAsync("/v1/files"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, list.StatusCode);
            Assert.Contains("storage_unavailable", await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.True(list.Headers.RetryAfter is not null, "Retry-After is missing");
        }
        using (var upload = await client.PostAsync("/v1/files", Upload("during.txt")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, upload.StatusCode);
        }

        await cluster.StartAgainAsync();
        HttpStatusCode status = HttpStatusCode.ServiceUnavailable;
        for (int attempt = 0; attempt < 50 && status != HttpStatusCode.OK; attempt++)
        {
            using var again = await client.GetAsync("/v1/files");
            status = again.StatusCode;
            if (status != HttpStatusCode.OK)
            {
                await Task.Delay(200);
            }
        }
        Assert.Equal(HttpStatusCode.OK, status);
        using var after = await client.PostAsync("/v1/files", Upload("after.txt"));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(2L, await CountFilesAsync(connectionString));
    }

    private static MultipartFormDataContent Upload(string name) => new()
    {
        { new StringContent("hello"), "file", name },
        { new StringContent("assistants"), "purpose" },
    };

    private static async Task<long> CountFilesAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM files;", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
