using System.Text.Json;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Storage.Sqlite;

namespace Wharf.Storage.Tests;

/// <summary>
/// The webhook outbox in SQLite: events queued by a batch's finalisation (only for a workspace with a webhook URL),
/// claimed when due with the workspace's URL and secret as they are at that moment, bounded per workspace, and
/// rescheduled, delivered or given up by the claim's holder only; all of it kept across a reopening of the catalog.
/// </summary>
public sealed class SqliteWebhookOutboxTests : IAsyncLifetime
{
    private const string WsA = "ws_0000000000000000000000000000000a";
    private const string WsB = "ws_0000000000000000000000000000000b";
    private const string SecretA = "whsec_c2VjcmV0LWEtMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3";
    private const string Owner = "node-1";

    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly TempDirectory _dir = new();
    private SqliteDatabase _database = null!;
    private SqliteWorkspaceCatalog _workspaces = null!;
    private SqliteBatchCatalog _batches = null!;
    private SqliteWebhookOutbox _outbox = null!;
    private IdGenerator _ids = null!;

    private static CancellationToken Ct => CancellationToken.None;

    private long Now => _clock.GetUtcNow().ToUnixTimeSeconds();

    public Task InitializeAsync()
    {
        _ids = new IdGenerator(_clock);
        Open();
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _database.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private void Open()
    {
        _database = new SqliteDatabase(Path.Combine(_dir.Path, "wharf.db"));
        _workspaces = new SqliteWorkspaceCatalog(_database);
        _batches = new SqliteBatchCatalog(_database);
        _outbox = new SqliteWebhookOutbox(_database);
    }

    private Task AddWorkspaceAsync(string id, string? url, string? secret) =>
        _workspaces.InsertWorkspaceAsync(new Workspace { Id = id, Name = id, CreatedAt = Now, WebhookUrl = url }, Ct, secret);

    /// <summary>Ends a new batch of <paramref name="workspaceId"/> through the finaliser; returns the batch and its event's id (if queued).</summary>
    private async Task<(BatchRecord Batch, string? EventId)> EndBatchAsync(string workspaceId, string status = BatchStatus.Completed)
    {
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
        Assert.True(await _batches.InsertAsync(batch, Ct));
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var claimed = await _batches.ClaimAsync(Owner, nowMs, nowMs + 30_000, [], Ct);
        Assert.Equal(batch.Id, claimed?.Id);
        var ended = await new BatchFinalizer(_batches, _ids, _clock).FinalizeAsync(claimed!, status, Owner, Ct);
        Assert.Equal(status, ended?.Status);
        var events = _database.Query(
            "SELECT id FROM webhook_events WHERE payload LIKE $batch;", [new("$batch", $"%\"{batch.Id}\"%")], r => r.String(0), Ct);
        return (batch, events.SingleOrDefault());
    }

    private Task<IReadOnlyList<WebhookDelivery>> ClaimAsync(int max = 10, int perWorkspace = 10, params string[] busy) =>
        _outbox.ClaimDueAsync(Now, Now + 30, max, perWorkspace, busy, Ct);

    [Fact]
    public async Task AFinalisedBatchQueuesOpenAIsEventOnlyForAWorkspaceWithAWebhookUrl()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/wharf?token=abc", SecretA);
        await AddWorkspaceAsync(WsB, url: null, secret: null);

        var (batch, eventId) = await EndBatchAsync(WsA, BatchStatus.Cancelled);
        var (_, none) = await EndBatchAsync(WsB);

        Assert.Null(none);
        Assert.NotNull(eventId);
        Assert.StartsWith("evt_", eventId);
        var state = await _outbox.GetAsync(eventId, Ct);
        Assert.NotNull(state);
        Assert.Equal(WsA, state.WorkspaceId);
        Assert.Equal("batch.cancelled", state.Type);
        Assert.Equal(Now, state.CreatedAt);
        Assert.Equal(Now, state.NextAttemptAt); // due at once
        Assert.Equal(0, state.Attempts);
        Assert.Null(state.DeliveredAt);
        Assert.Null(state.GivenUpAt);
        using var payload = JsonDocument.Parse(state.Payload);
        Assert.Equal(eventId, payload.RootElement.GetProperty("id").GetString());
        Assert.Equal("event", payload.RootElement.GetProperty("object").GetString());
        Assert.Equal(Now, payload.RootElement.GetProperty("created_at").GetInt64());
        Assert.Equal("batch.cancelled", payload.RootElement.GetProperty("type").GetString());
        Assert.Equal(batch.Id, payload.RootElement.GetProperty("data").GetProperty("id").GetString());
    }

    [Fact]
    public async Task AClaimHandsTheDueEventWithItsWorkspacesUrlAndSecretAndHidesItUntilTheClaimEnds()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/a", SecretA);
        var (_, eventId) = await EndBatchAsync(WsA);

