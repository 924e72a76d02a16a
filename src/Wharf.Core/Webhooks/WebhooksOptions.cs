using System.ComponentModel.DataAnnotations;

namespace Wharf.Core.Webhooks;

/// <summary>Options under <c>Wharf:Webhooks</c>: how workspaces' webhook events are sent.</summary>
public sealed class WebhooksOptions
{
    public const string Section = "Wharf:Webhooks";

    /// <summary>Longest an endpoint may take to answer one attempt (until its status line and headers), in seconds.</summary>
    [Range(1, 300)]
    public int TimeoutSeconds { get; set; } = 15;

    /// <summary>Wait before the first retry, in seconds (at most 10); each later retry waits twice the one before.</summary>
    [Range(1, 10)]
    public int FirstRetrySeconds { get; set; } = 5;

    /// <summary>How long after its creation an event is still tried; an attempt that fails past it gives the event up.</summary>
    [Range(1, 720)]
    public int GiveUpAfterHours { get; set; } = 24;

    /// <summary>How often the outbox is looked at for due events (an event queued on this node is sent at once).</summary>
    [Range(10, 60_000)]
    public int PollIntervalMilliseconds { get; set; } = 1000;

    /// <summary>Attempts in flight at once on this node.</summary>
    [Range(1, 1000)]
    public int MaxConcurrency { get; set; } = 16;

    /// <summary>Attempts to one workspace's endpoint in flight at once on this node, so a slow one leaves room for the others.</summary>
    [Range(1, 1000)]
    public int MaxConcurrencyPerWorkspace { get; set; } = 4;

    /// <summary>
    /// When the attempt after <paramref name="failedAttempts"/> failed ones is due (unix seconds), or null when the
    /// event is given up: <see cref="FirstRetrySeconds"/> after the first failure, doubling after each further one, and
    /// a last attempt at <see cref="GiveUpAfterHours"/> after <paramref name="createdAt"/> when the doubling passes it.
    /// </summary>
    public long? NextAttemptAt(long createdAt, int failedAttempts, long now)
    {
        long deadline = createdAt + GiveUpAfterHours * 3600L;
        if (now >= deadline)
        {
            return null;
        }
        int doublings = Math.Clamp(failedAttempts - 1, 0, 30);
        long delay = FirstRetrySeconds * (1L << doublings);
        return Math.Min(now + delay, deadline);
    }
}
