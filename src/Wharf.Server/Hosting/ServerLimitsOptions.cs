using System.ComponentModel.DataAnnotations;

namespace Wharf.Server.Hosting;

/// <summary>
/// Options under <c>Wharf:Server</c>: how many connections Kestrel holds and how long it waits for a silent client.
/// Unset connection limits are derived from the process's file-descriptor limit (<see cref="FileDescriptorLimit"/>).
/// </summary>
internal sealed class ServerLimitsOptions
{
    public const string Section = "Wharf:Server";

    /// <summary>
    /// Connections served at once; a connection beyond it is accepted and closed at once. Unset: as many as the
    /// file-descriptor limit leaves room for (two descriptors each, after a reserve).
    /// </summary>
    [Range(1, 10_000_000)]
    public long? MaxConcurrentConnections { get; set; }

    /// <summary>Connections switched to another protocol (WebSockets): Wharf has no such endpoint, so none.</summary>
    [Range(0, 10_000_000)]
    public long MaxConcurrentUpgradedConnections { get; set; }

    /// <summary>Seconds an idle connection (no request under way, none started) is kept open.</summary>
    [Range(1, 3600)]
    public int KeepAliveTimeoutSeconds { get; set; } = 30;

    /// <summary>Seconds a client has to send a request's line and headers once it has started.</summary>
    [Range(1, 600)]
    public int RequestHeadersTimeoutSeconds { get; set; } = 15;

    /// <summary>
    /// Least average rate (bytes per second) of a request body while the server waits for it, checked after the
    /// grace period; a slower body is cut (the connection is closed).
    /// </summary>
    [Range(1, 1_000_000_000)]
    public int MinRequestBodyBytesPerSecond { get; set; } = 1024;

    /// <summary>Seconds a request body may run below <see cref="MinRequestBodyBytesPerSecond"/> before it is cut.</summary>
    [Range(2, 3600)]
    public int MinRequestBodyGraceSeconds { get; set; } = 10;

    /// <summary>Seconds between the log lines that count refused connections (one line per interval, not per connection).</summary>
    [Range(1, 3600)]
    public int RefusedConnectionsLogSeconds { get; set; } = 10;
}
