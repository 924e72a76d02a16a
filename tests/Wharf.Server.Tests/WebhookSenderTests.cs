using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Webhooks;
using Wharf.Server.Hosting;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;
using Wharf.Storage;

namespace Wharf.Server.Tests;

/// <summary>
/// The webhook sender on a clock the test moves (<see cref="FakeTimeProvider"/>), over the real SQLite outbox, sending
/// to real endpoints on loopback (<see cref="WebhookReceiver"/>). Signatures are checked by the receiver's own
/// HMAC-SHA256, not Wharf's signer.
/// </summary>
public sealed class WebhookSenderTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 4, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly FakeTimeProvider _time = new(Start);
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "wharf-webhooks-" + Guid.NewGuid().ToString("N"));
    private readonly ConcurrentQueue<string> _logs = new();
    private readonly Dictionary<string, string?> _settings = new(StringComparer.Ordinal);
    private WebhookReceiver _receiver = null!;
    private ServiceProvider? _services;
    private WebhookSender? _sender;
    private IdGenerator _ids = null!;

    private static CancellationToken Ct => CancellationToken.None;

    private long Now => _time.GetUtcNow().ToUnixTimeSeconds();

    private IServiceProvider Services => _services ?? throw new InvalidOperationException("Not started.");

    private IWebhookOutbox Outbox => Services.GetRequiredService<IWebhookOutbox>();

    private WebhookSignals Signals => Services.GetRequiredService<WebhookSignals>();

    public async Task InitializeAsync()
    {
        _ids = new IdGenerator(_time);
        _receiver = await WebhookReceiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        await _receiver.DisposeAsync();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>Builds the services on the data directory (as a process start would) and, unless asked not to, starts the sender.</summary>
    private async Task StartAsync(bool startSender = true)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Debug).AddProvider(new ListLoggerProvider(_logs)));
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(_settings).Build());
        services.AddSingleton<TimeProvider>(_time);
        services.AddEmbeddedStorage(_dataDir);
        services.AddSingleton(_ids);
        services.AddSingleton<WebhookSignals>();
        services.AddSingleton<BatchFinalizer>();
        services.AddWharfWebhooks();
        _services = services.BuildServiceProvider();
        if (startSender)
        {
            await StartSenderAsync();
        }
    }

    private async Task StartSenderAsync()
    {
        _sender = Services.GetServices<IHostedService>().OfType<WebhookSender>().Single();
        await _sender.StartAsync(Ct);
    }

    /// <summary>Stops the sender (cutting what it has in flight) and releases the data directory.</summary>
    private async Task StopAsync()
    {
        if (_sender is not null)
        {
            await _sender.StopAsync(Ct);
            _sender = null;
        }
        if (_services is not null)
        {
            await _services.DisposeAsync();
            _services = null;
        }
    }

    private async Task<(string Id, string Secret)> AddWorkspaceAsync(string url)
    {
        string id = WharfIds.Hex(WharfIds.WorkspacePrefix, _ids.Next());
        string secret = WebhookSecrets.NewSecret();
        await Services.GetRequiredService<IWorkspaceCatalog>().InsertWorkspaceAsync(
            new Workspace { Id = id, Name = id, CreatedAt = Now, WebhookUrl = url }, Ct, secret);
        return (id, secret);
    }

    /// <summary>Ends a new batch of the workspace through the finaliser (which queues its event); returns the batch's and the event's ids.</summary>
    private async Task<(string BatchId, string EventId)> EndBatchAsync(string workspaceId, string status = BatchStatus.Completed)
    {
        var catalog = Services.GetRequiredService<IBatchCatalog>();
        var batch = new BatchRecord
        {
            Id = WharfIds.Hex(WharfIds.BatchPrefix, _ids.Next()),
            WorkspaceId = workspaceId,
            Endpoint = "/v1/chat/completions",
            InputFileId = WharfIds.File(_ids.Next()),
            Execution = BatchExecution.Gateway,
            Status = BatchStatus.InProgress,
            CreatedAt = Now,
            ExpiresAt = Now + BatchEndpoints.CompletionWindowSeconds,
        };
        Assert.True(await catalog.InsertAsync(batch, Ct));
        long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var claimed = await catalog.ClaimAsync("test-node", nowMs, nowMs + 60_000, [], Ct);
        Assert.Equal(batch.Id, claimed?.Id);
        Assert.NotNull(await Services.GetRequiredService<BatchFinalizer>().FinalizeAsync(claimed!, status, "test-node", Ct));
        return (batch.Id, EventIdOf(batch.Id));
    }

    /// <summary>The outbox's event about the batch, read straight from the catalog file.</summary>
    private string EventIdOf(string batchId)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_dataDir, "wharf.db")};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id FROM webhook_events WHERE payload LIKE $batch;";
        command.Parameters.AddWithValue("$batch", $"%\"{batchId}\"%");
        return (string)command.ExecuteScalar()!;
    }

    private async Task<WebhookEventState> WaitForStateAsync(string eventId, Func<WebhookEventState, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var state = await Outbox.GetAsync(eventId, Ct);
            Assert.NotNull(state);
            if (condition(state))
            {
                return state;
            }
            Assert.True(DateTime.UtcNow < deadline, $"The event never reached the state asked for; it is {state}.");
            await Task.Delay(10);
        }
    }

    /// <summary>Moves the clock to <paramref name="unixSeconds"/> and wakes the sender, as its poll would.</summary>
    private void JumpTo(long unixSeconds)
    {
        _time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(unixSeconds));
        Signals.EventQueued();
    }

    [Fact]
    public async Task AnEventIsPostedAtOnceSignedAsStandardWebhooksWithOpenAIsEventAsItsBody()
    {
        await StartAsync();
        string url = _receiver.Url("/hooks/wharf?token=abc");
        var (ws, secret) = await AddWorkspaceAsync(url);
        long queuedAt = Now;

        var (batchId, eventId) = await EndBatchAsync(ws, BatchStatus.Expired);

        var request = Assert.Single(await _receiver.WaitForAsync(1)); // no poll needed: the finaliser woke the sender
        Assert.Equal("POST", request.Method);
        Assert.Equal("/hooks/wharf?token=abc", request.Path);
        Assert.Equal("application/json", request.ContentType);
        Assert.Equal(eventId, request.WebhookId);
        Assert.Equal(queuedAt.ToString(System.Globalization.CultureInfo.InvariantCulture), request.WebhookTimestamp);
        Assert.True(WebhookReceiver.SignatureIsValid(request, secret));
        Assert.False(WebhookReceiver.SignatureIsValid(request, WebhookSecrets.NewSecret()));
        Assert.False(WebhookReceiver.SignatureIsValid(request with { Body = [.. request.Body, (byte)' '] }, secret));
        using var body = JsonDocument.Parse(request.Body);
        var root = body.RootElement;
        Assert.Equal(["id", "object", "created_at", "type", "data"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(eventId, root.GetProperty("id").GetString());
        Assert.StartsWith("evt_", eventId);
        Assert.Equal("event", root.GetProperty("object").GetString());
        Assert.Equal(queuedAt, root.GetProperty("created_at").GetInt64());
        Assert.Equal("batch.expired", root.GetProperty("type").GetString());
        Assert.Equal(batchId, root.GetProperty("data").GetProperty("id").GetString());

        var state = await WaitForStateAsync(eventId, s => s.DeliveredAt is not null);
        Assert.Equal(1, state.Attempts);
        Assert.Null(state.GivenUpAt);
    }

    [Fact]
    public async Task A500ThenA200DeliversOnceWithTheSameIdAndTheFirstRetryWithinTenSeconds()
    {
        await StartAsync();
        var (ws, secret) = await AddWorkspaceAsync(_receiver.Url());
        _receiver.AnswerInTurn(500);
        long first = Now;

        var (_, eventId) = await EndBatchAsync(ws);
        var failed = await WaitForStateAsync(eventId, s => s.Attempts == 1);
        Assert.Equal("answered HTTP 500", failed.LastError);
        Assert.Equal(first + 5, failed.NextAttemptAt); // FirstRetrySeconds: 5
        Assert.Null(failed.DeliveredAt);

        JumpTo(failed.NextAttemptAt);
        var delivered = await WaitForStateAsync(eventId, s => s.DeliveredAt is not null);
        Assert.Equal(2, delivered.Attempts);
        var requests = await _receiver.WaitForAsync(2);
        Assert.Equal([eventId, eventId], requests.Select(r => r.WebhookId));
        Assert.Equal([first.ToString(System.Globalization.CultureInfo.InvariantCulture), (first + 5).ToString(System.Globalization.CultureInfo.InvariantCulture)],
            requests.Select(r => r.WebhookTimestamp));
        Assert.Equal(requests[0].BodyText, requests[1].BodyText);
        Assert.NotEqual(requests[0].WebhookSignature, requests[1].WebhookSignature); // signed per attempt, with its timestamp
        Assert.All(requests, r => Assert.True(WebhookReceiver.SignatureIsValid(r, secret)));

        // Long after: a later event is sent, the delivered one never again.
        JumpTo(Now + 3600);
        var (_, later) = await EndBatchAsync(ws);
        await WaitForStateAsync(later, s => s.DeliveredAt is not null);
        Assert.Equal([eventId, eventId, later], _receiver.Requests.Select(r => r.WebhookId));
    }

    [Fact]
    public async Task RetriesDoubleUntilTheEventIsGivenUpTwentyFourHoursAfterItWasCreatedAlwaysWithTheSameId()
    {
        await StartAsync();
        string url = _receiver.Url("/private/path-token?token=abc");
        var (ws, secret) = await AddWorkspaceAsync(url);
        _receiver.DefaultStatus = 503;
        long created = Now;

        var (_, eventId) = await EndBatchAsync(ws);
        WebhookEventState state;
        int attempts = 1;
        while (true)
        {
            state = await WaitForStateAsync(eventId, s => s.Attempts == attempts);
            if (state.GivenUpAt is not null)
            {
                break;
            }
            JumpTo(state.NextAttemptAt);
            attempts++;
        }

        var requests = _receiver.Requests;
        Assert.Equal(16, requests.Count);
        Assert.Equal(16, state.Attempts);
        Assert.All(requests, r => Assert.Equal(eventId, r.WebhookId));
        Assert.All(requests, r => Assert.True(WebhookReceiver.SignatureIsValid(r, secret)));
        var times = requests.Select(r => long.Parse(r.WebhookTimestamp!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).ToList();
        Assert.Equal([5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960, 86400 - 81915], gaps);
        Assert.Equal(created, times[0]);
        Assert.Equal(created + 24 * 3600, times[^1]);
        Assert.Equal(created + 24 * 3600, state.GivenUpAt);
        Assert.Null(state.DeliveredAt);
        Assert.Equal("gave up after 16 attempts; the last: answered HTTP 503", state.LastError);

        // Given up: never claimed again.
        JumpTo(Now + 7 * 86400);
        var (_, later) = await EndBatchAsync(ws);
        await WaitForStateAsync(later, s => s.Attempts == 1);
        Assert.Equal(17, _receiver.Requests.Count);

        // The log names the event and the endpoint's host, never its path, query or secret.
        string gaveUp = Assert.Single(_logs, l => l.Contains("given up", StringComparison.Ordinal));
        Assert.Contains(eventId, gaveUp);
        Assert.Contains(_receiver.BaseAddress.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped), gaveUp);
        Assert.All(_logs, l => Assert.DoesNotContain("token", l));
        Assert.All(_logs, l => Assert.DoesNotContain("private", l));
        Assert.All(_logs, l => Assert.DoesNotContain(secret[6..], l));
    }

    [Fact]
    public async Task NoAnswerWithinTheTimeoutIsAFailedAttemptRetriedLikeAnyOther()
    {
        _settings["Wharf:Webhooks:TimeoutSeconds"] = "3";
        await StartAsync();
        var (ws, secret) = await AddWorkspaceAsync(_receiver.Url());
        _receiver.Hang = true;

        var (_, eventId) = await EndBatchAsync(ws);
        await _receiver.WaitForAsync(1);
        _time.Advance(TimeSpan.FromSeconds(3)); // the attempt's timeout, on the injected clock
        var failed = await WaitForStateAsync(eventId, s => s.Attempts == 1);
        Assert.Equal("no answer within 3 s", failed.LastError);
        Assert.Equal(Now + 5, failed.NextAttemptAt);

        _receiver.Hang = false;
        JumpTo(failed.NextAttemptAt);
        await WaitForStateAsync(eventId, s => s.DeliveredAt is not null);
        Assert.All(await _receiver.WaitForAsync(2), r => Assert.True(WebhookReceiver.SignatureIsValid(r, secret)));
    }

    [Fact]
    public async Task ARefusedConnectionIsAFailedAttempt()
    {
        await StartAsync();
        var (ws, _) = await AddWorkspaceAsync(RefusedPort.Url("/hook").ToString());

        var (_, eventId) = await EndBatchAsync(ws);
        var failed = await WaitForStateAsync(eventId, s => s.Attempts == 1);
        Assert.Equal("request failed (ConnectionError)", failed.LastError);
        Assert.Equal(Now + 5, failed.NextAttemptAt);
        Assert.Null(failed.DeliveredAt);
    }

    [Fact]
    public async Task ARedirectIsNotFollowedItIsAFailedAttempt()
    {
        await StartAsync();
        var (ws, _) = await AddWorkspaceAsync(_receiver.Url("/hook"));
        _receiver.AnswerInTurn(307);

        var (_, eventId) = await EndBatchAsync(ws);
        var failed = await WaitForStateAsync(eventId, s => s.Attempts == 1);
        Assert.Equal("answered HTTP 307", failed.LastError);
        JumpTo(failed.NextAttemptAt);
        await WaitForStateAsync(eventId, s => s.DeliveredAt is not null);
        Assert.Equal(["/hook", "/hook"], _receiver.Requests.Select(r => r.Path)); // never the Location
    }

    [Fact]
    public async Task ASlowEndpointHoldsBackOnlyItsOwnWorkspacesEvents()
    {
        _settings["Wharf:Webhooks:MaxConcurrency"] = "2";
        _settings["Wharf:Webhooks:MaxConcurrencyPerWorkspace"] = "1";
        await StartAsync();
        await using var slow = await WebhookReceiver.StartAsync();
        slow.Hang = true;
        var (slowWs, _) = await AddWorkspaceAsync(slow.Url());
        var (fastWs, _) = await AddWorkspaceAsync(_receiver.Url());

        var slowEvents = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            slowEvents.Add((await EndBatchAsync(slowWs)).EventId);
        }
        await slow.WaitForAsync(1);
        var (_, fastEvent) = await EndBatchAsync(fastWs);

        await WaitForStateAsync(fastEvent, s => s.DeliveredAt is not null);
        Assert.Single(slow.Requests); // its other events wait for its one slot, not the other workspace's
        Assert.Equal(slowEvents[0], slow.Requests[0].WebhookId);

        // The endpoint answers again: once the hung attempt times out, its workspace's other events go, one at a time.
        slow.Hang = false;
        _time.Advance(TimeSpan.FromSeconds(15));
        await WaitForStateAsync(slowEvents[1], s => s.DeliveredAt is not null);
        await WaitForStateAsync(slowEvents[2], s => s.DeliveredAt is not null);
        Assert.Equal("no answer within 15 s", (await Outbox.GetAsync(slowEvents[0], Ct))!.LastError);
    }

    [Fact]
    public async Task TheEventsOfAWorkspaceWhoseUrlWasRemovedOrThatWasDeletedAreDroppedUnsent()
    {
        await StartAsync(startSender: false);
        var (removed, _) = await AddWorkspaceAsync(_receiver.Url());
        var (deleted, _) = await AddWorkspaceAsync(_receiver.Url());
        var (_, first) = await EndBatchAsync(removed, BatchStatus.Failed);
        var (_, second) = await EndBatchAsync(deleted, BatchStatus.Cancelled);
        var workspaces = Services.GetRequiredService<IWorkspaceCatalog>();
        var workspace = (await workspaces.GetWorkspaceAsync(removed, Ct))!;
        Assert.True(await workspaces.UpdateWorkspaceAsync(workspace with { WebhookUrl = null }, Ct));
        Assert.True(await workspaces.DeleteWorkspaceAsync(deleted, Now, Ct));

        await StartSenderAsync();

        foreach (string eventId in new[] { first, second })
        {
            var state = await WaitForStateAsync(eventId, s => s.GivenUpAt is not null);
            Assert.Equal(0, state.Attempts);
            Assert.StartsWith("dropped:", state.LastError);
        }
        Assert.Empty(_receiver.Requests);
    }

    [Fact]
    public async Task AnEventWaitingForItsRetrySurvivesARestartAndIsSentOnceDue()
    {
        await StartAsync();
        var (ws, secret) = await AddWorkspaceAsync(_receiver.Url());
        _receiver.AnswerInTurn(503);
        var (_, eventId) = await EndBatchAsync(ws);
        var failed = await WaitForStateAsync(eventId, s => s.Attempts == 1);

        await StopAsync();
        _time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(failed.NextAttemptAt));
        await StartAsync();

        var delivered = await WaitForStateAsync(eventId, s => s.DeliveredAt is not null);
        Assert.Equal(2, delivered.Attempts);
        var requests = await _receiver.WaitForAsync(2);
        Assert.Equal([eventId, eventId], requests.Select(r => r.WebhookId));
        Assert.All(requests, r => Assert.True(WebhookReceiver.SignatureIsValid(r, secret)));
    }

    [Fact]
    public async Task AnAttemptCutByAStopIsMadeAgainOnceItsClaimRunsOut()
    {
        await StartAsync();
        var (ws, _) = await AddWorkspaceAsync(_receiver.Url());
        _receiver.Hang = true;
        long created = Now;
        var (_, eventId) = await EndBatchAsync(ws);
        await _receiver.WaitForAsync(1);

        await StopAsync(); // the attempt is cut unanswered: nothing is recorded about it
        WebhookEventState claimed;
        await using (var stopped = new ServiceCollection().AddLogging().AddEmbeddedStorage(_dataDir).BuildServiceProvider())
        {
            claimed = (await stopped.GetRequiredService<IWebhookOutbox>().GetAsync(eventId, Ct))!;
        }
        Assert.Equal(0, claimed.Attempts);
        Assert.Equal(created + 15 + 10, claimed.NextAttemptAt); // the claim: the timeout and a margin
        _receiver.Hang = false;
        await StartAsync();
        Assert.Single(_receiver.Requests);

        JumpTo(claimed.NextAttemptAt);
        var delivered = await WaitForStateAsync(eventId, s => s.DeliveredAt is not null);
        Assert.Equal(1, delivered.Attempts);
        Assert.Equal([eventId, eventId], _receiver.Requests.Select(r => r.WebhookId));
    }

    /// <summary>Every log line, formatted, with its category.</summary>
    private sealed class ListLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(categoryName, lines);

        public void Dispose()
        {
        }

        private sealed class ListLogger(string category, ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
        }
    }
}
