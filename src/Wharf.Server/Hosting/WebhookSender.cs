using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Options;
using Wharf.Core.Ports;
using Wharf.Core.Webhooks;

namespace Wharf.Server.Hosting;

/// <summary>
/// Delivers the webhook outbox: each due event is POSTed to its workspace's <c>webhook_url</c> (read at send time),
/// signed as Standard Webhooks, until a 2xx; anything else is retried on <see cref="WebhooksOptions.NextAttemptAt"/>'s
/// schedule, always with the same event id, and given up once <see cref="WebhooksOptions.GiveUpAfterHours"/> have
/// passed. At least once: the schedule lives in the outbox, so a restart sends what was due, and an attempt cut by a
/// crash is made again once its claim runs out. Attempts run in parallel, bounded on the node and per workspace, each
/// within <see cref="WebhooksOptions.TimeoutSeconds"/>, so a slow endpoint delays only its own workspace's events.
/// </summary>
internal sealed partial class WebhookSender(
    IWebhookOutbox outbox,
    IHttpClientFactory httpClients,
    WebhookSignals signals,
    IOptions<WebhooksOptions> options,
    TimeProvider time,
    ILogger<WebhookSender> logger,
    Wharf.Core.Telemetry.WharfMetrics? metrics = null) : BackgroundService
{
    /// <summary>The named client: no redirects followed, no cookies, no logging of its own (a URL may hold a token).</summary>
    public const string HttpClientName = "Wharf.Webhooks";

    /// <summary>Seconds a claim outlasts an attempt's timeout: room for recording its outcome.</summary>
    private const int ClaimMarginSeconds = 10;

    private readonly WebhooksOptions _options = options.Value;
    private readonly Lock _gate = new();
    private readonly List<string> _inFlight = []; // a workspace's id once per attempt of it in flight
    private readonly List<Task> _attempts = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var poll = TimeSpan.FromMilliseconds(_options.PollIntervalMilliseconds);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await ClaimAndStartAsync(stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LogPollFailed(logger, ex);
                }
                await signals.WaitAsync(poll, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            Task[] running;
            lock (_gate)
            {
                running = [.. _attempts];
            }
            await Task.WhenAll(running); // each ends soon on the stopping token, and never throws
        }
    }

    /// <summary>Claims as many due events as there are free slots and starts an attempt for each.</summary>
    private async Task ClaimAndStartAsync(CancellationToken stoppingToken)
    {
        int free;
        string[] busy;
        lock (_gate)
        {
            _attempts.RemoveAll(t => t.IsCompleted);
            free = _options.MaxConcurrency - _inFlight.Count;
            busy = [.. _inFlight];
        }
        if (free <= 0)
        {
            return; // an attempt that ends wakes the loop
        }
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        var claimed = await outbox.ClaimDueAsync(
            now, now + _options.TimeoutSeconds + ClaimMarginSeconds, free, _options.MaxConcurrencyPerWorkspace, busy, stoppingToken);
        foreach (var delivery in claimed)
        {
            lock (_gate)
            {
                _inFlight.Add(delivery.WorkspaceId);
                _attempts.Add(Task.Run(() => RunAsync(delivery, stoppingToken), CancellationToken.None));
            }
        }
    }

    private async Task RunAsync(WebhookDelivery delivery, CancellationToken stoppingToken)
    {
        try
        {
            await DeliverAsync(delivery, stoppingToken);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            // Its claim runs out and the event is tried again. The message is left out: it could quote the URL.
            LogAttemptBroke(logger, delivery.EventId, ex.GetType().Name);
        }
        catch (OperationCanceledException)
        {
            // Stopping, the attempt unanswered: the event's claim runs out and it is sent after the restart.
        }
        finally
        {
            lock (_gate)
            {
                _inFlight.Remove(delivery.WorkspaceId);
            }
            signals.EventQueued(); // a slot is free: claim what waits for it
        }
    }

    private async Task DeliverAsync(WebhookDelivery delivery, CancellationToken stoppingToken)
    {
        if (delivery.Url is null)
        {
            await GiveUpAsync(delivery, delivery.Attempts, "dropped: the workspace's webhook_url was removed or the workspace deleted", endpoint: null);
            return;
        }
        if (!Uri.TryCreate(delivery.Url, UriKind.Absolute, out var url) || !WebhookSecrets.TryGetKey(delivery.Secret, out byte[] key))
        {
            await GiveUpAsync(delivery, delivery.Attempts, "dropped: the workspace's webhook_url or secret is unusable", endpoint: null);
            return;
        }
        string? failure = await AttemptAsync(delivery, url, key, stoppingToken);
        int attempts = delivery.Attempts + 1;
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        if (failure is null)
        {
            // Recorded even while the node stops: a delivered event must not be sent again.
            await outbox.MarkDeliveredAsync(delivery.EventId, attempts, now, CancellationToken.None);
            metrics?.WebhookDelivery("delivered");
            LogDelivered(logger, delivery.EventId, delivery.WorkspaceId, attempts);
            return;
        }
        string endpoint = WebhookUrls.ForLog(url);
        if (_options.NextAttemptAt(delivery.CreatedAt, attempts, now) is { } next)
        {
            if (await outbox.RescheduleAsync(delivery.EventId, delivery.ClaimedUntil, attempts, next, failure, CancellationToken.None))
            {
                metrics?.WebhookDelivery("retry");
                LogRetrying(logger, delivery.EventId, delivery.WorkspaceId, endpoint, attempts, failure, next - now);
            }
            return;
        }
        await GiveUpAsync(delivery, attempts, $"gave up after {attempts} attempts; the last: {failure}", endpoint);
    }

    private async Task GiveUpAsync(WebhookDelivery delivery, int attempts, string reason, string? endpoint)
    {
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        if (await outbox.GiveUpAsync(delivery.EventId, delivery.ClaimedUntil, attempts, now, reason, CancellationToken.None))
        {
            metrics?.WebhookDelivery("gave_up");
            LogGaveUp(logger, delivery.EventId, delivery.WorkspaceId, endpoint ?? "none", attempts, reason);
        }
    }

    /// <summary>
    /// One signed POST of the event. Returns null when it was answered with a 2xx, else what went wrong (a status, a
    /// timeout, a connection failure), in words that never hold the URL; throws when the stop cut it.
    /// </summary>
    private async Task<string?> AttemptAsync(WebhookDelivery delivery, Uri url, byte[] key, CancellationToken stoppingToken)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(_options.TimeoutSeconds), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, stoppingToken);
        byte[] body = Encoding.UTF8.GetBytes(delivery.Payload);
        long timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation("webhook-id", delivery.EventId);
        request.Headers.TryAddWithoutValidation("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("webhook-signature", WebhookSecrets.Sign(key, delivery.EventId, timestamp, body));
        try
        {
            var client = httpClients.CreateClient(HttpClientName);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            int status = (int)response.StatusCode;
            return status is >= 200 and < 300 ? null : $"answered HTTP {status}";
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            return $"no answer within {_options.TimeoutSeconds} s";
        }
        catch (HttpRequestException ex)
        {
            return $"request failed ({ex.HttpRequestError})";
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Webhook event {EventId} of workspace {WorkspaceId} delivered (attempt {Attempts}).")]
    private static partial void LogDelivered(ILogger logger, string eventId, string workspaceId, int attempts);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Webhook event {EventId} of workspace {WorkspaceId} to {Endpoint}: attempt {Attempts} {Failure}; next attempt in {DelaySeconds} s.")]
    private static partial void LogRetrying(ILogger logger, string eventId, string workspaceId, string endpoint, int attempts, string failure, long delaySeconds);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Webhook event {EventId} of workspace {WorkspaceId} to {Endpoint} given up after {Attempts} attempts: {Reason}.")]
    private static partial void LogGaveUp(ILogger logger, string eventId, string workspaceId, string endpoint, int attempts, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhook event {EventId}: the attempt broke ({ExceptionType}); it is made again once its claim runs out.")]
    private static partial void LogAttemptBroke(ILogger logger, string eventId, string exceptionType);

    [LoggerMessage(Level = LogLevel.Error, Message = "Reading the webhook outbox failed; it is read again at the next poll.")]
    private static partial void LogPollFailed(ILogger logger, Exception exception);
}
