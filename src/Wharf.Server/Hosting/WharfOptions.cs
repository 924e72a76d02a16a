using System.ComponentModel.DataAnnotations;

namespace Wharf.Server.Hosting;

/// <summary>Options under <c>Wharf</c> (files: <see cref="Core.Files.FilesOptions"/> under <c>Wharf:Files</c>).</summary>
internal sealed class WharfOptions
{
    public const string Section = "Wharf";

    /// <summary>The one directory the embedded store writes: <c>wharf.db</c> and <c>blobs/</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string DataDir { get; set; } = "./data";

    public AuthOptions Auth { get; set; } = new();

    public SweeperOptions Sweeper { get; set; } = new();

    public RateLimitOptions RateLimits { get; set; } = new();

    public MetricsOptions Metrics { get; set; } = new();

    public LoggingOptions Logging { get; set; } = new();
}

internal sealed class MetricsOptions
{
    /// <summary><c>GET /metrics</c> without a key; false (the default): the admin key only.</summary>
    public bool Public { get; set; }

    /// <summary>How many workspaces (those holding the most bytes) get their own stored-bytes and files series; 0: none.</summary>
    [Range(0, 10_000)]
    public int WorkspaceSeries { get; set; } = 100;

    /// <summary>Seconds between reads of the workspaces' usage for those series.</summary>
    [Range(1, 3600)]
    public int WorkspaceRefreshSeconds { get; set; } = 30;
}

internal sealed class LoggingOptions
{
    /// <summary>One JSON object per log line (the framework's JSON console formatter), with the request's scopes.</summary>
    public bool Json { get; set; }
}

internal sealed class AuthOptions
{
    /// <summary>When set, workspace <c>default</c> holds this key (idempotent across restarts).</summary>
    public string? BootstrapKey { get; set; }

    /// <summary>Enables the admin API under <c>/admin</c>, authenticated by this key alone.</summary>
    public string? AdminKey { get; set; }

    /// <summary>
    /// Seconds a key that authenticated is remembered (no catalog query for its next requests); 0 disables. Admin
    /// changes clear it at once on the node that made them, and on the PostgreSQL catalog on every other node as soon as
    /// the change's announcement arrives (a node that cannot hear announcements does not use its cache meanwhile).
    /// </summary>
    [Range(0, 60)]
    public int KeyCacheSeconds { get; set; } = 2;

    /// <summary>Seconds between writes of keys' last-used times (one batched write, not one per request).</summary>
    [Range(1, 3600)]
    public int LastUsedFlushSeconds { get; set; } = 30;

    /// <summary>
    /// Failed authentications (missing or wrong key) one client address may make at once; past it, a failure is a 429
    /// until the allowance refills. A correct key is never refused for its address's failures.
    /// </summary>
    [Range(1, 1_000_000)]
    public int FailureBurst { get; set; } = 30;

    /// <summary>Rate (per minute) at which an address's allowance of failed authentications refills.</summary>
    [Range(1, 1_000_000)]
    public int FailuresPerMinute { get; set; } = 60;

    /// <summary>Seconds between the log lines that count failed authentications (one line per interval, not per failure).</summary>
    [Range(1, 3600)]
    public int FailureLogSeconds { get; set; } = 10;
}

internal sealed class RateLimitOptions
{
    /// <summary>Requests per minute per key when neither the key nor its workspace sets one; 0 for no limit.</summary>
    [Range(0, 1_000_000)]
    public int DefaultRpm { get; set; }
}

internal sealed class SweeperOptions
{
    /// <summary>Seconds between sweeps of expired files and orphaned blobs.</summary>
    [Range(1, 86_400)]
    public int IntervalSeconds { get; set; } = 60;

    /// <summary>A blob without a catalog row is removed once it is this old (seconds).</summary>
    [Range(0, 7 * 86_400)]
    public int OrphanGraceSeconds { get; set; } = 600;

    /// <summary>
    /// Seconds a sweep's lease outlives the interval: a node that holds it takes it for the interval plus this, so it
    /// keeps the sweeps from round to round; when it dies, another node takes them over within that time.
    /// </summary>
    [Range(2, 3600)]
    public int LeaseSeconds { get; set; } = 30;
}