        var claimed = Assert.Single(await _outbox.ClaimDueAsync(Now, Now + 25, 10, 10, [], Ct));
        Assert.Equal(eventId, claimed.EventId);
        Assert.Equal(WsA, claimed.WorkspaceId);
        Assert.Equal("batch.completed", claimed.Type);
        Assert.Equal("https://hooks.example.com/a", claimed.Url);
        Assert.Equal(SecretA, claimed.Secret);
        Assert.Equal(0, claimed.Attempts);
        Assert.Equal(Now + 25, claimed.ClaimedUntil);
        Assert.Equal((await _outbox.GetAsync(eventId!, Ct))!.Payload, claimed.Payload);

        Assert.Empty(await ClaimAsync()); // claimed: not due for anyone else
        _clock.Now = _clock.Now.AddSeconds(24);
        Assert.Empty(await ClaimAsync());
        _clock.Now = _clock.Now.AddSeconds(1);
        // The claim ran out (the sender crashed, say): the event is due again.
        Assert.Equal(eventId, Assert.Single(await ClaimAsync()).EventId);
    }

    [Fact]
    public async Task ARescheduledEventIsDueAtItsNextAttemptAndOnlyTheClaimsHolderWritesAboutIt()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/a", SecretA);
        var (_, eventId) = await EndBatchAsync(WsA);
        var claimed = Assert.Single(await ClaimAsync());

        Assert.False(await _outbox.RescheduleAsync(eventId!, claimed.ClaimedUntil + 1, 1, Now + 5, "answered HTTP 500", Ct));
        Assert.False(await _outbox.GiveUpAsync(eventId!, claimed.ClaimedUntil - 1, 1, Now, "nope", Ct));
        Assert.True(await _outbox.RescheduleAsync(eventId!, claimed.ClaimedUntil, 1, Now + 5, "answered HTTP 500", Ct));

        var state = (await _outbox.GetAsync(eventId!, Ct))!;
        Assert.Equal(1, state.Attempts);
        Assert.Equal(Now + 5, state.NextAttemptAt);
        Assert.Equal("answered HTTP 500", state.LastError);
        Assert.Null(state.DeliveredAt);
        // The claim is no longer the event's: a second write about the same attempt does nothing.
        Assert.False(await _outbox.RescheduleAsync(eventId!, claimed.ClaimedUntil, 1, Now + 5, "again", Ct));

        _clock.Now = _clock.Now.AddSeconds(4);
        Assert.Empty(await ClaimAsync());
        _clock.Now = _clock.Now.AddSeconds(1);
        var again = Assert.Single(await ClaimAsync());
        Assert.Equal(eventId, again.EventId);
        Assert.Equal(1, again.Attempts);
    }

    [Fact]
    public async Task ADeliveredOrGivenUpEventIsNeverClaimedAgainAndKeepsItsRecord()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/a", SecretA);
        var (_, delivered) = await EndBatchAsync(WsA);
        var (_, givenUp) = await EndBatchAsync(WsA, BatchStatus.Failed);
        var claimed = await ClaimAsync();
        Assert.Equal(2, claimed.Count);

        await _outbox.MarkDeliveredAsync(delivered!, 3, Now, Ct);
        Assert.True(await _outbox.GiveUpAsync(givenUp!, claimed.Single(c => c.EventId == givenUp).ClaimedUntil, 15, Now, "gave up after 15 attempts; the last: answered HTTP 503", Ct));

        _clock.Now = _clock.Now.AddDays(30);
        Assert.Empty(await ClaimAsync());
        var deliveredState = (await _outbox.GetAsync(delivered!, Ct))!;
        Assert.Equal(3, deliveredState.Attempts);
        Assert.NotNull(deliveredState.DeliveredAt);
        Assert.Null(deliveredState.GivenUpAt);
        var givenUpState = (await _outbox.GetAsync(givenUp!, Ct))!;
        Assert.Equal(15, givenUpState.Attempts);
        Assert.NotNull(givenUpState.GivenUpAt);
        Assert.Null(givenUpState.DeliveredAt);
        Assert.Equal("gave up after 15 attempts; the last: answered HTTP 503", givenUpState.LastError);
        // A late delivery report about a given-up event changes nothing.
        await _outbox.MarkDeliveredAsync(givenUp!, 16, Now, Ct);
        Assert.Null((await _outbox.GetAsync(givenUp!, Ct))!.DeliveredAt);
    }

    [Fact]
    public async Task AClaimTakesAtMostItsBoundAndAtMostThePerWorkspaceBoundCountingWhatIsInFlight()
    {
        await AddWorkspaceAsync(WsA, "https://a.example.com/", SecretA);
        await AddWorkspaceAsync(WsB, "https://b.example.com/", SecretA);
        var a = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            a.Add((await EndBatchAsync(WsA)).EventId!);
            _clock.Now = _clock.Now.AddSeconds(1);
        }
        string b = (await EndBatchAsync(WsB)).EventId!;

        // Workspace A has one attempt in flight already: with a bound of 2, one more of its events; B's comes too.
        var first = await ClaimAsync(max: 10, perWorkspace: 2, WsA);
        Assert.Equal([a[0], b], first.Select(c => c.EventId).Order(StringComparer.Ordinal));
        // The node has room for one: A's oldest due event (oldest schedule first).
        var second = await ClaimAsync(max: 1, perWorkspace: 2);
        Assert.Equal([a[1]], second.Select(c => c.EventId));
        var third = await ClaimAsync(max: 10, perWorkspace: 2);
        Assert.Equal([a[2], a[3]], third.Select(c => c.EventId));
        Assert.Empty(await ClaimAsync(max: 0));
    }

    [Fact]
    public async Task AClaimReadsTheWebhookAsItIsNowARemovedUrlOrADeletedWorkspaceReadsAsNone()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/old", SecretA);
        await AddWorkspaceAsync(WsB, "https://hooks.example.com/b", SecretA);
        var (_, first) = await EndBatchAsync(WsA);
        var (_, second) = await EndBatchAsync(WsB);
        var workspace = (await _workspaces.GetWorkspaceAsync(WsA, Ct))!;

        const string NewSecret = "whsec_bmV3LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc=";
        Assert.True(await _workspaces.UpdateWorkspaceAsync(workspace with { WebhookUrl = "https://hooks.example.com/new" }, Ct, NewSecret));
        var changed = Assert.Single(await ClaimAsync(), c => c.EventId == first);
        Assert.Equal("https://hooks.example.com/new", changed.Url);
        Assert.Equal(NewSecret, changed.Secret);

        Assert.True(await _workspaces.UpdateWorkspaceAsync(workspace with { WebhookUrl = null }, Ct));
        Assert.True(await _workspaces.DeleteWorkspaceAsync(WsB, Now, Ct));
        _clock.Now = _clock.Now.AddMinutes(1);
        var claimed = await ClaimAsync();
        Assert.Equal(2, claimed.Count);
        Assert.All(claimed, c => Assert.Null(c.Url));
        Assert.All(claimed, c => Assert.Null(c.Secret));
        Assert.Contains(claimed, c => c.EventId == second);
    }

    [Fact]
    public async Task TheWorkspaceCatalogKeepsTheSecretWithItsUrlOnlyAndNeverInTheRecord()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/a", SecretA);
        await AddWorkspaceAsync(WsB, url: null, secret: SecretA); // a secret without a URL is not kept
        Assert.Equal(SecretA, StoredSecret(WsA));
        Assert.Null(StoredSecret(WsB));

        var a = (await _workspaces.GetWorkspaceAsync(WsA, Ct))!;
        Assert.Equal("https://hooks.example.com/a", a.WebhookUrl);
        // A change that leaves the URL keeps its secret; a null URL removes both.
        Assert.True(await _workspaces.UpdateWorkspaceAsync(a with { Name = "renamed" }, Ct));
        Assert.Equal(SecretA, StoredSecret(WsA));
        Assert.Equal("https://hooks.example.com/a", (await _workspaces.GetWorkspaceAsync(WsA, Ct))!.WebhookUrl);
        Assert.True(await _workspaces.UpdateWorkspaceAsync(a with { WebhookUrl = null }, Ct, "whsec_aWdub3JlZA=="));
        Assert.Null(StoredSecret(WsA));
        Assert.Null((await _workspaces.GetWorkspaceAsync(WsA, Ct))!.WebhookUrl);
        Assert.Null((await _workspaces.ListWorkspacesAsync(10, null, Ct)).Items.Single(w => w.Id == WsA).WebhookUrl);
    }

    [Fact]
    public async Task TheOutboxAndItsScheduleSurviveAReopeningOfTheCatalog()
    {
        await AddWorkspaceAsync(WsA, "https://hooks.example.com/a", SecretA);
        var (_, pending) = await EndBatchAsync(WsA);
        var (_, delivered) = await EndBatchAsync(WsA);
        var claimed = await ClaimAsync();
        Assert.True(await _outbox.RescheduleAsync(pending!, claimed[0].ClaimedUntil, 2, Now + 10, "request failed (ConnectionError)", Ct));
        await _outbox.MarkDeliveredAsync(delivered!, 1, Now, Ct);

        _database.Dispose(); // as a stop of the process would
        Open();

        var state = (await _outbox.GetAsync(pending!, Ct))!;
        Assert.Equal(2, state.Attempts);
        Assert.Equal(Now + 10, state.NextAttemptAt);
        _clock.Now = _clock.Now.AddSeconds(10);
        var again = Assert.Single(await ClaimAsync());
        Assert.Equal(pending, again.EventId);
        Assert.Equal(SecretA, again.Secret);
    }

    private string? StoredSecret(string workspaceId) =>
        _database.Query(
            "SELECT webhook_secret FROM workspaces WHERE id = $id;", [new("$id", workspaceId)], r => r.NullableString(0), Ct).Single();
}
