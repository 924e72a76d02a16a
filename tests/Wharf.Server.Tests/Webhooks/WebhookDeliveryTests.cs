using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Webhooks;

/// <summary>A server that runs batches on the <c>mock</c> provider (and a slow one), with a webhook receiver on loopback.</summary>
public sealed class WebhookServerFixture : IAsyncLifetime
{
    public static readonly string[] Args =
    [
        "--Wharf:Providers:mock:Type=mock",
        "--Wharf:Providers:slow:Type=mock",
        "--Wharf:Providers:slow:LatencyMs=600000",
        "--Wharf:Batches:PollIntervalMilliseconds=100",
        "--Wharf:Batches:ChunkFlushMilliseconds=100",
    ];

    public WharfServer Server { get; private set; } = null!;

    public WebhookReceiver Receiver { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Receiver = await WebhookReceiver.StartAsync();
        Server = await WharfServer.StartAsync(Args);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Receiver.DisposeAsync();
    }
}

/// <summary>
/// Webhooks through the real server: a batch that ends sends OpenAI's event, signed as Standard Webhooks (checked
/// here with the test's own HMAC-SHA256), after its final status is stored.
/// </summary>
public sealed class WebhookDeliveryTests(WebhookServerFixture fixture) : IClassFixture<WebhookServerFixture>
{
    private WharfServer Server => fixture.Server;

    private WebhookReceiver Receiver => fixture.Receiver;

    [Fact]
    public async Task A_completed_batch_posts_its_signed_event_and_a_GET_of_the_batch_on_receipt_shows_it_completed()
    {
        var (_, secret, _, client) = await WebhookKit.NewTenantAsync(Server, "hooked", Receiver.Url("/hooks/completed?token=abc"));
        using var _ = client;
        // On receipt, before answering, the receiver reads the batch as Wharf shows it at that moment.
        var statusOnReceipt = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        Receiver.OnReceipt = async request =>
        {
            if (request.Path.StartsWith("/hooks/completed", StringComparison.Ordinal))
            {
                string batchId = WebhookKit.Parse(request).GetProperty("data").GetProperty("id").GetString()!;
                statusOnReceipt[batchId] = (await Wire.GetJsonAsync(client, $"/v1/batches/{batchId}")).Status();
            }
        };

        string fileId = (await Wire.UploadAsync(client, "batch", BatchKit.Lines(3, "mock/hook-model"), "input.jsonl")).GetProperty("id").GetString()!;
        var batch = await BatchKit.CreateAsync(client, fileId);
        string batchId = batch.GetProperty("id").GetString()!;
        long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        var request = Assert.Single(await WebhookKit.WaitForEventAboutAsync(Receiver, batchId));
        Assert.Equal("completed", statusOnReceipt[batchId]);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/hooks/completed?token=abc", request.Path);
        Assert.Equal("application/json", request.ContentType);
        Assert.True(WebhookReceiver.SignatureIsValid(request, secret), "the signature does not verify with the workspace's secret");
        long timestamp = long.Parse(request.WebhookTimestamp!, CultureInfo.InvariantCulture);
        Assert.InRange(timestamp, before - 5, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 5); // a receiver refuses one 5 minutes off
        var evt = WebhookKit.Parse(request);
        Assert.Equal(request.WebhookId, evt.GetProperty("id").GetString());
        Assert.Matches("^evt_[0-9a-f]{32}$", request.WebhookId);
        Assert.Equal("event", evt.GetProperty("object").GetString());
        Assert.Equal("batch.completed", evt.GetProperty("type").GetString());
        Assert.Equal(batchId, evt.GetProperty("data").GetProperty("id").GetString());
        var ended = await Wire.GetJsonAsync(client, $"/v1/batches/{batchId}");
        Assert.Equal(ended.GetProperty("completed_at").GetInt64(), evt.GetProperty("created_at").GetInt64());
        Assert.Equal(["id", "object", "created_at", "type", "data"], evt.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public async Task A_failed_and_a_cancelled_batch_post_batch_failed_and_batch_cancelled()
    {
        var (_, secret, _, client) = await WebhookKit.NewTenantAsync(Server, "ends", Receiver.Url("/hooks/ends"));
        using var _ = client;

        // A line without custom_id fails the batch at validation.
        string bad = (await Wire.UploadAsync(client, "batch", """{"method":"POST","url":"/v1/chat/completions","body":{"model":"mock/m"}}""" + "\n", "bad.jsonl"))
            .GetProperty("id").GetString()!;
        string failedId = (await BatchKit.CreateAsync(client, bad)).GetProperty("id").GetString()!;
        // Lines on a provider that answers after 10 minutes: cancelled while they wait.
        string slow = (await Wire.UploadAsync(client, "batch", BatchKit.Lines(2, "slow/m"), "slow.jsonl")).GetProperty("id").GetString()!;
        string cancelledId = (await BatchKit.CreateAsync(client, slow)).GetProperty("id").GetString()!;
        await BatchKit.WaitAsync(client, cancelledId, b => b.Status() == "in_progress");
        using (var cancel = await client.PostAsync($"/v1/batches/{cancelledId}/cancel", null))
        {
            Assert.True(cancel.IsSuccessStatusCode);
        }

        foreach (var (batchId, type, status) in new[] { (failedId, "batch.failed", "failed"), (cancelledId, "batch.cancelled", "cancelled") })
        {
            var request = Assert.Single(await WebhookKit.WaitForEventAboutAsync(Receiver, batchId));
            Assert.True(WebhookReceiver.SignatureIsValid(request, secret));
            Assert.Equal(type, WebhookKit.Parse(request).GetProperty("type").GetString());
            Assert.Equal(status, (await Wire.GetJsonAsync(client, $"/v1/batches/{batchId}")).Status());
        }
    }
}

/// <summary>An event not yet delivered when the server is killed (SIGKILL) is delivered after the restart.</summary>
public sealed class WebhookCrashTests
{
    [Fact]
    public async Task An_undelivered_event_is_delivered_after_a_kill_and_a_restart_with_the_same_id()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.DefaultStatus = 503;
        await using var server = await WharfServer.StartAsync([.. WebhookServerFixture.Args, "--Wharf:Webhooks:FirstRetrySeconds=2"]);
        var (_, secret, key, client) = await WebhookKit.NewTenantAsync(server, "crash", receiver.Url("/hooks/crash"));
        using var _ = client;
        string fileId = (await Wire.UploadAsync(client, "batch", BatchKit.Lines(2, "mock/m"), "input.jsonl")).GetProperty("id").GetString()!;
        string batchId = (await BatchKit.CreateAsync(client, fileId)).GetProperty("id").GetString()!;

        var first = Assert.Single(await WebhookKit.WaitForEventAboutAsync(receiver, batchId));
        // The failed attempt is recorded (its retry scheduled) before the kill: read the outbox as it is on disk.
        string dbPath = Path.Combine(server.DataDir, "wharf.db");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Attempts(dbPath, first.WebhookId!) < 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the failed attempt was never recorded");
            await Task.Delay(20);
        }
        server.Kill();
        Assert.False(server.IsRunning);
        receiver.DefaultStatus = 200;
        int before = receiver.Requests.Count;

        await server.RestartAsync();

        var requests = await WebhookKit.WaitForEventAboutAsync(receiver, batchId, count: 2);
        Assert.Equal(before + 1, receiver.Requests.Count);
        Assert.Equal([first.WebhookId, first.WebhookId], requests.Select(r => r.WebhookId));
        Assert.Equal(requests[0].BodyText, requests[1].BodyText);
        Assert.All(requests, r => Assert.True(WebhookReceiver.SignatureIsValid(r, secret)));
        using var restarted = server.CreateClient(key); // the restarted server listens on a new port
        Assert.Equal("completed", (await Wire.GetJsonAsync(restarted, $"/v1/batches/{batchId}")).Status());
        Assert.DoesNotContain(secret[6..], server.Output);
    }

    private static long Attempts(string dbPath, string eventId)
    {
        using var connection = new SqliteConnection($"Data Source={dbPath};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT attempts FROM webhook_events WHERE id = $id;";
        command.Parameters.AddWithValue("$id", eventId);
        return command.ExecuteScalar() is long attempts ? attempts : 0;
    }
}
